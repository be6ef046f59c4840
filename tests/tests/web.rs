//! Web functions and image-style event functions through the real `scf-local serve` (`docs/web.md`,
//! `docs/scf-platform.md` §7): the example servers in Python (stdlib), Node.js (`http`) and Rust (hyper), and
//! small `scf_bootstrap` scripts for the failure cases.
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "tests fail loudly"
)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};

use scf_tests::{Served, TempDir, bin, root};
use serde_json::{Value, json};

/// One HTTP answer.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts a platform error of `error_type`/`status_code` answered with HTTP `http`; returns the body.
    fn expect_error(&self, http: u16, error_type: &str, status_code: u64) -> Value {
        assert_eq!(self.status, http, "{self:?}");
        let v = self.json();
        assert_eq!(
            (v["errorType"].as_str(), v["statusCode"].as_u64()),
            (Some(error_type), Some(status_code)),
            "{v}"
        );
        assert_eq!(v["requestId"].as_str(), self.header("x-scf-request-id"));
        v
    }
}

fn read_head(r: &mut impl std::io::BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    (status, headers)
}

/// Sends one request (`Connection: close`); `body` is sent chunked when `chunked`.
fn send(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    chunked: bool,
) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    if chunked {
        for c in body.chunks(1000) {
            s.write_all(format!("{:x}\r\n", c.len()).as_bytes())
                .unwrap();
            s.write_all(c).unwrap();
            s.write_all(b"\r\n").unwrap();
        }
        s.write_all(b"0\r\n\r\n").unwrap();
    } else {
        // A server that refuses early may close before it all went out.
        let _ = s.write_all(body);
    }
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    let is_chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = Vec::new();
    if method == "HEAD" {
    } else if is_chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        let _ = r.read_to_end(&mut body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn get(addr: &str, path: &str) -> Resp {
    send(addr, "GET", path, &[], b"", false)
}

fn sha256_hex(data: &[u8]) -> String {
    // The tests crate has no hash crate: ask Python, which the examples need anyway.
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A copy of an example's directory with `serverless.yml` replaced by `yml` (when given).
fn example(name: &str, yml: Option<&str>) -> TempDir {
    let dir = TempDir::new(name);
    let src = root().join("examples").join(name);
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    if let Some(yml) = yml {
        std::fs::write(dir.path().join("serverless.yml"), yml).unwrap();
    }
    dir
}

/// The Python example as function `name` with extra `inputs` keys.
fn python_web(name: &str, extra: &str) -> TempDir {
    example(
        "web-python",
        Some(&format!(
            "component: scf\ninputs:\n  name: {name}\n  type: web\n{extra}"
        )),
    )
}

/// A web function whose `scf_bootstrap` is `script` (mode `mode`).
fn bootstrap_function(name: &str, script: &str, mode: u32, extra: &str) -> TempDir {
    let dir = TempDir::new(name);
    let p = dir.path().join("scf_bootstrap");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::write(
        dir.path().join("serverless.yml"),
        format!("component: scf\ninputs:\n  name: {name}\n  type: web\n{extra}"),
    )
    .unwrap();
    dir
}

/// A web server (Python's stdlib) whose answers wait for the test: `/stream?go=F` sends a first chunk, then
/// waits until the file `F` exists before the second (`released`, or `gave-up` after two minutes);
/// `/hold?dir=D&go=F` marks its start with a file in `D`, then waits for `F` and answers its pid and port;
/// any other path answers them at once.
const HELD_SERVER: &str = r#"import http.server, json, os, time, urllib.parse, uuid

def wait(path):
    for _ in range(12000):
        if os.path.exists(path):
            return True
        time.sleep(0.01)
    return False

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        if url.path == "/stream":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.chunk(b"first\n")
            self.chunk(b"released\n" if wait(q["go"]) else b"gave-up\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return
        if url.path == "/hold":
            open(os.path.join(q["dir"], uuid.uuid4().hex), "w").close()
            wait(q["go"])
        body = json.dumps({"pid": os.getpid(), "port": int(os.environ["PORT"])}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.HTTPServer(("0.0.0.0", int(os.environ.get("PORT", "9000"))), Handler).serve_forever()
"#;

/// A web function `name` running [`HELD_SERVER`].
fn held_web(name: &str) -> TempDir {
    let dir = bootstrap_function(
        name,
        "#!/bin/bash\nexec python3 server.py\n",
        0o755,
        "  timeout: 900\n",
    );
    std::fs::write(dir.path().join("server.py"), HELD_SERVER).unwrap();
    dir
}

fn logs(p: &Served, function: &str) -> Vec<Value> {
    let r = p.call(
        "GetFunctionLogs",
        &json!({"FunctionName": function, "Order": "asc"}),
    );
    r["Data"]
        .as_array()
        .unwrap_or_else(|| panic!("no logs: {r}"))
        .clone()
}

fn log_of(p: &Served, function: &str, request_id: &str) -> String {
    logs(p, function)
        .iter()
        .find(|d| d["RequestId"] == request_id)
        .and_then(|d| d["Log"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no log for {request_id}"))
}

#[test]
fn python_web_function_gets_methods_paths_queries_headers_and_bodies_as_sent() {
    let f = example("web-python", None);
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let a = &p.addr;

    for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let r = send(
            a,
            method,
            "/web/web-python/echo?a=1&b=two%20words",
            &[("X-Custom", "v1"), ("X-Scf-Name", "forged")],
            b"hello",
            false,
        );
        assert_eq!(r.status, 200, "{method}: {r:?}");
        let v = r.json();
        assert_eq!(v["method"], method);
        assert_eq!(v["path"], "/echo", "the function sees /<path>");
        assert_eq!(v["query"], json!({"a": "1", "b": "two words"}));
        assert_eq!(v["headers"]["x-custom"], "v1");
        assert_eq!(v["body_bytes"], 5);
        let h = &v["headers"];
        assert_eq!(
            h["x-scf-name"], "web-python",
            "the caller cannot forge X-Scf-*"
        );
        assert_eq!(
            h["x-scf-request-id"].as_str(),
            r.header("x-scf-request-id"),
            "the request id is the one the caller gets back"
        );
        assert_eq!(
            (
                h["x-scf-memory"].as_str(),
                h["x-scf-timeout"].as_str(),
                h["x-scf-version"].as_str(),
                h["x-scf-namespace"].as_str(),
                h["x-scf-region"].as_str()
            ),
            (
                Some("128"),
                Some("5000"),
                Some("$LATEST"),
                Some("default"),
                Some("ap-guangzhou")
            )
        );
        assert!(h["x-scf-appid"].is_string() && h["x-scf-uin"].is_string());
    }
    let head = send(a, "HEAD", "/web/web-python/echo", &[], b"", false);
    assert_eq!(head.status, 200);

    // Binary bodies both ways, byte for byte.
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let r = send(
        a,
        "POST",
        "/web/web-python/raw",
        &[("Content-Type", "application/octet-stream")],
        &binary,
        false,
    );
    assert_eq!((r.status, r.body == binary), (200, true));

    // A large body, and a chunked one (streamed to the function).
    let large: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let r = send(a, "POST", "/web/web-python/echo", &[], &large, false);
    assert_eq!(r.json()["body_sha256"], sha256_hex(&large));
    let r = send(a, "POST", "/web/web-python/echo", &[], &binary, true);
    assert_eq!(
        (
            r.json()["body_bytes"].as_u64(),
            r.json()["body_sha256"].clone()
        ),
        (Some(70_000), json!(sha256_hex(&binary)))
    );

    // The function's status and headers come back as it sent them.
    let r = get(a, "/web/web-python/status?code=201&header=abc");
    assert_eq!((r.status, r.header("x-custom")), (201, Some("abc")));
    let r = get(a, "/web/web-python/nowhere");
    assert_eq!(r.status, 404, "the function's own 404");
    let r = get(a, "/web/web-python");
    assert_eq!(r.json()["message"], "Hello from a Python web function");

    // A function that does not exist.
    get(a, "/web/nope/").expect_error(404, "FunctionNotFound", 435);
}

#[test]
fn responses_stream_to_the_caller_as_the_function_writes_them() {
    let f = held_web("streamer");
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let files = TempDir::new("stream-files");
    let go = files.path().join("go");
    let mut s = TcpStream::connect(&p.addr).unwrap();
    write!(
        s,
        "GET /web/streamer/stream?go={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        go.display()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let (status, _) = read_head(&mut r);
    assert_eq!(status, 200);
    let mut chunk = || {
        let mut size = String::new();
        r.read_line(&mut size).unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        let mut data = vec![0; n + 2];
        r.read_exact(&mut data).unwrap();
        String::from_utf8_lossy(&data[..n]).into_owned()
    };
    // The first chunk reaches the caller while the function waits: only then is the function let go.
    assert_eq!(chunk(), "first\n");
    std::fs::write(&go, "").unwrap();
    assert_eq!(
        chunk(),
        "released\n",
        "the first chunk was held back until the end"
    );
    assert_eq!(chunk(), "");
}

#[test]
fn cold_start_ends_when_the_port_listens_and_every_request_is_logged() {
    let f = example("web-python", None);
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let first = get(&p.addr, "/web/web-python/print?line=hello-log");
    assert_eq!(first.status, 200);
    let second = get(&p.addr, "/web/web-python/echo");
    let id1 = first.header("x-scf-request-id").unwrap().to_owned();
    let id2 = second.header("x-scf-request-id").unwrap().to_owned();

    let log1 = log_of(&p, "web-python", &id1);
    let lines: Vec<&str> = log1.lines().collect();
    assert_eq!(lines[0], format!("START RequestId:{id1}"));
    assert!(
        lines[1].starts_with(&format!("Init Report RequestId: {id1} Coldstart: "))
            && lines[1].contains(" InitFunction: "),
        "{log1}"
    );
    assert!(lines[2].starts_with("Network: "), "{log1}");
    assert!(
        log1.contains("listening on "),
        "output during init goes to the first request"
    );
    assert!(
        log1.contains("hello-log\n") && log1.contains("to stderr\n"),
        "{log1}"
    );
    let n = lines.len();
    assert_eq!(
        lines[n - 3],
        format!("Response RequestId:{id1} RetMsg:HTTP 200")
    );
    assert_eq!(lines[n - 2], format!("END RequestId:{id1}"));
    assert!(lines[n - 1].starts_with(&format!("Report RequestId:{id1} Duration:")));

    let log2 = log_of(&p, "web-python", &id2);
    assert!(
        !log2.contains("Init Report"),
        "warm: no Init Report: {log2}"
    );
    assert!(log2.contains("GET /echo"), "{log2}");
    assert_eq!(
        first.json()["pid"],
        second.json()["pid"],
        "the instance is reused"
    );
    // The same logs through the CLI.
    let out = Command::new(bin("scf-local"))
        .args(["logs", "web-python", "--request-id", &id2, "--data-dir"])
        .arg(p.data_dir.as_path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("END RequestId:{id2}")));
}

#[test]
fn size_limits_refuse_large_requests_responses_and_headers() {
    let f = example("web-python", None);
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let a = &p.addr;
    let over = vec![b'a'; 6 * 1024 * 1024 + 1];
    send(a, "POST", "/web/web-python/echo", &[], &over, false).expect_error(
        413,
        "RequestTooLarge",
        406,
    );
    send(a, "POST", "/web/web-python/echo", &[], &over, true).expect_error(
        413,
        "RequestTooLarge",
        406,
    );
    let at_limit = get(a, &format!("/web/web-python/big?bytes={}", 6 * 1024 * 1024));
    assert_eq!(
        (at_limit.status, at_limit.body.len()),
        (200, 6 * 1024 * 1024)
    );
    get(
        a,
        &format!("/web/web-python/big?bytes={}", 6 * 1024 * 1024 + 1),
    )
    .expect_error(502, "ResponseTooLarge", 407);
    let e = get(a, "/web/web-python/big-headers").expect_error(502, "ResponseTooLarge", 407);
    assert!(e["errorMessage"].as_str().unwrap().contains("4KB"));
    // The function keeps serving.
    assert_eq!(get(a, "/web/web-python/").status, 200);
}

#[test]
fn a_request_past_the_timeout_gets_433_and_the_next_one_is_served() {
    let f = python_web("slowweb", "  timeout: 1\n");
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let first = get(&p.addr, "/web/slowweb/echo").json()["pid"].clone();
    let e = get(&p.addr, "/web/slowweb/sleep?s=10").expect_error(504, "Timeout", 433);
    assert_eq!(e["errorMessage"], "Invoking task timed out after 1 seconds");
    let next = get(&p.addr, "/web/slowweb/echo");
    assert_eq!(next.status, 200);
    assert_ne!(
        next.json()["pid"],
        first,
        "an instance that takes one request at a time is killed on a timeout"
    );
}

#[test]
fn one_instance_takes_several_requests_at_once_and_a_timeout_fails_only_its_own() {
    let f = python_web(
        "multi",
        "  timeout: 2\n  instanceConcurrencyConfig:\n    enable: true\n    maxConcurrency: 4\n",
    );
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let pid = get(&p.addr, "/web/multi/").json()["pid"].clone();
    let addr = p.addr.clone();
    let slow = std::thread::spawn(move || get(&addr, "/web/multi/sleep?s=10"));
    let quick: Vec<_> = (0..3)
        .map(|_| {
            let addr = p.addr.clone();
            std::thread::spawn(move || get(&addr, "/web/multi/sleep?s=0.5"))
        })
        .collect();
    for q in quick {
        let r = q.join().unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json()["pid"], pid, "all on the one instance");
    }
    slow.join().unwrap().expect_error(504, "Timeout", 433);
    let after = get(&p.addr, "/web/multi/");
    assert_eq!(
        after.json()["pid"],
        pid,
        "the timeout failed only its own request: the instance lives on"
    );
}

#[test]
fn node_web_function_with_multi_concurrency_serves_concurrent_requests_on_one_instance() {
    let f = example("web-node", None);
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let first = get(&p.addr, "/web/web-node/");
    assert_eq!(first.json()["message"], "Hello from a Node.js web function");
    let r = send(
        &p.addr,
        "PUT",
        "/web/web-node/echo?k=v",
        &[("X-Custom", "n")],
        b"12345",
        false,
    )
    .json();
    assert_eq!(
        (
            r["method"].as_str(),
            r["path"].as_str(),
            r["query"]["k"].as_str(),
            r["headers"]["x-custom"].as_str(),
            r["body_bytes"].as_u64()
        ),
        (Some("PUT"), Some("/echo"), Some("v"), Some("n"), Some(5))
    );
    assert_eq!(r["headers"]["x-scf-name"], "web-node");
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let addr = p.addr.clone();
            std::thread::spawn(move || get(&addr, "/web/web-node/sleep?s=1"))
        })
        .collect();
    for t in threads {
        let r = t.join().unwrap();
        assert_eq!(r.json()["pid"], first.json()["pid"], "{r:?}");
    }
}

#[test]
fn rust_web_function_built_with_hyper() {
    let f = example("web-rust", None);
    std::fs::copy(bin("web-rust"), f.path().join("web-rust")).unwrap();
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    assert_eq!(
        get(&p.addr, "/web/web-rust/").json()["message"],
        "Hello from a Rust web function"
    );
    let r = send(
        &p.addr,
        "POST",
        "/web/web-rust/echo?q=1",
        &[("X-Custom", "r")],
        b"abc",
        false,
    )
    .json();
    assert_eq!(
        (
            r["method"].as_str(),
            r["query"].as_str(),
            r["headers"]["x-custom"].as_str(),
            r["body_bytes"].as_u64()
        ),
        (Some("POST"), Some("q=1"), Some("r"), Some(3))
    );
    assert_eq!(r["headers"]["x-scf-name"], "web-rust");
}

#[test]
fn a_server_that_never_listens_fails_with_port_binding_failed() {
    let f = bootstrap_function(
        "deaf",
        "#!/bin/bash\necho starting but never listening\nsleep 30\n",
        0o755,
        "  initTimeout: 1\n",
    );
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let r = get(&p.addr, "/web/deaf/");
    let e = r.expect_error(504, "PortBindingFailed", 446);
    assert!(
        e["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("PortBindingFailed"),
        "{e}"
    );
    let log = log_of(&p, "deaf", r.header("x-scf-request-id").unwrap());
    assert!(log.contains("starting but never listening"), "{log}");
}

#[test]
fn a_bootstrap_that_exits_or_is_not_executable_fails_with_its_output_in_the_log() {
    let exits = bootstrap_function(
        "exits",
        "#!/bin/bash\necho cannot start: missing config >&2\nexit 2\n",
        0o755,
        "",
    );
    let not_exec = bootstrap_function(
        "noexec",
        "#!/bin/bash\nexec python3 -m http.server 9000\n",
        0o644,
        "",
    );
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[exits.path(), not_exec.path()], &[]);
    let r = get(&p.addr, "/web/exits/");
    let e = r.expect_error(502, "BootstrapError", 405);
    assert!(
        e["stackTrace"].as_str().unwrap().contains("exit status 2"),
        "{e}"
    );
    let log = log_of(&p, "exits", r.header("x-scf-request-id").unwrap());
    assert!(log.contains("cannot start: missing config"), "{log}");
    let e = get(&p.addr, "/web/noexec/").expect_error(502, "BootstrapError", 405);
    assert!(
        e["stackTrace"]
            .as_str()
            .unwrap()
            .contains("is not an executable file"),
        "{e}"
    );
}

#[test]
fn an_exit_during_a_request_is_439_and_the_next_request_gets_a_new_instance() {
    let f = example("web-python", None);
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let pid = get(&p.addr, "/web/web-python/").json()["pid"].clone();
    get(&p.addr, "/web/web-python/exit").expect_error(502, "ProcessExit", 439);
    let r = get(&p.addr, "/web/web-python/");
    assert_eq!(r.status, 200);
    assert_ne!(r.json()["pid"], pid);
}

/// Every process below `pid` on the machine (its children, theirs, …).
fn descendants(pid: u32) -> Vec<u64> {
    let parents: Vec<(u64, u64)> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.file_name().to_str()?.parse::<u64>().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let ppid = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut found = vec![u64::from(pid)];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// A platform killed with `kill -9` takes its instances with it: each instance's init sees the platform's
/// end of its channel close and kills everything the instance started (`docs/reliability.md`).
#[test]
fn instances_of_a_platform_killed_with_kill_9_die_with_it() {
    let f = example("web-python", None);
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    assert_eq!(get(&p.addr, "/web/web-python/").status, 200);
    let started = descendants(p.pid());
    assert!(
        started.len() >= 3,
        "an instance (its init, the web server) and ready inits: {started:?}"
    );
    p.kill9();
    scf_tests::wait_for(120, "every process the platform started to be gone", || {
        started
            .iter()
            .all(|pid| scf_tests::process_gone(*pid))
            .then_some(())
    });
    // The next platform on this machine starts as usual.
    let again = Served::start(data.path(), &[f.path()], &[]);
    assert_eq!(get(&again.addr, "/web/web-python/").status, 200);
}

/// `n` requests at once, each holding its instance until all have started: the (pid, port) of each.
fn concurrent_ports(addr: &str, function: &str, n: usize) -> Vec<(u64, u64)> {
    let files = TempDir::new("held-requests");
    let (started, go) = (files.path().join("started"), files.path().join("go"));
    std::fs::create_dir_all(&started).unwrap();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let addr = addr.to_owned();
            let path = format!(
                "/web/{function}/hold?dir={}&go={}",
                started.display(),
                go.display()
            );
            std::thread::spawn(move || {
                let r = get(&addr, &path);
                assert_eq!(r.status, 200, "{r:?}");
                let v = r.json();
                (v["pid"].as_u64().unwrap(), v["port"].as_u64().unwrap())
            })
        })
        .collect();
    // Until every request is on an instance (or one has already failed: its answer says why).
    scf_tests::wait_for(300, "every request to be on an instance", || {
        (std::fs::read_dir(&started).unwrap().count() == n
            || threads.iter().any(|t| t.is_finished()))
        .then_some(())
    });
    std::fs::write(&go, "").unwrap();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn several_instances_listen_on_port_9000_at_once_in_their_own_network_namespaces() {
    let f = held_web("ns");
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let banner = scf_tests::wait_for(60, "the banner", || {
        Some(p.stderr()).filter(|b| b.contains("scf-local: data in"))
    });
    // This machine runs the tests as root: namespaces are expected, and the banner must say which mode ran.
    assert!(
        banner.contains(
            "web instances: each instance has its own network namespace and listens on port 9000"
        ),
        "network namespaces are not available here; the banner says: {banner}"
    );
    let got = concurrent_ports(&p.addr, "ns", 3);
    let mut pids: Vec<u64> = got.iter().map(|(pid, _)| *pid).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 3, "three instances at once: {got:?}");
    assert!(
        got.iter().all(|(_, port)| *port == 9000),
        "every instance listens on 9000: {got:?}"
    );
}

#[test]
fn without_namespaces_each_instance_gets_a_free_port_and_the_log_says_so() {
    let f = held_web("fallback");
    let data = TempDir::new("data");
    // Stopped with SIGTERM when dropped (even when an assertion fails): its instances go with it.
    let p = Served::start_with_env(data.path(), &[f.path()], &[], &[("SCF_LOCAL_NETNS", "off")]);
    let addr = p.addr.clone();
    let banner = scf_tests::wait_for(60, "the banner", || {
        Some(p.stderr()).filter(|b| b.contains("scf-local: data in"))
    });
    assert!(
        banner.contains("no network namespaces (SCF_LOCAL_NETNS=off): each instance listens on the free port given in PORT"),
        "{banner}"
    );
    let got = concurrent_ports(&addr, "fallback", 3);
    let mut ports: Vec<u64> = got.iter().map(|(_, port)| *port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "three instances, three ports: {got:?}");
    let r = get(&addr, "/web/fallback/");
    assert_eq!(r.status, 200, "{r:?}");
    let id = r.header("x-scf-request-id").unwrap().to_owned();
    // Another process reads the logs: it sees a record a moment after its response.
    let text = scf_tests::wait_for(60, "the request's log", || {
        let out = Command::new(bin("scf-local"))
            .args(["logs", "fallback", "--data-dir"])
            .arg(data.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains(&id).then_some(text)
    });
    assert!(text.contains("Network: no network namespaces"), "{text}");
}

#[test]
fn image_style_event_function_gets_events_as_post_event_invoke() {
    let f = example("image-event", None);
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let r = p.invoke("image-event", &json!({"name": "SCF"}));
    let res = &r["Result"];
    assert_eq!(res["InvokeResult"], 0, "{r}");
    let body: Value = serde_json::from_str(res["RetMsg"].as_str().unwrap()).unwrap();
    assert_eq!(body["hello"], "SCF");
    assert_eq!(
        body["request_id"], res["FunctionRequestId"],
        "context in the headers"
    );
    assert_eq!(
        (
            body["function"].as_str(),
            body["memory"].as_str(),
            body["timeout"].as_str()
        ),
        (Some("image-event"), Some("128"), Some("3000"))
    );
    let log = res["Log"].as_str().unwrap();
    assert!(
        log.contains("Init Report") && log.contains("event for request"),
        "{log}"
    );

    let r = p.invoke("image-event", &json!({"action": "fail"}));
    assert_eq!(r["Result"]["InvokeResult"], -1, "{r}");
    let e: Value = serde_json::from_str(r["Result"]["ErrMsg"].as_str().unwrap()).unwrap();
    assert_eq!(
        (e["errorType"].as_str(), e["statusCode"].as_u64()),
        (Some("UnhandledError"), Some(430))
    );
    assert!(
        e["stackTrace"]
            .as_str()
            .unwrap()
            .contains("failed on purpose")
    );

    let r = p.invoke("image-event", &json!({"action": "sleep", "seconds": 10}));
    let e: Value = serde_json::from_str(r["Result"]["ErrMsg"].as_str().unwrap()).unwrap();
    assert_eq!(
        (e["errorType"].as_str(), e["statusCode"].as_u64()),
        (Some("Timeout"), Some(433)),
        "{r}"
    );
    let r = p.invoke("image-event", &json!({"name": "again"}));
    assert_eq!(
        r["Result"]["InvokeResult"], 0,
        "recovers after a timeout: {r}"
    );

    // Not an event function: a web function is reached over HTTP only.
    let w = example("web-python", None);
    let data2 = TempDir::new("data");
    let p2 = Served::start(data2.path(), &[w.path()], &[]);
    let r = p2.invoke("web-python", &json!({}));
    assert_eq!(r["Error"]["Code"], "InvalidParameterValue", "{r}");
}
