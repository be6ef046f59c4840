//! Running a function's instance under a debugger (`scf-local invoke --debug`, `serve --debug FUNCTION`).
//!
//! - **Python**: the instance starts `debugpy` listening on `127.0.0.1:PORT` (default 5678) before the
//!   function is imported; `--debug-wait` makes it wait for a client first. The interpreter must have
//!   `debugpy` installed; the instance says how to install it when it has not.
//! - **Node.js**: `node --inspect=127.0.0.1:PORT` (default 9229), or `--inspect-wait` with `--debug-wait`.
//! - **Native** (and custom runtimes): the platform prints the instance's pid and the `gdb` / `lldb` command
//!   that attaches to it; with `--debug-wait` the first invocation waits until a debugger has attached (the
//!   process's `TracerPid`).
//!
//! The platform cannot tell a handler stopped at a breakpoint from one that is slow (nothing outside the
//! debugger's own protocol knows), so a function run under a debugger simply has no execution timeout and
//! no init timeout, and says so at start. It has one instance at a time (the debugger's port is one), which
//! is never repossessed while it idles, so the debugger stays attached between invocations. Its memory limit
//! still holds.

use std::io::Write as _;
use std::time::Duration;

use scf_protocol::runtime::{DEBUG_ENV, DebugListen, Runtime, detect_host};

use crate::PlatformError;
use crate::config::FunctionConfig;
use crate::event::EventInstance;

/// Where the debugger listens by default: debugpy's and Node's own defaults.
const PYTHON_PORT: u16 = 5678;
const NODE_PORT: u16 = 9229;

/// How long a new instance waits for the previous one's debugger port to be released.
const PORT_WAIT: Duration = Duration::from_secs(10);

/// Which debugger an instance runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Debugger {
    /// debugpy, in the function's Python interpreter.
    Debugpy,
    /// Node's inspector.
    Inspector,
    /// A native debugger attached to the process (gdb, lldb).
    Native,
}

/// A function run under a debugger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debug {
    /// Which debugger.
    pub debugger: Debugger,
    /// Its port (0 for a native debugger, which attaches to the pid).
    pub port: u16,
    /// Instances wait for the debugger to attach before they load the function (native: before the first
    /// invocation).
    pub wait: bool,
}

impl Debug {
    /// Runs `config`'s instances under the debugger of its language, on `port` (or the debugger's default):
    /// no execution or init timeout, one instance, kept while idle. Web and image-style functions are the
    /// developer's own servers and are refused.
    pub fn apply(
        config: &mut FunctionConfig,
        port: Option<u16>,
        wait: bool,
    ) -> Result<(), PlatformError> {
        if config.http.is_some() {
            return Err(PlatformError::Config(format!(
                "--debug runs event functions; {} is a web or image-style function, whose server is your own \
                 program: start that program under your debugger instead",
                config.name
            )));
        }
        let runtime = match config.runtime {
            Runtime::Auto => detect_host(&config.handler, |f| config.code_dir.join(f).is_file()),
            r => r,
        };
        let (debugger, default) = match runtime {
            Runtime::Python => (Debugger::Debugpy, PYTHON_PORT),
            Runtime::Node => (Debugger::Inspector, NODE_PORT),
            _ => (Debugger::Native, 0),
        };
        config.debug = Some(Debug {
            debugger,
            port: match debugger {
                Debugger::Native => 0,
                _ => port.filter(|p| *p != 0).unwrap_or(default),
            },
            wait,
        });
        config.serve.concurrency = 1;
        config.serve.provisioned = 0;
        Ok(())
    }

    /// The variable that tells the instance's host to start its debugger, if it has one to start.
    pub(crate) fn env(&self) -> Option<(String, String)> {
        let listen = DebugListen {
            host: "127.0.0.1".into(),
            port: self.port,
            wait: self.wait,
        };
        (self.debugger != Debugger::Native).then(|| (DEBUG_ENV.to_owned(), listen.to_env()))
    }

    /// One line saying how `function` runs: the debugger, where, and what that changes.
    pub fn describe(&self, function: &str) -> String {
        let how = match self.debugger {
            Debugger::Debugpy => format!("debugpy on 127.0.0.1:{}", self.port),
            Debugger::Inspector => format!("Node's inspector on 127.0.0.1:{}", self.port),
            Debugger::Native => {
                "a native debugger: attach gdb or lldb to the pid printed when it starts".into()
            }
        };
        let wait = match (self.wait, self.debugger) {
            (false, _) => "",
            (true, Debugger::Native) => {
                "; each instance waits for the debugger before its first invocation"
            }
            (true, _) => "; each instance waits for the debugger before it loads the function",
        };
        format!(
            "debug: function {function} runs under {how}{wait}; no execution or init timeout, one instance at a \
             time, kept while idle"
        )
    }
}

