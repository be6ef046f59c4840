//! The reliability tier: the platform as a hostile caller and a hostile runtime see it. Malformed requests by
//! the thousand, bodies and outputs far past their limits, idle connections past the descriptor limit, a
//! custom runtime that abuses its runtime API: after each, a good call still gets its right answer, the
//! platform is still running, and its peak memory (`VmHWM`) stays under 100 MB.
//!
//! `make test` runs it at counts a 2-core CI machine finishes in about a minute; `make soak` runs the same
//! tests with `SCF_SOAK=1` (counts 25 times larger) and prints the figures (`docs/reliability.md`).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use scf_tests::{Served, TempDir, function_dir, native_function, python_sdk};
use serde_json::{Value, json};

/// How many times larger the counts are under `make soak`.
fn scale() -> usize {
    match std::env::var("SCF_SOAK") {
        Ok(v) if !v.is_empty() && v != "0" => 25,
        _ => 1,
    }
}

/// Prints one line of figures (shown by `make soak`, which runs the tier with `--nocapture`).
#[allow(clippy::print_stderr, reason = "the tier's figures")]
fn figure(line: String) {
    eprintln!("{line}");
}

/// The platform's peak resident memory so far, in MB (`VmHWM` of `/proc/PID/status`).
fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

/// The platform's open descriptors.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// The platform is alive and answers a good call with the right result.
fn good_call(p: &Served, function: &str) {
    let r = p.invoke(function, &json!({"n": 7}));
    assert_eq!(
        r["Result"]["InvokeResult"], 0,
        "a good call after the abuse failed: {r}"
    );
    let ret: Value = serde_json::from_str(r["Result"]["RetMsg"].as_str().unwrap()).unwrap();
    assert_eq!(ret["event"]["n"], 7, "{ret}");
}

/// Short header and body timeouts, so the fuzz's truncated requests are closed quickly.
const QUICK: &[(&str, &str)] = &[
    ("SCF_LOCAL_HEADER_TIMEOUT", "1"),
    ("SCF_LOCAL_BODY_TIMEOUT", "1"),
];

fn echo() -> TempDir {
    native_function("echo", "  handler: errors.echo\n")
}

/// A small deterministic generator (xorshift64*): the same fuzz on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// One malformed request, raw.
fn malformed(rng: &mut Rng, addr: &str) -> Vec<u8> {
    let head = |method: &str, extra: &str, body: &str| {
        format!(
            "{method} / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let action = |a: &str| format!("X-TC-Action: {a}\r\nX-TC-Version: 2018-04-16\r\n");
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    match rng.below(14) {
        0 => {
            let n = 1 + rng.below(600);
            rng.bytes(n)
        }
        1 => {
            let mut r = head("POST", &action("Invoke"), "{\"FunctionName\":\"echo\"");
            let keep = rng.below(r.len());
            r.truncate(keep);
            r
        }
        2 => head("POST", &action("Invoke"), "not json at all"),
        3 => head("POST", &action("NoSuchAction"), "{}"),
        4 => head("POST", "", "{\"FunctionName\":\"echo\"}"),
        5 => head(
            "POST",
            &action("Invoke"),
            &json!({"FunctionName": "echo", "ClientContext": deep}).to_string(),
        ),
        6 => head(
            "POST",
            &action("Invoke"),
            &json!({"FunctionName": "echo", "ClientContext": "{\"a\":"}).to_string(),
        ),
        7 => head("GET", &action("Invoke"), ""),
        8 => head("CONNECT", "", ""),
        9 => format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\n{}Content-Length: 99999999999\r\n\r\n{{}}",
            action("Invoke")
        )
        .into_bytes(),
        10 => format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Long: {}\r\n\r\n",
            "y".repeat(70 * 1024)
        )
        .into_bytes(),
        11 => head(
            "POST",
            &action("Invoke"),
            &json!({"FunctionName": "no-such-function", "ClientContext": "{}"}).to_string(),
        ),
        12 => head(
            "POST",
            &format!(
                "{}Authorization: TC3-HMAC-SHA256 Credential=x/y/z, SignedHeaders=host, Signature=00\r\n",
                action("Invoke")
            ),
            "{}",
        ),
        _ => format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n{}\r\nzz\r\n{}\r\n",
            action("Invoke"),
            String::from_utf8_lossy(&rng.bytes(40))
        )
        .into_bytes(),
    }
}

