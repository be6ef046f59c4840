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

mod debug;
mod watch;
