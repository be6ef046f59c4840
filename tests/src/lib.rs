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
    // target/debug/deps/<test binary>
    exe.parent().unwrap().parent().unwrap().to_path_buf()
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
    /// Makes `<tmp>/scf-tests-<name>-<pid>-<n>`.
    pub fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("scf-tests-{name}-{}-{n}", std::process::id()));
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
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `scf-local invoke <code_dir> <args…>`.
pub fn invoke(code_dir: &Path, args: &[&str]) -> Run {
    invoke_with_env(code_dir, args, &[])
}

/// Asserts that the log has the request lines of `spec/scf-facts.md` §4 in order around the user's lines,
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