#[test]
fn a_front_door_fuzz_leaves_the_platform_answering() {
    let data = TempDir::new("rel-fuzz-data");
    let f = echo();
    let p = Served::start_with_env(data.path(), &[f.path()], &[], QUICK);
    good_call(&p, "echo");
    let n = 2_000 * scale();
    let mut rng = Rng(0x5CF_10CA1);
    let (mut answered, mut closed) = (0usize, 0usize);
    for i in 0..n {
        let mut s = TcpStream::connect(&p.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let req = malformed(&mut rng, &p.addr);
        // A peer may close while we still write (it refused the head): that is an answer too.
        let _ = s.write_all(&req);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut got = Vec::new();
        match s.read_to_end(&mut got) {
            Ok(_) if got.starts_with(b"HTTP/1.1 ") => answered += 1,
            Ok(_) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            Err(e) => panic!("request {i} ({:?}…): no answer and no close: {e}", {
                String::from_utf8_lossy(&req[..req.len().min(80)]).into_owned()
            }),
        }
    }
    good_call(&p, "echo");
    let (rss, fds) = (peak_rss_mb(p.pid()), open_fds(p.pid()));
    figure(format!(
        "front-door fuzz: {n} malformed requests, {answered} answered, {closed} closed, 0 hangs; peak RSS {rss:.1} MB, {fds} fds"
    ));
    assert!(answered > n / 2, "{answered} of {n} answered");
    assert!(rss < 100.0, "peak RSS {rss:.1} MB");
}

#[test]
fn connect_is_answered_405_with_a_tencentcloud_error() {
    let f = echo();
    let p = Served::one(f.path());
    let mut s = TcpStream::connect(&p.addr).unwrap();
    write!(
        s,
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 512];
    let n = s.read(&mut head).unwrap();
    let text = String::from_utf8_lossy(&head[..n]);
    assert!(text.starts_with("HTTP/1.1 405"), "{text}");
    assert!(text.contains("UnsupportedOperation"), "{text}");
}

#[test]
fn an_event_nested_10000_deep_is_refused_at_the_door_sync_and_async() {
    let f = echo();
    let p = Served::one(f.path());
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for invocation in ["RequestResponse", "Event"] {
        let r = p.call(
            "Invoke",
            &json!({"FunctionName": "echo", "ClientContext": deep, "InvocationType": invocation}),
        );
        assert_eq!(
            r["Error"]["Code"], "InvalidParameterValue.ClientContext",
            "{invocation}: {r}"
        );
        assert!(
            r["Error"]["Message"].as_str().unwrap().contains("100"),
            "the message names the limit: {r}"
        );
    }
    // Nothing was queued, nothing ran: the function's log has no record.
    let logs = p.call("GetFunctionLogs", &json!({"FunctionName": "echo"}));
    assert_eq!(logs["TotalCount"], 0, "{logs}");
    good_call(&p, "echo");
}

#[test]
fn bodies_past_the_limit_are_refused_while_they_arrive_and_memory_stays_low() {
    let f = echo();
    let p = Served::one(f.path());
    // Declared 400 MB: refused before a byte of it is read.
    let mut s = TcpStream::connect(&p.addr).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: {}\r\nX-TC-Action: Invoke\r\nX-TC-Version: 2018-04-16\r\nContent-Type: application/json\r\nContent-Length: 400000000\r\n\r\n",
        p.addr
    )
    .unwrap();
    let mut head = [0u8; 4096];
    let n = s.read(&mut head).unwrap();
    let text = String::from_utf8_lossy(&head[..n]);
    assert!(text.contains("RequestTooLarge"), "{text}");
    // Sent for real: 100 MB of a JSON string behind a 400 MB declared length, by 4 callers at once (16 under soak). Each
    // is answered RequestTooLarge after at most 10 MB of it was read.
    let callers = 4 * scale().min(4);
    let sent: Vec<_> = (0..callers)
        .map(|_| {
            let addr = p.addr.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                write!(
                    s,
                    "POST / HTTP/1.1\r\nHost: {addr}\r\nX-TC-Action: Invoke\r\nX-TC-Version: 2018-04-16\r\nContent-Type: application/json\r\nContent-Length: 400000000\r\n\r\n{{\"FunctionName\":\"echo\",\"ClientContext\":\""
                )
                .unwrap();
                let chunk = vec![b'x'; 1 << 20];
                let mut written = 0usize;
                for _ in 0..100 {
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                    written += chunk.len();
                }
                let mut got = Vec::new();
                let _ = s.read_to_end(&mut got);
                (written, String::from_utf8_lossy(&got).into_owned())
            })
        })
        .collect();
    for t in sent {
        let (written, answer) = t.join().unwrap();
        assert!(
            answer.contains("RequestTooLarge"),
            "after {written} bytes: {answer}"
        );
    }
    good_call(&p, "echo");
    let rss = peak_rss_mb(p.pid());
    figure(format!(
        "oversized bodies: {callers} callers × 100 MB sent behind 400 MB declared, all refused; peak RSS {rss:.1} MB"
    ));
    assert!(rss < 100.0, "peak RSS {rss:.1} MB");
}