/// A timeout that never fires when `suspended` (an instance under a debugger).
pub(crate) async fn deadline(after: Duration, suspended: bool) {
    if suspended {
        std::future::pending::<()>().await;
    } else {
        tokio::time::sleep(after).await;
    }
}

/// Before an instance of a debugged function starts: waits (a bounded while) for the debugger's port to be
/// free, so a new instance does not race the previous one, which may still be exiting.
pub(crate) async fn port_free(config: &FunctionConfig) {
    let Some(d) = &config.debug else { return };
    if d.port == 0 {
        return;
    }
    let give_up = tokio::time::Instant::now() + PORT_WAIT;
    while tokio::net::TcpListener::bind(("127.0.0.1", d.port))
        .await
        .is_err()
        && tokio::time::Instant::now() < give_up
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// After an instance of a debugged function is ready: says where it is, and for a native debugger with
/// `wait`, waits until a debugger has attached to its process.
pub(crate) async fn started(instance: &EventInstance, config: &FunctionConfig) {
    let Some(d) = &config.debug else { return };
    let pid = instance.pid();
    let say = |line: String| {
        let _ = writeln!(std::io::stderr(), "scf-local: debug: {line}");
    };
    match d.debugger {
        Debugger::Debugpy => say(format!(
            "{}: instance pid {pid} is ready; debugpy listens on 127.0.0.1:{} (VS Code: \"attach\" to that port)",
            config.name, d.port
        )),
        Debugger::Inspector => say(format!(
            "{}: instance pid {pid} is ready; the inspector listens on 127.0.0.1:{} (VS Code: \"attach\", or chrome://inspect)",
            config.name, d.port
        )),
        Debugger::Native => {
            say(format!(
                "{}: instance pid {pid} is ready; attach with `gdb -p {pid}` or `lldb -p {pid}`{}",
                config.name,
                if d.wait {
                    ": its first invocation waits until a debugger has attached"
                } else {
                    ""
                }
            ));
            if d.wait {
                while instance.is_usable() && !traced(pid).await {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if instance.is_usable() {
                    say(format!("{}: a debugger attached to pid {pid}", config.name));
                }
            }
        }
    }
}

/// Whether a debugger traces process `pid` (its `TracerPid` in `/proc`).
async fn traced(pid: u32) -> bool {
    tokio::task::spawn_blocking(move || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("TracerPid:"))
                    .map(|v| v.trim() != "0")
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    /// A function of `file` (with `runtime`) run under a debugger.
    fn debugged(
        file: &str,
        runtime: Option<&str>,
        port: Option<u16>,
        wait: bool,
    ) -> FunctionConfig {
        let dir = std::env::temp_dir().join(format!("scf-debug-{file}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(file), "").expect("write");
        let over = Overrides {
            handler: Some("index.main_handler".into()),
            runtime: runtime.map(str::to_owned),
            ..Overrides::default()
        };
        let mut c = FunctionConfig::load(&dir, &over).expect("config");
        Debug::apply(&mut c, port, wait).expect("debug");
        let _ = std::fs::remove_dir_all(&dir);
        c
    }

    #[test]
    fn each_language_gets_its_debugger_and_one_instance_without_timeouts() {
        let py = debugged("index.py", None, None, true);
        let d = py.debug.clone().expect("debug");
        assert_eq!(
            (d.debugger, d.port, d.wait),
            (Debugger::Debugpy, 5678, true)
        );
        assert_eq!(
            d.env(),
            Some(("_SCF_DEBUG".to_owned(), "127.0.0.1:5678,wait".to_owned()))
        );
        assert_eq!((py.serve.concurrency, py.serve.provisioned), (1, 0));

        let node = debugged("index.js", Some("nodejs"), Some(9300), false);
        let d = node.debug.clone().expect("debug");
        assert_eq!((d.debugger, d.port), (Debugger::Inspector, 9300));

        let native = debugged("libindex.so", Some("native"), Some(1), false);
        let d = native.debug.clone().expect("debug");
        assert_eq!((d.debugger, d.port, d.env()), (Debugger::Native, 0, None));
        assert!(d.describe("f").contains("gdb"));
    }
}
