//! Helpers for the integration tests: run the real `scf-local invoke` and read what it printed.
//!
//! The binaries and the example handler libraries must be built first (`make build`, or
//! `cargo build --workspace`); the tests find them in the target directory they themselves run from.
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test helpers fail loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The target directory the tests were built into (`target/debug`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/<test binary>, or target/debug/<binary> (`make soak`)
    let dir = exe.parent().unwrap();
    if dir.ends_with("deps") {
        dir.parent().unwrap().to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// A built binary of the workspace, or a clear failure telling how to build it.
pub fn bin(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: run `make build` (or `cargo build --workspace`) first",
        p.display()
    );
    p
}

/// A fresh temporary directory for one test, removed when dropped.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Makes `/var/tmp/scf-tests-<name>-<pid>-<n>`: not under the machine's `/tmp`, which an instance with
    /// its own `/tmp` does not see, so a test and its functions can pass files through it (as code a user
    /// keeps in a project directory); and not below a directory named `target`, which `--watch` ignores.
    pub fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let base = Path::new("/var/tmp");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let p = base.join(format!("scf-tests-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A code directory holding the native example library `lib<name>.so` (copied from the target directory).
pub fn native_code_dir(lib: &str) -> TempDir {
    let dir = TempDir::new(lib);
    let src = bin(&format!("lib{lib}.so"));
    std::fs::copy(&src, dir.path().join(format!("lib{lib}.so"))).unwrap();
    dir
}

/// What one `scf-local invoke` printed.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// stdout: the body the caller gets.
    pub stdout: String,
    /// stderr: the request's log.
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim_end())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    /// The log's lines.
    pub fn log(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    /// Asserts a function error of `error_type` and `status` and returns the body.
    pub fn expect_error(&self, error_type: &str, status: u64) -> Value {
        assert_eq!(self.code, 1, "expected a function error: {self:#?}");
        let v = self.json();
        assert_eq!(v["errorType"], error_type, "{self:#?}");
        assert_eq!(v["statusCode"], status, "{self:#?}");
        assert_eq!(v["errorCode"], -1, "{self:#?}");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "errorCode",
                "errorMessage",
                "errorType",
                "requestId",
                "stackTrace",
                "statusCode"
            ]
        );
        v
    }

    /// Asserts success and returns the body as JSON.
    pub fn expect_ok(&self) -> Value {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self.json()
    }
}

/// Runs `scf-local invoke <code_dir> <args…>` with `env` added to its environment.
pub fn invoke_with_env(code_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin("scf-local"));
    cmd.arg("invoke")
        .arg(code_dir)
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Panics print their backtrace into the function's log when this is set; keep logs the same everywhere.
    cmd.env_remove("RUST_BACKTRACE");
    Run::from(cmd.output().unwrap())
}

/// Runs `scf-local invoke <code_dir> <args…>`.
pub fn invoke(code_dir: &Path, args: &[&str]) -> Run {
    invoke_with_env(code_dir, args, &[])
}

/// Asserts that the log has the request lines of `docs/scf-platform.md` §4 in order around the user's lines,
/// and returns the user's lines (between `Init Report` and `ERROR`/`Response`).
pub fn check_log_shape(run: &Run) -> Vec<String> {
    let log = run.log();
    let id = run.json()["requestId"].as_str().map(str::to_owned);
    assert!(
        log.first()
            .is_some_and(|l| l.starts_with("START RequestId:")),
        "{log:#?}"
    );
    let rid = log[0].trim_start_matches("START RequestId:").to_owned();
    if let Some(id) = id {
        assert_eq!(rid, id, "the log's request id is the body's");
    }
    assert!(
        log[1].starts_with(&format!("Init Report RequestId: {rid} Coldstart: ")),
        "{log:#?}"
    );
    assert!(
        log[1].contains("(PullCode: ")
            && log[1].contains(" InitRuntime: ")
            && log[1].contains(" InitFunction: ")
    );
    let n = log.len();
    assert!(n >= 5, "{log:#?}");
    assert_eq!(log[n - 2], format!("END RequestId:{rid}"));
    assert!(
        log[n - 1].starts_with(&format!("Report RequestId:{rid} Duration:")),
        "{log:#?}"
    );
    assert!(log[n - 1].contains(" MemUsage:"));
    assert!(
        log[n - 3].starts_with(&format!("Response RequestId:{rid} RetMsg:")),
        "{log:#?}"
    );
    let mut end = n - 3;
    if run.code == 1 {
        assert!(
            log[n - 4].starts_with(&format!("ERROR RequestId:{rid} Result:")),
            "{log:#?}"
        );
        end = n - 4;
    }
    log[2..end].iter().map(|s| (*s).to_owned()).collect()
}

