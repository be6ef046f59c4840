//! The debugger hooks with real debuggers attached from the test: a DAP client for debugpy, an inspector
//! (WebSocket) client for Node.js, and gdb for a native handler.

use super::*;

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
