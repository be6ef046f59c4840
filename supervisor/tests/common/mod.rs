//! What the supervisor's test files share: the init, specs, and checks of what an instance started, run
//! with namespaces (`supervisor.rs`) and without (`fallback.rs`).
#![allow(clippy::unwrap_used, dead_code, reason = "tests")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use scf_supervisor::{Network, SpawnSpec, Supervisor};

pub fn work_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scf-supervisor-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `scf-shim` (its init mode) in the target directory these tests were built into.
pub fn init() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("scf-shim");
    assert!(
        p.is_file(),
        "{} is missing: build it first (cargo build -p scf-shim, or make build)",
        p.display()
    );
    p
}

pub fn sh(script: &str) -> SpawnSpec {
    SpawnSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        cwd: "/".into(),
        env: vec![("FROM_SPEC".into(), "yes".into())],
        visible: vec![],
        hidden: vec![],
    }
}

pub fn alive(pid: u32) -> bool {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    !s.is_empty() && !s.contains("State:\tZ")
}

/// Polls `f` until it holds; fails loudly after a generous deadline.
pub async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

/// A `sleep` argument no other process has: the processes started with it are found in `/proc` by it (their
/// pids inside a PID namespace mean nothing here).
pub fn token() -> String {
    static N: AtomicU32 = AtomicU32::new(1);
    format!(
        "6000.{}{:04}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The live processes whose command line has `token`.
pub fn with_token(token: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if cmdline.split(|b| *b == 0).any(|a| a == token.as_bytes()) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Teardown kills the instance, a child in its process group and one that left it (`setsid`).
pub async fn teardown_kills_everything(sup: &Supervisor) {
    let (a, b, c) = (token(), token(), token());
    let dir = sup.prepare("tree", 64, Network::Shared).await.unwrap();
    let p = sup
        .spawn(
            sh(&format!("sleep {a} & setsid sleep {b} & exec sleep {c}")),
            dir,
        )
        .await
        .unwrap();
    until("the instance's three processes", || {
        [&a, &b, &c].iter().all(|t| with_token(t).len() == 1)
    })
    .await;
    let leader = p.pid();
    p.stop().await;
    assert!(!alive(leader), "the init is gone");
    until("everything the instance started to be gone", || {
        [&a, &b, &c].iter().all(|t| with_token(t).is_empty())
    })
    .await;
}

/// When the function's process exits, what it started goes too (a child that called `setsid` included),
/// and the instance's exit is the function's.
pub async fn an_exit_kills_everything(sup: &Supervisor) {
    let (a, b) = (token(), token());
    let dir = sup.prepare("exits", 64, Network::Shared).await.unwrap();
    let p = sup
        .spawn(
            sh(&format!(
                "sleep {a} & setsid sleep {b} & while [ ! -e /proc/$!/stat ]; do :; done; exit 7"
            )),
            dir,
        )
        .await
        .unwrap();
    let exit = p.exited().await;
    assert_eq!(exit.describe(), "exit status 7");
    until("what the instance started to be gone", || {
        with_token(&a).is_empty() && with_token(&b).is_empty()
    })
    .await;
    p.stop().await;
}