/// A running `scf-local serve`, stopped (SIGTERM) when dropped.
#[derive(Debug)]
pub struct Served {
    child: std::process::Child,
    stopped: bool,
    /// `127.0.0.1:PORT` of its front door.
    pub addr: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    /// The data directory [`Served::one`] made, removed after the platform has stopped.
    _own_data: Option<TempDir>,
}

impl Served {
    /// Serves the one function in `code` with a fresh data directory of its own, kept as long as the platform.
    pub fn one(code: &Path) -> Served {
        let data = TempDir::new("data");
        let mut served = Self::start(data.path(), &[code], &[]);
        served._own_data = Some(data);
        served
    }

    /// Starts `scf-local serve --port 0 --data-dir <data_dir> <dirs…> <extra…>` and waits until it listens.
    pub fn start(data_dir: &Path, dirs: &[&Path], extra: &[&str]) -> Served {
        Self::start_with_env(data_dir, dirs, extra, &[])
    }

    /// [`Served::start`] with `env` added to the platform's (and so its instances') environment.
    pub fn start_with_env(
        data_dir: &Path,
        dirs: &[&Path],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Served {
        Self::start_under(&[], data_dir, dirs, extra, env)
    }

    /// [`Served::start_with_env`] through `wrapper`, a command that execs its arguments (the platform's pid
    /// stays the child's), such as `sh -c 'ulimit -n 256 && exec "$0" "$@"'`.
    pub fn start_under(
        wrapper: &[&str],
        data_dir: &Path,
        dirs: &[&Path],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Served {
        use std::io::BufRead as _;
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin("scf-local"));
                c
            }
            None => Command::new(bin("scf-local")),
        };
        cmd.arg("serve")
            .arg("--port")
            .arg("0")
            .arg("--data-dir")
            .arg(data_dir);
        cmd.args(dirs)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.env_remove("RUST_BACKTRACE")
            .env_remove("TENCENTCLOUD_SECRETID")
            .env_remove("TENCENTCLOUD_SECRETKEY");
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().unwrap();
        let out = gather(child.stdout.take().unwrap());
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            // The banner is written at once: the lines that arrived with `listening on` are kept before the
            // test is told, so that `stderr()` right after `start` holds the whole banner.
            let mut reader = std::io::BufReader::with_capacity(1 << 16, stderr);
            let mut listening: Option<String> = None;
            let mut line = String::new();
            loop {
                line.clear();
                if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                    break;
                }
                let text = line.trim_end_matches('\n');
                if let Some(addr) = text.strip_prefix("scf-local: listening on http://") {
                    listening = Some(addr.to_owned());
                }
                sink.lock().unwrap().push_str(&format!("{text}\n"));
                if !reader.buffer().contains(&b'\n')
                    && let Some(addr) = listening.take()
                {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("scf-local serve did not start: {}", log.lock().unwrap())
            });
        Served {
            child,
            stopped: false,
            addr,
            data_dir: data_dir.to_path_buf(),
            stderr: log,
            stdout: out,
            _own_data: None,
        }
    }

    /// What the platform wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// What the platform wrote to stdout so far (a line per finished request).
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Calls the front door's `action` with `params`; returns the `Response` object.
    pub fn call(&self, action: &str, params: &Value) -> Value {
        let body = params.to_string();
        let raw = http_post(
            &self.addr,
            &[("X-TC-Action", action), ("X-TC-Version", "2018-04-16")],
            body.as_bytes(),
        );
        let v: Value = serde_json::from_slice(&raw)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&raw)));
        v["Response"].clone()
    }

    /// A sync `Invoke` of `function` with `event`; returns `Response`.
    pub fn invoke(&self, function: &str, event: &Value) -> Value {
        self.call("Invoke", &serde_json::json!({"FunctionName": function, "ClientContext": event.to_string(), "LogType": "Tail"}))
    }

    /// An async `Invoke`; returns the request id.
    pub fn invoke_async(&self, function: &str, event: &Value) -> String {
        let r = self.call("Invoke", &serde_json::json!({"FunctionName": function, "ClientContext": event.to_string(), "InvocationType": "Event"}));
        r["Result"]["FunctionRequestId"]
            .as_str()
            .unwrap_or_else(|| panic!("no request id: {r}"))
            .to_owned()
    }

    /// Sends SIGKILL to the platform (no clean shutdown) and waits for it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stopped = true;
    }

    /// The platform's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.stopped || matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // Ask for a clean shutdown with SIGTERM, then make sure.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 POST to `addr` `/`; returns the response body.
pub fn http_post(addr: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    try_http_post(addr, headers, body)
        .unwrap_or_else(|e| panic!("POST to {addr}: {e}"))
        .1
}

/// [`http_post`] that says why it failed (a platform that is down, a connection closed without an answer);
/// returns the status and the body.
pub fn try_http_post(
    addr: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    try_http_request(addr, "POST", "/", &all, body).map(|a| (a.status, a.body))
}