const PRINTS: &str = r#"
import sys

def main_handler(event, context):
    line = "p" * 199 + "\n"
    for _ in range(event["mb"] * 5243):
        sys.stdout.write(line)
    sys.stdout.flush()
    return {"event": event}
"#;

#[test]
fn a_function_printing_20_mb_keeps_2_mb_of_log_and_the_platform_stays_small() {
    let data = TempDir::new("rel-log-data");
    let f = function_dir(
        "prints",
        "Python3.9",
        "index.py",
        PRINTS,
        "  timeout: 120\n",
    );
    let p = Served::start_with_env(
        data.path(),
        &[f.path()],
        &[],
        &[("SCF_PYTHON", &python_sdk())],
    );
    let calls = 3 * scale().min(10);
    for _ in 0..calls {
        let r = p.call(
            "Invoke",
            &json!({"FunctionName": "prints", "ClientContext": json!({"mb": 20}).to_string()}),
        );
        assert_eq!(r["Result"]["InvokeResult"], 0, "{r}");
    }
    // Read back page by page: an answer holds at most 8 MB of log text, so about three of these records.
    let mut rows = Vec::new();
    loop {
        let page = p.call(
            "GetFunctionLogs",
            &json!({"FunctionName": "prints", "Limit": 100, "Offset": rows.len()}),
        );
        let got = page["Data"].as_array().unwrap().clone();
        let text: usize = got.iter().map(|r| r["Log"].as_str().unwrap().len()).sum();
        assert!(text <= 8 * 1024 * 1024, "an answer of {text} bytes of log");
        if got.is_empty() {
            break;
        }
        rows.extend(got);
    }
    assert_eq!(rows.len(), calls, "every record, across the pages");
    for row in &rows {
        let log = row["Log"].as_str().unwrap();
        assert!(
            log.len() < 2 * 1024 * 1024 + 64 * 1024,
            "a log of {} bytes",
            log.len()
        );
        assert!(log.contains("(log truncated: "), "the truncation is said");
    }
    let rss = peak_rss_mb(p.pid());
    figure(format!(
        "log cap: {calls} calls printing 20 MB each, {} bytes kept per log; peak RSS {rss:.1} MB",
        rows[0]["Log"].as_str().unwrap().len()
    ));
    assert!(rss < 100.0, "peak RSS {rss:.1} MB");
}

#[test]
fn idle_connections_past_the_descriptor_limit_do_not_keep_a_caller_out() {
    let data = TempDir::new("rel-fds-data");
    let f = echo();
    let p = Served::start_under(
        &["sh", "-c", "ulimit -n 256 && exec \"$0\" \"$@\""],
        data.path(),
        &[f.path()],
        &[],
        &[],
    );
    let idle: Vec<TcpStream> = (0..400 * scale().min(2))
        .filter_map(|_| TcpStream::connect(&p.addr).ok())
        .collect();
    for _ in 0..20 {
        good_call(&p, "echo");
    }
    let fds = open_fds(p.pid());
    figure(format!(
        "descriptor limit 256: {} idle connections opened, 20 good calls answered; the platform holds {fds} fds",
        idle.len()
    ));
    assert!(fds < 256, "{fds} descriptors open");
    drop(idle);
}

/// A custom runtime that abuses its runtime API before it answers properly: garbage, wrong paths and
/// methods, absurd lengths, a result that breaks off, a 300 MB result declared and partly sent, results
/// posted twice.
const HOSTILE_BOOTSTRAP: &str = r#"
import json, os, socket, sys

HOST, PORT = os.environ["SCF_RUNTIME_API"], int(os.environ["SCF_RUNTIME_API_PORT"])

def raw(data, half_close=True):
    s = socket.create_connection((HOST, PORT))
    try:
        s.sendall(data)
    except OSError:
        pass
    if half_close:
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    s.close()
    return out

def req(method, path, body=b"", headers=""):
    # A proper request: the connection stays open both ways until the answer (a long poll must not look gone).
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
    return raw(head.encode() + body, half_close=False)

req("POST", "/runtime/init/ready", b" ")
while True:
    head = req("GET", "/runtime/invocation/next")
    event = json.loads(head.split(b"\r\n\r\n", 1)[1])
    for i in range(event.get("abuse", 0)):
        kind = i % 5
        if kind == 0:
            raw(os.urandom(300))
        elif kind == 1:
            req("DELETE", "/runtime/invocation/next")
        elif kind == 2:
            req("POST", "/nowhere/" + "z" * 5000, b"{}")
        elif kind == 3:
            raw(b"GET /runtime/invocation/next HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n")
        elif kind == 4:
            raw(b"GET /runtime/invocation/next HTTP/1.1\r\nHost: x\r\nX-Big: " + b"h" * 70000 + b"\r\n\r\n")
    # A result that breaks off is no result (its answer, or the close, awaited: results are not raced).
    raw(b"POST /runtime/invocation/response HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"a\"")
    if event.get("oversize"):
        # 300 MB declared, 1 MB sent: the result, refused unread past the limit (407 to the caller).
        raw(b"POST /runtime/invocation/response HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n" + b"r" * (1 << 20))
    print("abused", event.get("abuse", 0), flush=True)
    req("POST", "/runtime/invocation/response", json.dumps({"event": event}).encode())
    req("POST", "/runtime/invocation/response", b"\"a second result\"")
