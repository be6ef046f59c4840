//! `scf-local event` (print a trigger's documented event) and `scf-local trigger` (invoke a function of a
//! running `scf-local serve` with one, through its front door's `/trigger` route).

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use scf_platform::events::{self, Kind};
use serde_json::Value;

use crate::{EXIT_FUNCTION_ERROR, EXIT_USAGE};

/// `--key value` and `--key=value` pairs, in order.
pub(crate) fn keys(args: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(key) = arg.strip_prefix("--") else {
            bail!("'{arg}': the event's keys are written --key value");
        };
        match key.split_once('=') {
            Some((k, v)) => out.push((k.to_owned(), v.to_owned())),
            None => {
                let v = it
                    .next()
                    .with_context(|| format!("--{key} needs a value"))?;
                out.push((key.to_owned(), v.clone()));
            }
        }
    }
    Ok(out)
}

/// `scf-local event list`: every kind, its trigger, its invocation type and its keys.
pub(crate) fn list() -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for info in events::KINDS {
        writeln!(
            out,
            "{}  ({}, {}): {}",
            info.name,
            info.trigger,
            match info.invocation {
                events::InvocationType::Event => "asynchronous",
                events::InvocationType::RequestResponse => "synchronous",
            },
            info.type_name
        )?;
        for k in info.keys {
            writeln!(out, "    --{}  {} (default: {})", k.name, k.help, k.default)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `scf-local event generate KIND [--key value…]`.
pub(crate) fn generate(kind: &str, args: &[String]) -> anyhow::Result<ExitCode> {
    let kind = Kind::parse(kind)?;
    let text = events::generate_pretty(kind, &keys(args)?)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    Ok(ExitCode::SUCCESS)
}

/// `scf-local trigger FUNCTION KIND [--key value…]` against the front door at `endpoint`: the result on
/// stdout and the log on stderr (synchronous kinds), or the queued event's request id (asynchronous ones).
pub(crate) fn trigger(
    endpoint: &str,
    function: &str,
    kind: &str,
    args: &[String],
) -> anyhow::Result<ExitCode> {
    // The kind and the keys are checked here first, for a message without a round trip.
    let parsed = Kind::parse(kind)?;
    let pairs = keys(args)?;
    events::generate(parsed, &pairs)?;
    let body: serde_json::Map<String, Value> = pairs
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let (kind_header, answer) = post(
        endpoint,
        &format!("/trigger/{function}/{}", parsed.name()),
        Value::Object(body).to_string().as_bytes(),
    )?;
    let v: Value = serde_json::from_slice(&answer).with_context(|| {
        format!(
            "the platform's answer is not JSON: {}",
            String::from_utf8_lossy(&answer)
        )
    })?;
    let response = &v["Response"];
    if let Some(e) = response.get("Error") {
        let _ = writeln!(
            std::io::stderr(),
            "scf-local: {}: {}",
            e["Code"].as_str().unwrap_or("Error"),
            e["Message"].as_str().unwrap_or("")
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let result = &response["Result"];
    let mut out = std::io::stdout().lock();
    if kind_header.as_deref() == Some("Event") {
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "InvocationType": "Event",
                "FunctionRequestId": result["FunctionRequestId"],
            })
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    std::io::stderr().write_all(result["Log"].as_str().unwrap_or("").as_bytes())?;
    let failed = result["InvokeResult"].as_i64().unwrap_or(0) != 0;
    let text = if failed {
        result["ErrMsg"].as_str()
    } else {
        result["RetMsg"].as_str()
    };
    writeln!(out, "{}", text.unwrap_or(""))?;
    Ok(if failed {
        ExitCode::from(EXIT_FUNCTION_ERROR)
    } else {
        ExitCode::SUCCESS
    })
}

/// One HTTP/1.1 `POST` to `endpoint` (`http://HOST:PORT` or `HOST:PORT`); its `X-Scf-Invocation-Type` and
/// its body.
fn post(endpoint: &str, path: &str, body: &[u8]) -> anyhow::Result<(Option<String>, Vec<u8>)> {
    let authority = endpoint
        .strip_prefix("http://")
        .unwrap_or(endpoint)
        .trim_end_matches('/');
    if authority.starts_with("https://") || authority.contains('/') {
        bail!(
            "--endpoint {endpoint}: expected http://HOST:PORT (the front door of scf-local serve)"
        );
    }
    let mut stream = std::net::TcpStream::connect(authority).with_context(|| {
        format!("connecting to the front door at {authority} (is scf-local serve running?)")
    })?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the platform's answer has no HTTP head")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let kind = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("x-scf-invocation-type")
            .then(|| v.trim().to_owned())
    });
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = raw[split + 4..].to_vec();
    Ok((kind, if chunked { dechunk(&body)? } else { body }))
}

/// A chunked body's content.
fn dechunk(mut raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk without its size line")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("a chunk size that is not hexadecimal")?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = raw.get(..size).context("a chunk shorter than its size")?;
        out.extend_from_slice(chunk);
        raw = raw.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_chunks() {
        let args: Vec<String> = ["--bucket", "photos", "--key=a/b.jpg"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(
            keys(&args).expect("keys"),
            [
                ("bucket".to_owned(), "photos".to_owned()),
                ("key".to_owned(), "a/b.jpg".to_owned())
            ]
        );
        assert!(keys(&["photos".to_owned()]).is_err());
        assert!(keys(&["--bucket".to_owned()]).is_err());
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").expect("chunks"),
            b"abcde"
        );
    }
}