/// One HTTP/1.1 answer: status, headers (names in lower case), body.
#[derive(Debug)]
pub struct HttpAnswer {
    /// The status code (0 when the status line has none).
    pub status: u16,
    /// The headers, names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body as sent (not de-chunked).
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// The first header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (fails loudly when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// `method target` to `addr` with `headers` and `body`, on a connection of its own (`Connection: close`).
pub fn http_request(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpAnswer {
    try_http_request(addr, method, target, headers, body)
        .unwrap_or_else(|e| panic!("{method} {target} to {addr}: {e}"))
}

/// [`http_request`] that says why it failed.
pub fn try_http_request(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpAnswer> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr)?;
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("no HTTP head: {}", String::from_utf8_lossy(&raw)),
            )
        })?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(HttpAnswer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// Polls `f` every 50 ms until it returns `Some`; fails loudly after `secs` seconds (a generous bound: the
/// tests wait on state, and a loaded machine only makes them slower).
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A code directory with the native `errors` example library and a `serverless.yml` of `yml`.
pub fn native_function(name: &str, yml: &str) -> TempDir {
    let dir = native_code_dir("errors");
    std::fs::write(
        dir.path().join("serverless.yml"),
        format!("component: scf\ninputs:\n  name: {name}\n  runtime: native\n{yml}"),
    )
    .unwrap();
    dir
}

/// The event of the conformance handler `logs_many_lines`: 5,000 lines of 200 bytes (about 1 MB).
pub const MANY_LINES_EVENT: &str = r#"{"lines":5000,"width":200}"#;

/// Asserts that `run` (the conformance handler `logs_many_lines` on [`MANY_LINES_EVENT`]) succeeded and that
/// every line it printed is in the request's log, in order, before its `Response` line.
pub fn check_many_lines(run: &Run) {
    assert_eq!(
        run.expect_ok(),
        serde_json::json!({"printed": 5000}),
        "{}",
        run.stdout
    );
    let got = check_log_shape(run);
    let want = (0..5000).map(|i| {
        let head = format!("line {i} ");
        let pad = 200 - head.len();
        format!("{head}{}", "x".repeat(pad))
    });
    let mut n = 0;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(*g == w, "log line {i} is {g:?}, not {w:?}");
        n += 1;
    }
    assert_eq!(
        (n, got.len()),
        (5000, 5000),
        "5,000 lines printed, {} in the request's log",
        got.len()
    );
}

/// The interpreter with the Python SDK (`scf_sdk`): `SCF_PYTHON`, else the checkout's `.venv` (`make build`
/// creates it).
pub fn python_sdk() -> String {
    if let Ok(p) = std::env::var("SCF_PYTHON")
        && !p.is_empty()
    {
        return p;
    }
    let venv = root().join(".venv/bin/python");
    assert!(
        venv.is_file(),
        "{} is missing: run `make build` (it creates .venv with scf_sdk), or set SCF_PYTHON",
        venv.display()
    );
    venv.display().to_string()
}

/// A code directory holding `file` with `code` and a `serverless.yml` for function `name` of `runtime`
/// (handler `index.main_handler`) with `yml` added under `inputs`.
pub fn function_dir(name: &str, runtime: &str, file: &str, code: &str, yml: &str) -> TempDir {
    let dir = TempDir::new(name);
    std::fs::write(dir.path().join(file), code).unwrap();
    std::fs::write(
        dir.path().join("serverless.yml"),
        format!(
            "component: scf\ninputs:\n  name: {name}\n  runtime: {runtime}\n  handler: index.main_handler\n{yml}"
        ),
    )
    .unwrap();
    dir
}

/// Whether process `pid` is gone (or a zombie nobody has reaped yet).
pub fn process_gone(pid: u64) -> bool {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.is_empty() || s.contains("State:\tZ")
}

/// The text `stream` writes, gathered line by line on a thread of its own as it comes.
pub fn gather(
    stream: impl std::io::Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<String>> {
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stream)).map_while(Result::ok) {
            sink.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    text
}

/// The handler's result of a successful front-door `Invoke` answer (`Result.RetMsg`, parsed), asserting
/// `InvokeResult` 0.
pub fn ok_body(r: &Value) -> Value {
    assert!(r.get("Error").is_none(), "API error: {r}");
    let res = &r["Result"];
    assert_eq!(res["InvokeResult"], 0, "{r}");
    serde_json::from_str(res["RetMsg"].as_str().unwrap()).unwrap()
}

/// The error of a failed front-door `Invoke` answer (`Result.ErrMsg`, parsed), asserting `InvokeResult` -1.
pub fn err_body(r: &Value) -> Value {
    assert!(r.get("Error").is_none(), "API error: {r}");
    let res = &r["Result"];
    assert_eq!(res["InvokeResult"], -1, "{r}");
    serde_json::from_str(res["ErrMsg"].as_str().unwrap()).unwrap()
}