"#;

#[test]
fn a_hostile_custom_runtime_cannot_break_its_runtime_api() {
    let data = TempDir::new("rel-rapi-data");
    let dir = TempDir::new("hostile");
    let bootstrap = dir.path().join("bootstrap");
    std::fs::write(
        &bootstrap,
        format!("#!{}\n{HOSTILE_BOOTSTRAP}", python_sdk()),
    )
    .unwrap();
    std::fs::set_permissions(
        &bootstrap,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("serverless.yml"),
        "component: scf\ninputs:\n  name: hostile\n  runtime: CustomRuntime\n  handler: index.main_handler\n  timeout: 120\n",
    )
    .unwrap();
    let p = Served::start(data.path(), &[dir.path()], &[]);
    let abuse = 60 * scale();
    for round in 0..3 {
        let oversize = round == 1;
        let r = p.invoke(
            "hostile",
            &json!({"n": 7, "abuse": abuse, "round": round, "oversize": oversize}),
        );
        if oversize {
            let err: Value = serde_json::from_str(r["Result"]["ErrMsg"].as_str().unwrap()).unwrap();
            assert_eq!(
                (&err["statusCode"], &err["errorType"]),
                (&json!(407), &json!("ResponseTooLarge")),
                "{r}"
            );
            continue;
        }
        assert_eq!(r["Result"]["InvokeResult"], 0, "{r}");
        let ret: Value = serde_json::from_str(r["Result"]["RetMsg"].as_str().unwrap()).unwrap();
        assert_eq!(ret["event"]["round"], round, "the first result wins: {ret}");
    }
    good_call(&p, "hostile");
    let rss = peak_rss_mb(p.pid());
    figure(format!(
        "runtime-API abuse: 3 × {abuse} hostile requests from the instance, every caller answered; peak RSS {rss:.1} MB"
    ));
    assert!(rss < 100.0, "peak RSS {rss:.1} MB");
}

/// Without namespaces (no `/tmp` of its own), an instance's private `TMPDIR` is checked after its
/// invocations, off the event loop: once a check has found more than 512 MB in it, the instance is retired
/// at the end of an invocation whose log says so, and the next call gets a new instance.
#[test]
fn a_tmpdir_over_512_mb_retires_the_instance() {
    let code = r#"import os, tempfile

def main_handler(event, context):
    if event.get("fill"):
        # Allocated blocks count, written or not: 600 MB without writing them.
        fd = os.open(os.path.join(tempfile.gettempdir(), "fill"), os.O_CREAT | os.O_WRONLY, 0o600)
        os.posix_fallocate(fd, 0, 600 << 20)
        os.close(fd)
    return {"pid": os.getpid()}
"#;
    let dir = function_dir("tmpfull", "Python3.9", "index.py", code, "");
    let data = TempDir::new("tmpfull-data");
    let p = Served::start_with_env(
        data.path(),
        &[dir.path()],
        &[],
        &[
            ("SCF_PYTHON", &python_sdk()),
            ("SCF_LOCAL_NAMESPACES", "off"),
        ],
    );
    let pid_of = |r: &Value| -> u64 {
        assert_eq!(r["Result"]["InvokeResult"], 0, "{r}");
        let ret: Value = serde_json::from_str(r["Result"]["RetMsg"].as_str().unwrap()).unwrap();
        ret["pid"].as_u64().unwrap()
    };
    let filled = pid_of(&p.invoke("tmpfull", &json!({"fill": true})));
    // The check runs after each invocation: a later one (usually the next) ends with the retirement.
    let mut retired = false;
    for _ in 0..200 {
        let r = p.invoke("tmpfull", &json!({}));
        let pid = pid_of(&r);
        assert_eq!(pid, filled, "a new instance before the notice: {r}");
        let log = r["Result"]["Log"].as_str().unwrap_or_default();
        if log.contains("TMPDIR holds 600 MB, over its 512 MB: the instance is retired") {
            retired = true;
            break;
        }
    }
    assert!(retired, "no invocation retired the instance");
    let next = pid_of(&p.invoke("tmpfull", &json!({})));
    assert_ne!(next, filled, "the retired instance served again");
}
