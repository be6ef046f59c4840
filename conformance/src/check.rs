//! Comparing what an invocation got with what its case expects: the body, the error's shape and escaping,
//! the log's lines in order.

use serde_json::Value;

use crate::case::regex;
use crate::{ERROR_KEYS, Expect, ExpectError, Got, LogLine};

pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 400;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

pub(crate) fn substitute(v: &Value, request_id: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("${requestId}", request_id)),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, request_id)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), substitute(x, request_id)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Compares what came back with the expectation; the error is every difference, one per line.
pub(crate) fn check(expect: &Expect, got: &Got, event: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(&got.body);
    let mut diffs = Vec::new();
    match (&expect.error, got.failed) {
        (None, true) => diffs.push(format!("expected success, got the error {}", clip(&text))),
        (Some(e), false) => diffs.push(format!(
            "expected the error {} {}, got success: {}",
            e.status_code,
            e.error_type,
            clip(&text)
        )),
        (Some(e), true) => check_error(e, got, &text, &mut diffs),
        (None, false) => {}
    }
    if expect.error.is_some() != got.failed {
        // The body cannot match either; the function's last lines say more.
        let tail = &got.lines[got.lines.len().saturating_sub(8)..];
        if !tail.is_empty() {
            diffs.push(format!("the function's last log lines: {tail:?}"));
        }
        return Err(diffs.join("\n"));
    }
    if let Some(body) = &expect.body {
        let want = body.replace("${requestId}", &got.request_id);
        if want != text {
            diffs.push(format!(
                "body: expected {:?}\n      got      {:?}",
                clip(&want),
                clip(&text)
            ));
        }
    }
    if let Some(json) = &expect.json {
        let want = substitute(json, &got.request_id);
        match serde_json::from_slice::<Value>(&got.body) {
            Ok(v) if v == want => {}
            Ok(_) => diffs.push(format!(
                "json: expected {}\n      got      {}",
                clip(&want.to_string()),
                clip(&text)
            )),
            Err(e) => diffs.push(format!("json: the body is not JSON ({e}): {}", clip(&text))),
        }
    }
    if expect.echo {
        let want = serde_json::from_slice::<Value>(event);
        let have = serde_json::from_slice::<Value>(&got.body);
        match (want, have) {
            (Ok(w), Ok(h)) if w == h => {}
            (Ok(_), Ok(_)) => {
                diffs.push(format!("echo: the body is not the event: {}", clip(&text)))
            }
            (w, h) => diffs.push(format!(
                "echo: event or body is not JSON ({:?}, {:?})",
                w.err(),
                h.err()
            )),
        }
    }
    if let Some(p) = &expect.body_pattern {
        match regex(p) {
            Ok(re) if re.is_match(&text) => {}
            Ok(_) => diffs.push(format!("body does not match /{p}/: {}", clip(&text))),
            Err(e) => diffs.push(e),
        }
    }
    if let Some(want) = &expect.log {
        let mut it = got.lines.iter();
        for w in want {
            let mut found = false;
            for line in it.by_ref() {
                match w.matches(line) {
                    Ok(true) => {
                        found = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        diffs.push(e);
                        break;
                    }
                }
            }
            if !found {
                diffs.push(format!(
                    "log: no line {} (in this order); the log was {:?}",
                    w.show(),
                    got.lines.iter().map(|l| clip(l)).collect::<Vec<_>>()
                ));
                break;
            }
        }
    }
    if let Some(want) = &expect.log_exact {
        let ok = want.len() == got.lines.len()
            && want
                .iter()
                .zip(&got.lines)
                .all(|(w, l)| w.matches(l).unwrap_or(false));
        if !ok {
            diffs.push(format!(
                "log: expected exactly [{}]\n     got {:?}",
                want.iter()
                    .map(LogLine::show)
                    .collect::<Vec<_>>()
                    .join(", "),
                got.lines.iter().map(|l| clip(l)).collect::<Vec<_>>()
            ));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("\n"))
    }
}

