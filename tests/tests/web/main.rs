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

mod image;
mod lifecycle;
mod proxy;
