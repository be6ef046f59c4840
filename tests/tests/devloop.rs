//! The development loop through the real binaries: the readable terminal of `serve` and `logs --follow`,
//! reload on save (`--watch`, Python files, a Rust crate rebuilt with cargo, `invoke --watch`), and the
//! debugger hooks with real debuggers attached from the test: a DAP client for debugpy, an inspector
//! (WebSocket) client for Node.js, and gdb for a native handler. Each holds its breakpoint past the
//! function's timeouts and the invocation still answers.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scf_tests::{
    Served, TempDir, bin, err_body, function_dir, native_code_dir, ok_body, python_sdk, wait_for,
};
use serde_json::{Value, json};

/// A free TCP port on 127.0.0.1 (for a debugger to listen on).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process whose stdout and stderr are gathered as they come; killed when dropped.
struct Running {
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
}

impl Running {
    fn start(cmd: &mut Command) -> Running {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_BACKTRACE");
        let mut child = cmd.spawn().unwrap();
        let out = scf_tests::gather(child.stdout.take().unwrap());
        let err = scf_tests::gather(child.stderr.take().unwrap());
        Running { child, out, err }
    }

    fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Waits for the process to end; returns its exit code.
    fn wait(&mut self, what: &str) -> i32 {
        wait_for(120, what, || self.child.try_wait().unwrap())
            .code()
            .unwrap_or(-1)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            if wait_for_exit(&mut self.child).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

fn wait_for_exit(child: &mut Child) -> Option<std::process::ExitStatus> {
    for _ in 0..200 {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

/// Writes `text` to `path` as an editor saving in place would.
fn save(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// Waits until the platform's stderr has its `n`-th line containing `needle`; returns that line.
fn nth_line(p: &Served, needle: &str, n: usize) -> String {
    wait_for(120, &format!("line {n} with {needle:?}"), || {
        p.stderr()
            .lines()
            .filter(|l| l.contains(needle))
            .nth(n - 1)
            .map(str::to_owned)
    })
}

// ---- the readable terminal -----------------------------------------------------------------------------

const GREETS: &str = r#"def main_handler(event, context):
    print("hello from", event.get("who", "nobody"))
    print("second line")
    if event.get("fail"):
        raise ValueError("failing on purpose")
    return {"ok": True}
"#;

#[test]
fn serve_prints_a_line_per_request_with_the_functions_output_indented_and_logs_follow_prints_the_same()
 {
    let f = function_dir("greets", "Python3.9", "index.py", GREETS, "");
    let data = TempDir::new("data");
    let p = Served::start_with_env(
        data.path(),
        &[f.path()],
        &[],
        &[("SCF_PYTHON", &python_sdk())],
    );
    let follow = Running::start(
        Command::new(bin("scf-local"))
            .args(["logs", "greets", "--follow", "--data-dir"])
            .arg(data.path()),
    );
    let first = p.invoke("greets", &json!({"who": "the test"}));
    let id1 = first["Result"]["FunctionRequestId"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = p.invoke("greets", &json!({"fail": true}));
    let id2 = second["Result"]["FunctionRequestId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        err_body(&second)["errorMessage"],
        "user code exception caught"
    );

    // One line per request: time, function, trigger, request id, status, duration, cold/warm; then the
    // function's output indented, and an error's message and trace.
    let block = |text: &str, id: &str| -> Option<Vec<String>> {
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| l.contains(id))?;
        let mut out = vec![lines[at].to_owned()];
        out.extend(
            lines[at + 1..]
                .iter()
                .take_while(|l| l.starts_with("    "))
                .map(|l| (*l).to_owned()),
        );
        (lines.len() > at + out.len() || text.ends_with('\n')).then_some(out)
    };
    let served1 = wait_for(60, "the first request's line", || block(&p.stdout(), &id1));
    let words: Vec<&str> = served1[0].split(' ').collect();
    assert_eq!(words.len(), 7, "{served1:?}");
    assert!(
        words[0].len() == 12 && words[0].as_bytes()[2] == b':',
        "a time first: {served1:?}"
    );
    assert_eq!(&words[1..5], ["greets", "sync", id1.as_str(), "ok"]);
    assert!(words[5].ends_with("ms") || words[5].ends_with('s'));
    assert_eq!(words[6], "cold");
    assert_eq!(
        &served1[1..],
        ["    hello from the test", "    second line"]
    );

    let served2 = wait_for(60, "the failed request's lines", || {
        block(&p.stdout(), &id2).filter(|b| b.iter().any(|l| l.contains("ValueError")))
    });
    assert!(
        served2[0].contains(&format!("greets sync {id2} 430 UnhandledError "))
            && served2[0].ends_with(" warm"),
        "{served2:?}"
    );
    assert_eq!(served2[1], "    hello from nobody");
    assert!(
        served2.contains(&"    ! user code exception caught".to_owned()),
        "{served2:?}"
    );
    assert!(
        !p.stdout().contains('\x1b'),
        "no colour when stdout is not a terminal"
    );

    // `logs --follow` from another process prints the same lines, read from the store.
    let followed = wait_for(60, "logs --follow to print both requests", || {
        let text = follow.stdout();
        Some((block(&text, &id1)?, block(&text, &id2)?))
            .filter(|(_, b)| b.iter().any(|l| l.contains("ValueError")))
    });
    assert_eq!(followed.0, served1);
    assert_eq!(followed.1, served2);
}

// ---- reload on save ------------------------------------------------------------------------------------

/// A handler returning `VERSION` and its pid; with `hold`, it marks its start (`started`) and waits for the
/// file `go` first.
fn versioned(version: &str) -> String {
    format!(
        r#"import os, time
VERSION = {version}

def main_handler(event, context):
    if event.get("hold"):
        open(event["started"], "w").close()
        while not os.path.exists(event["go"]):
            time.sleep(0.01)
    return {{"version": VERSION, "pid": os.getpid()}}
"#
    )
}

#[test]
fn watch_reloads_an_edited_handler_and_a_busy_invocation_finishes_on_the_old_code() {
    let f = function_dir(
        "watched",
        "Python3.9",
        "index.py",
        &versioned("1"),
        "  timeout: 60\n  local:\n    concurrency: 2\n",
    );
    let data = TempDir::new("data");
    let marks = TempDir::new("marks");
    let p = Served::start_with_env(
        data.path(),
        &[f.path()],
        &["--watch"],
        &[("SCF_PYTHON", &python_sdk())],
    );
    nth_line(&p, "watching 1 function directory for changes", 1);
    let v1 = ok_body(&p.invoke("watched", &json!({})));
    assert_eq!(v1["version"], 1);

    // A call holds the warm instance while the file changes.
    let (started, go) = (marks.path().join("started"), marks.path().join("go"));
    let held = {
        let addr = p.addr.clone();
        let event = json!({"hold": true, "started": started, "go": go});
        std::thread::spawn(move || {
            let body =
                json!({"FunctionName": "watched", "ClientContext": event.to_string()}).to_string();
            let raw = scf_tests::http_post(&addr, &[("X-TC-Action", "Invoke")], body.as_bytes());
            serde_json::from_slice::<Value>(&raw).unwrap()["Response"].clone()
        })
    };
    wait_for(60, "the held call to start", || {
        started.exists().then_some(())
    });
    save(&f.path().join("index.py"), &versioned("2"));
    let line = nth_line(&p, "reload watched:", 1);
    assert!(
        line.contains("index.py changed; 0 idle instances retired, 1 busy finishing first"),
        "{line}"
    );

    // The next call cold-starts the new code, with no restart, while the busy one is still running.
    let v2 = ok_body(&p.invoke("watched", &json!({})));
    assert_eq!(v2["version"], 2);
    assert_ne!(v2["pid"], v1["pid"]);
    assert!(!held.is_finished(), "the held call is still running");
    std::fs::write(&go, "").unwrap();
    let old = ok_body(&held.join().unwrap());
    assert_eq!(
        (old["version"].as_i64(), &old["pid"]),
        (Some(1), &v1["pid"]),
        "the busy invocation finished on its old instance, unharmed"
    );
    // Its instance is retired after its request: the process goes away.
    let pid = v1["pid"].as_u64().unwrap();
    wait_for(60, "the old instance to be retired", || {
        scf_tests::process_gone(pid).then_some(())
    });
    let again = ok_body(&p.invoke("watched", &json!({})));
    assert_eq!(
        (again["version"].as_i64(), &again["pid"]),
        (Some(2), &v2["pid"])
    );
}

#[test]
fn watch_a_broken_edit_reports_its_load_error_and_a_fixed_edit_recovers() {
    let f = function_dir("fixme", "Python3.9", "index.py", &versioned("1"), "");
    let data = TempDir::new("data");
    let p = Served::start_with_env(
        data.path(),
        &[f.path()],
        &["--watch"],
        &[("SCF_PYTHON", &python_sdk())],
    );
    assert_eq!(ok_body(&p.invoke("fixme", &json!({})))["version"], 1);
    save(
        &f.path().join("index.py"),
        "def main_handler(event, context)\n    return 1\n",
    );
    nth_line(&p, "reload fixme:", 1);
    let e = err_body(&p.invoke("fixme", &json!({})));
    assert_eq!(e["statusCode"], 443, "{e}");
    assert!(
        e["stackTrace"].as_str().unwrap().contains("SyntaxError"),
        "the load error says what is wrong: {e}"
    );
    save(&f.path().join("index.py"), &versioned("3"));
    nth_line(&p, "reload fixme:", 2);
    assert_eq!(ok_body(&p.invoke("fixme", &json!({})))["version"], 3);
    // Changes under ignored directories reload nothing.
    std::fs::create_dir_all(f.path().join("node_modules/dep")).unwrap();
    std::fs::write(f.path().join("node_modules/dep/index.js"), "1").unwrap();
    std::fs::create_dir_all(f.path().join("__pycache__")).unwrap();
    std::fs::write(f.path().join("__pycache__/x.pyc"), "1").unwrap();
    // A later real change is the next reload: nothing came between.
    save(
        &f.path().join("serverless.yml"),
        &format!(
            "{}  timeout: 7\n",
            std::fs::read_to_string(f.path().join("serverless.yml")).unwrap()
        ),
    );
    let third = nth_line(&p, "reload fixme:", 3);
    assert!(third.contains("serverless.yml changed"), "{third}");
}

/// A Rust handler crate with no dependencies (so its first build takes a second): the C ABI by hand,
/// returning `{"version": N}`.
fn handler_crate(version: &str) -> String {
    format!(
        r#"#[repr(C)]
pub struct Request {{ abi: u32, event: *const u8, event_len: usize, context: *const u8, context_len: usize }}
#[repr(C)]
pub struct Buffer {{ data: *const u8, len: usize, cap: usize, free: usize, opaque: usize }}
static OUT: &[u8] = b"{{\"version\": {version}}}";
/// # Safety
/// The platform passes a valid buffer.
#[no_mangle]
pub unsafe extern "C" fn main_handler(_request: *const Request, out: *mut Buffer) -> i32 {{
    unsafe {{ *out = Buffer {{ data: OUT.as_ptr(), len: OUT.len(), cap: OUT.len(), free: 0, opaque: 0 }} }};
    0
}}
"#
    )
}

#[test]
fn watch_rebuilds_a_rust_crate_first_and_a_failed_build_keeps_the_old_instances() {
    let f = TempDir::new("crate");
    std::fs::create_dir_all(f.path().join("src")).unwrap();
    std::fs::write(
        f.path().join("Cargo.toml"),
        "[package]\nname = \"watched-crate\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\nname = \"index\"\ncrate-type = [\"cdylib\"]\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(f.path().join("src/lib.rs"), handler_crate("1")).unwrap();
    std::fs::write(
        f.path().join("serverless.yml"),
        "inputs:\n  name: crate\n  runtime: native\n  handler: index.main_handler\n",
    )
    .unwrap();
    let data = TempDir::new("data");
    let target = TempDir::new("crate-target");
    let p = Served::start_with_env(
        data.path(),
        &[f.path()],
        &["--watch"],
        &[("CARGO_TARGET_DIR", target.path().to_str().unwrap())],
    );
    // The first build ran before the platform listened, its progress shown.
    let err = p.stderr();
    assert!(
        err.contains("scf-local: building watched-crate (debug) with cargo build"),
        "{err}"
    );
    assert!(
        err.contains("Compiling watched-crate"),
        "cargo's progress: {err}"
    );
    let v1 = p.invoke("crate", &json!({}));
    assert_eq!(ok_body(&v1)["version"], 1);

    save(&f.path().join("src/lib.rs"), &handler_crate("2"));
    let line = nth_line(&p, "reload crate:", 1);
    assert!(
        line.contains("src/lib.rs changed; 1 idle instance retired"),
        "{line}"
    );
    assert_eq!(ok_body(&p.invoke("crate", &json!({})))["version"], 2);

    // A build that fails keeps the instance that runs, and says what cargo said.
    save(&f.path().join("src/lib.rs"), "pub fn broken( {\n");
    let line = nth_line(&p, "reload crate:", 2);
    assert!(
        line.contains("build failed: the old instances stay"),
        "{line}"
    );
    assert!(
        p.stderr().contains("error"),
        "cargo's error is shown: {}",
        p.stderr()
    );
    let kept = p.invoke("crate", &json!({}));
    assert_eq!(ok_body(&kept)["version"], 2);
    assert!(
        !kept["Result"]["Log"]
            .as_str()
            .unwrap_or("")
            .contains("Init Report"),
        "the old instance served it, warm"
    );
    save(&f.path().join("src/lib.rs"), &handler_crate("3"));
    nth_line(&p, "reload crate:", 3);
    assert_eq!(ok_body(&p.invoke("crate", &json!({})))["version"], 3);
    // The build's own output (under cargo's target directory) never triggered a reload by itself.
    assert_eq!(
        p.stderr().matches("reload crate:").count(),
        3,
        "{}",
        p.stderr()
    );
}

#[test]
fn invoke_watch_runs_again_on_each_save_until_stopped() {
    let f = function_dir("again", "Python3.9", "index.py", &versioned("1"), "");
    let mut run = Running::start(
        Command::new(bin("scf-local"))
            .arg("invoke")
            .arg(f.path())
            .arg("--watch")
            .env("SCF_PYTHON", python_sdk()),
    );
    let body = |n: usize| {
        wait_for(120, &format!("run {n}"), || {
            run.stdout()
                .lines()
                .nth(n - 1)
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
        })
    };
    assert_eq!(body(1)["version"], 1);
    wait_for(60, "the watch to begin", || {
        run.stderr().contains("watching").then_some(())
    });
    save(&f.path().join("index.py"), &versioned("2"));
    assert_eq!(body(2)["version"], 2);
    assert!(
        run.stderr()
            .contains("reload again: index.py changed; invoking again"),
        "{}",
        run.stderr()
    );
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(run.child.id().to_string())
        .status();
    assert_eq!(run.wait("invoke --watch to stop"), 0);
}

// ---- debuggers -----------------------------------------------------------------------------------------

/// Holds a paused handler until it has been paused for twice `timeout`: the property under test is that a
/// pause longer than the timeouts does not kill the instance, so the pause has to last that long.
fn hold_past(paused_at: Instant, timeout: Duration) {
    let until = paused_at + timeout * 2;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Debug Adapter Protocol client (debugpy's protocol): `Content-Length` framed JSON.
struct Dap {
    s: TcpStream,
    buf: Vec<u8>,
    seq: u64,
}

/// A debugger's connection: messages in order.
trait Messages {
    /// The next message.
    fn next(&mut self) -> Value;

    /// Reads until a message `pred` accepts.
    fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..10_000 {
            let m = self.next();
            if pred(&m) {
                return m;
            }
        }
        panic!("no {what} from the debugger");
    }
}

impl Dap {
    fn connect(port: u16) -> Dap {
        let s = wait_for(60, "debugpy to listen", || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Dap {
            s,
            buf: Vec::new(),
            seq: 0,
        }
    }

    fn request(&mut self, command: &str, arguments: Value) {
        self.seq += 1;
        let body =
            json!({"seq": self.seq, "type": "request", "command": command, "arguments": arguments})
                .to_string();
        write!(self.s, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    }

    fn read_message(&mut self) -> Value {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length:"))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                if self.buf.len() >= end + 4 + len {
                    let msg = serde_json::from_slice(&self.buf[end + 4..end + 4 + len]).unwrap();
                    self.buf.drain(..end + 4 + len);
                    return msg;
                }
            }
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk).unwrap();
            assert!(n > 0, "debugpy closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

const DEBUGGED_PY: &str = r#"import os

def main_handler(event, context):
    answer = event["n"] * 2
    return {"answer": answer, "pid": os.getpid()}
"#;

#[test]
fn python_under_debugpy_stops_at_a_breakpoint_past_its_timeouts_and_answers() {
    let f = function_dir("pydebug", "Python3.9", "index.py", DEBUGGED_PY, "");
    let port = free_port();
    let timeout = Duration::from_millis(500);
    let mut run = Running::start(
        Command::new(bin("scf-local"))
            .arg("invoke")
            .arg(f.path())
            .args([
                "--debug",
                &port.to_string(),
                "--debug-wait",
                "--timeout",
                "0.5",
                "--init-timeout",
                "0.5",
            ])
            .args(["--event", r#"{"n": 21}"#])
            .env("SCF_PYTHON", python_sdk()),
    );
    let mut dap = Dap::connect(port);
    // The instance waits for its debugger during init: let that wait outlast the init timeout.
    hold_past(Instant::now(), timeout);
    dap.request("initialize", json!({"adapterID": "scf-tests", "clientID": "scf-tests", "pathFormat": "path", "linesStartAt1": true}));
    dap.until("initialize response", |m| m["command"] == "initialize");
    dap.request("attach", json!({"justMyCode": true}));
    dap.until("initialized event", |m| m["event"] == "initialized");
    let source = f.path().canonicalize().unwrap().join("index.py");
    dap.request(
        "setBreakpoints",
        json!({"source": {"path": source}, "breakpoints": [{"line": 4}]}),
    );
    let set = dap.until("setBreakpoints response", |m| {
        m["command"] == "setBreakpoints"
    });
    assert_eq!(set["body"]["breakpoints"][0]["verified"], true, "{set}");
    dap.request("configurationDone", json!({}));
    let stopped = dap.until("the breakpoint", |m| m["event"] == "stopped");
    let paused_at = Instant::now();
    assert_eq!(stopped["body"]["reason"], "breakpoint", "{stopped}");
    let thread = stopped["body"]["threadId"].clone();
    // Real debugger work while paused: the stack is at our line, and the event is visible.
    dap.request("stackTrace", json!({"threadId": thread}));
    let stack = dap.until("the stack", |m| m["command"] == "stackTrace");
    let top = &stack["body"]["stackFrames"][0];
    assert_eq!(
        (top["name"].as_str(), top["line"].as_i64()),
        (Some("main_handler"), Some(4)),
        "{stack}"
    );
    dap.request(
        "evaluate",
        json!({"expression": "event['n']", "frameId": top["id"], "context": "watch"}),
    );
    let value = dap.until("the evaluation", |m| m["command"] == "evaluate");
    assert_eq!(value["body"]["result"], "21", "{value}");
    hold_past(paused_at, timeout);
    dap.request("continue", json!({"threadId": thread}));
    assert_eq!(run.wait("the invocation to answer"), 0, "{}", run.stderr());
    let body: Value = serde_json::from_str(run.stdout().trim()).unwrap();
    assert_eq!(body["answer"], 42);
    let err = run.stderr();
    assert!(
        err.contains(&format!("runs under debugpy on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("no execution or init timeout"), "{err}");
    assert!(!err.contains("timed out"), "{err}");
    // The log shows the pause: longer than the timeouts that were suspended.
    let ms = |line: &str, key: &str| -> f64 {
        let v = line.split(key).nth(1).unwrap();
        v[..v.find("ms").unwrap()].parse().unwrap()
    };
    let init = err.lines().find(|l| l.starts_with("Init Report")).unwrap();
    let report = err
        .lines()
        .find(|l| l.starts_with("Report RequestId"))
        .unwrap();
    assert!(ms(init, "Coldstart: ") > 500.0, "{init}");
    assert!(ms(report, "Duration:") > 500.0, "{report}");
}

/// A WebSocket client (RFC 6455), enough for Node's inspector: text frames, masked as a client must.
struct Ws {
    s: TcpStream,
    next_id: u64,
}

impl Ws {
    fn connect(url: &str) -> Ws {
        let rest = url.strip_prefix("ws://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut s = TcpStream::connect(host).unwrap();
        write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Ws { s, next_id: 0 }
    }

    fn send(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let text = json!({"id": self.next_id, "method": method, "params": params}).to_string();
        let payload = text.as_bytes();
        let mut frame = vec![0x81u8];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&frame).unwrap();
        self.next_id
    }

    fn read_message(&mut self) -> Value {
        loop {
            let mut h = [0u8; 2];
            self.s.read_exact(&mut h).unwrap();
            let len = match h[1] & 0x7f {
                126 => {
                    let mut l = [0u8; 2];
                    self.s.read_exact(&mut l).unwrap();
                    u64::from(u16::from_be_bytes(l))
                }
                127 => {
                    let mut l = [0u8; 8];
                    self.s.read_exact(&mut l).unwrap();
                    u64::from_be_bytes(l)
                }
                n => u64::from(n),
            };
            let mut payload = vec![0u8; usize::try_from(len).unwrap()];
            self.s.read_exact(&mut payload).unwrap();
            if h[0] & 0x0f == 1 {
                return serde_json::from_slice(&payload).unwrap();
            }
            assert_ne!(h[0] & 0x0f, 8, "the inspector closed the connection");
        }
    }
}

/// `GET http://127.0.0.1:PORT/PATH`'s body, or `None` while nothing listens.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    // Node's inspector keeps the connection open: read the head, then `Content-Length` bytes.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).ok()?;
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

const DEBUGGED_JS: &str = r#"exports.main_handler = async (event, context) => {
  const answer = event.n * 2;
  return { answer, pid: process.pid };
};
"#;

#[test]
fn node_under_the_inspector_stops_at_a_breakpoint_past_its_timeouts_and_answers() {
    let f = function_dir(
        "nodedebug",
        "Nodejs16.13",
        "index.js",
        DEBUGGED_JS,
        "  timeout: 0.5\n  initTimeout: 0.5\n",
    );
    let data = TempDir::new("data");
    let port = free_port();
    let timeout = Duration::from_millis(500);
    let p = Served::start(
        data.path(),
        &[f.path()],
        &["--debug", &format!("nodedebug={port}"), "--debug-wait"],
    );
    // The banner follows the "listening" line that `Served::start` waits for.
    nth_line(
        &p,
        &format!(
            "debug: function nodedebug runs under Node's inspector on 127.0.0.1:{port}; each instance waits"
        ),
        1,
    );
    let call = {
        let addr = p.addr.clone();
        std::thread::spawn(move || {
            let body = json!({"FunctionName": "nodedebug", "ClientContext": "{\"n\": 21}", "LogType": "Tail"}).to_string();
            let raw = scf_tests::http_post(&addr, &[("X-TC-Action", "Invoke")], body.as_bytes());
            serde_json::from_slice::<Value>(&raw).unwrap()["Response"].clone()
        })
    };
    // The call cold-starts the instance, which waits for its debugger (past the init timeout).
    let list = wait_for(60, "the inspector to listen", || {
        http_get(port, "/json/list")
    });
    hold_past(Instant::now(), timeout);
    let targets: Value = serde_json::from_str(&list).unwrap();
    let url = targets[0]["webSocketDebuggerUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ws = Ws::connect(&url);
    ws.send("Runtime.enable", json!({}));
    ws.send("Debugger.enable", json!({}));
    let bp = ws.send(
        "Debugger.setBreakpointByUrl",
        json!({"lineNumber": 1, "urlRegex": "nodedebug-.*/index\\.js$"}),
    );
    let set = ws.until("the breakpoint's answer", |m| m["id"] == bp);
    let bp_id = set["result"]["breakpointId"].clone();
    ws.send("Runtime.runIfWaitingForDebugger", json!({}));
    let paused = ws.until("the breakpoint", |m| m["method"] == "Debugger.paused");
    let paused_at = Instant::now();
    let frame = &paused["params"]["callFrames"][0];
    assert_eq!(frame["functionName"], "exports.main_handler", "{paused}");
    assert_eq!(frame["location"]["lineNumber"], 1);
    let eval = ws.send(
        "Debugger.evaluateOnCallFrame",
        json!({"callFrameId": frame["callFrameId"], "expression": "event.n"}),
    );
    let value = ws.until("the evaluation", |m| m["id"] == eval);
    assert_eq!(value["result"]["result"]["value"], 21, "{value}");
    hold_past(paused_at, timeout);
    // The breakpoint goes before the handler resumes: the next call below runs through.
    let removed = ws.send("Debugger.removeBreakpoint", json!({"breakpointId": bp_id}));
    ws.until("the breakpoint removed", |m| m["id"] == removed);
    ws.send("Debugger.resume", json!({}));
    let r = call.join().unwrap();
    assert_eq!(ok_body(&r)["answer"], 42);
    let log = r["Result"]["Log"].as_str().unwrap();
    assert!(
        log.contains("Debugger listening on ws://127.0.0.1"),
        "{log}"
    );
    assert!(!log.contains("timed out"), "{log}");
    nth_line(&p, "debug: nodedebug: instance pid ", 1);
    // The instance is kept for the debugger: the next call is warm on the same process.
    let again = p.invoke("nodedebug", &json!({"n": 1}));
    assert_eq!(ok_body(&again)["pid"], ok_body(&r)["pid"]);
}

#[test]
fn native_instance_prints_its_pid_waits_for_gdb_and_a_breakpoint_holds_past_the_timeout() {
    let f = native_code_dir("errors");
    let mut run = Running::start(
        Command::new(bin("scf-local"))
            .arg("invoke")
            .arg(f.path())
            .args([
                "--handler",
                "errors.sleeps",
                "--runtime",
                "native",
                "--timeout",
                "0.5",
            ])
            .args(["--debug", "--debug-wait", "--event", r#"{"seconds": 0}"#]),
    );
    let pid: u32 = wait_for(60, "the pid and the gdb command", || {
        let err = run.stderr();
        let line = err
            .lines()
            .find(|l| l.contains("attach with `gdb -p "))?
            .to_owned();
        let pid = line
            .split("gdb -p ")
            .nth(1)?
            .split('`')
            .next()?
            .parse()
            .ok()?;
        assert!(line.contains(&format!("`lldb -p {pid}`")), "{line}");
        Some(pid)
    });
    assert!(
        run.stdout().is_empty(),
        "the invocation waits for the debugger"
    );
    // gdb attaches, stops in the handler, stays past the timeout, and lets the process go on.
    let gdb = Command::new("gdb")
        .args(["-p", &pid.to_string(), "-batch", "-nx"])
        .args([
            "-ex",
            "break sleeps",
            "-ex",
            "continue",
            "-ex",
            "info symbol $pc",
        ])
        .args(["-ex", "shell sleep 1", "-ex", "detach"])
        .output()
        .unwrap_or_else(|e| panic!("gdb is needed for this test (apt-get install gdb): {e}"));
    let said = String::from_utf8_lossy(&gdb.stdout);
    assert!(
        said.contains("Breakpoint 1, ") && said.contains("sleeps"),
        "{said}\n{}",
        String::from_utf8_lossy(&gdb.stderr)
    );
    assert_eq!(run.wait("the invocation to answer"), 0, "{}", run.stderr());
    assert_eq!(run.stdout().trim(), "\"woke up\"");
    let err = run.stderr();
    assert!(
        err.contains(&format!("a debugger attached to pid {pid}")),
        "{err}"
    );
    assert!(!err.contains("timed out"), "{err}");
}

impl Messages for Dap {
    fn next(&mut self) -> Value {
        self.read_message()
    }
}

impl Messages for Ws {
    fn next(&mut self) -> Value {
        self.read_message()
    }
}