/// The error body's shape (`docs/errors.md`) and the expected class, message and trace.
fn check_error(e: &ExpectError, got: &Got, text: &str, diffs: &mut Vec<String>) {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(err) => {
            diffs.push(format!(
                "the error body is not JSON ({err}): {}",
                clip(text)
            ));
            return;
        }
    };
    let Some(o) = v.as_object() else {
        diffs.push(format!("the error body is not an object: {}", clip(text)));
        return;
    };
    // serde_json's map sorts its keys; the order is checked on the text.
    let keys: Vec<&str> = o.keys().map(String::as_str).collect();
    let positions: Vec<Option<usize>> = ERROR_KEYS
        .iter()
        .map(|k| text.find(&format!("\"{k}\":")))
        .collect();
    let in_order =
        positions.iter().all(Option::is_some) && positions.windows(2).all(|w| w[0] < w[1]);
    if keys != ERROR_KEYS || !in_order {
        diffs.push(format!(
            "the error body's keys are not {ERROR_KEYS:?} in that order: {}",
            clip(text)
        ));
    }
    if v["errorCode"] != -1 {
        diffs.push(format!("errorCode: expected -1, got {}", v["errorCode"]));
    }
    if v["requestId"] != got.request_id.as_str() {
        diffs.push(format!(
            "requestId: expected {:?}, got {}",
            got.request_id, v["requestId"]
        ));
    }
    if v["errorType"] != e.error_type.as_str() {
        diffs.push(format!(
            "errorType: expected {:?}, got {}",
            e.error_type, v["errorType"]
        ));
    }
    if v["statusCode"] != e.status_code {
        diffs.push(format!(
            "statusCode: expected {}, got {}",
            e.status_code, v["statusCode"]
        ));
    }
    let message = v["errorMessage"].as_str().unwrap_or_default();
    let trace = v["stackTrace"].as_str().unwrap_or_default();
    if let Some(m) = &e.error_message
        && m != message
    {
        diffs.push(format!(
            "errorMessage: expected {m:?}\n              got      {:?}",
            clip(message)
        ));
    }
    for (what, pattern, value) in [
        ("errorMessage", &e.error_message_pattern, message),
        ("stackTrace", &e.stack_trace_pattern, trace),
    ] {
        if let Some(p) = pattern {
            match regex(p) {
                Ok(re) if re.is_match(value) => {}
                Ok(_) => diffs.push(format!("{what} does not match /{p}/: {:?}", clip(value))),
                Err(err) => diffs.push(err),
            }
        }
    }
    // Strings are escaped as the platform (in Go) escapes them.
    if let Some(c) = text
        .chars()
        .find(|c| matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}'))
    {
        diffs.push(format!(
            "the error body has {c:?} unescaped (expected \\u{:04x})",
            u32::from(c)
        ));
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn log_lines_match_in_order() {
        let got = Got {
            request_id: "r".into(),
            body: Bytes::from_static(b"\"done\""),
            failed: false,
            lines: vec!["a".into(), "b".into(), "c".into()],
        };
        let mut e = Expect {
            log: Some(vec![
                LogLine::Exact("a".into()),
                LogLine::Pattern {
                    pattern: "^c$".into(),
                },
            ]),
            ..Expect::default()
        };
        assert!(check(&e, &got, b"{}").is_ok());
        e.log = Some(vec![LogLine::Exact("c".into()), LogLine::Exact("a".into())]);
        assert!(check(&e, &got, b"{}").is_err());
        e.log = None;
        e.body = Some("\"done\"".into());
        assert!(check(&e, &got, b"{}").is_ok());
    }

    #[test]
    fn error_bodies_are_checked_for_shape_and_escaping() {
        let e = ExpectError {
            error_type: "UnhandledError".into(),
            status_code: 430,
            error_message: Some("user code exception caught".into()),
            error_message_pattern: None,
            stack_trace_pattern: Some("boom".into()),
        };
        let good = r#"{"errorCode":-1,"errorMessage":"user code exception caught","errorType":"UnhandledError","requestId":"r","stackTrace":"boom \u003c","statusCode":430}"#;
        let got = |body: &str| Got {
            request_id: "r".into(),
            body: Bytes::from(body.to_owned()),
            failed: true,
            lines: Vec::new(),
        };
        let mut diffs = Vec::new();
        check_error(&e, &got(good), good, &mut diffs);
        assert!(diffs.is_empty(), "{diffs:?}");
        let raw = good.replace("\\u003c", "<");
        check_error(&e, &got(&raw), &raw, &mut diffs);
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        let reordered = r#"{"errorMessage":"user code exception caught","errorCode":-1,"errorType":"UnhandledError","requestId":"r","stackTrace":"boom","statusCode":430}"#;
        diffs.clear();
        check_error(&e, &got(reordered), reordered, &mut diffs);
        assert_eq!(diffs.len(), 1, "{diffs:?}");
    }
}
