//! The supervisor on real processes: exit, output, memory by both methods, teardown of what an instance
//! started, the private directory.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use scf_supervisor::{ExitHow, MemoryMode, SpawnSpec, Supervisor};

fn work_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scf-supervisor-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sh(script: &str) -> SpawnSpec {
    SpawnSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        cwd: "/".into(),
        env: vec![("FROM_SPEC".into(), "yes".into())],
        isolation: Default::default(),
    }
}

fn alive(pid: u32) -> bool {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    !s.is_empty() && !s.contains("State:\tZ")
}

/// Polls `f` until it holds; fails loudly after a generous deadline.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

#[tokio::test]
async fn an_exit_is_seen_with_its_output_and_the_directory_goes_with_the_instance() {
    let sup = Supervisor::new(work_dir("exit"));
    let dir = sup.prepare("exit", 64).await.unwrap();
    let path = dir.path().to_path_buf();
    assert!(dir.tmp().is_dir());
    let p = sup
        .spawn(sh("echo out $FROM_SPEC; echo err >&2; exit 3"), dir)
        .await
        .unwrap();
    let exit = p.exited().await;
    assert_eq!((exit.how, exit.memory_exceeded), (ExitHow::Code(3), false));
    assert_eq!(exit.describe(), "exit status 3");
    p.output().closed(Duration::from_secs(60)).await;
    assert_eq!(p.output().take_lines(true), ["out yes", "err"]);
    p.stop().await;
    assert!(!path.exists(), "the private directory is removed");
}

#[tokio::test]
async fn a_kill_is_described_with_its_signal() {
    let sup = Supervisor::new(work_dir("kill"));
    let dir = sup.prepare("kill", 64).await.unwrap();
    let p = sup.spawn(sh("exec sleep 600"), dir).await.unwrap();
    assert!(p.exit().is_none());
    p.kill();
    assert_eq!(p.exited().await.describe(), "killed by signal 9 (SIGKILL)");
    p.stop().await;
}

async fn over_the_memory_size(sup: &Supervisor) {
    let dir = sup.prepare("hog", 64).await.unwrap();
    let p = sup
        .spawn(
            sh("exec python3 -c 'import time; b = bytearray(300 * 1024 * 1024); time.sleep(60)'"),
            dir,
        )
        .await
        .unwrap();
    let _work = p.work();
    let exit = p.exited().await;
    assert!(exit.memory_exceeded, "{exit:?} ({:?})", sup.memory_mode());
    p.stop().await;
}

#[tokio::test]
async fn memory_over_the_size_kills_the_instance_with_cgroups() {
    let sup = Supervisor::new(work_dir("hog"));
    // This machine (root, cgroup v1 memory controller writable) has memory cgroups: the test is for them.
    assert!(
        matches!(
            sup.memory_mode(),
            MemoryMode::CgroupV1 | MemoryMode::CgroupV2
        ),
        "{:?}",
        sup.memory_mode()
    );
    over_the_memory_size(&sup).await;
}

#[tokio::test]
async fn memory_over_the_size_kills_the_instance_by_sampling() {
    let sup = Supervisor::without_cgroups(work_dir("hog-sampled"), "test");
    assert_eq!(sup.memory_mode(), MemoryMode::ProcessGroup("test".into()));
    over_the_memory_size(&sup).await;
}

async fn children_of(sup: &Supervisor, script: &str) -> (u32, u32) {
    let dir = sup.prepare("tree", 64).await.unwrap();
    let marker = dir.tmp().join("child");
    let p = sup
        .spawn(
            sh(&format!(
                "{script} & echo $! > {}; exec sleep 600",
                marker.display()
            )),
            dir,
        )
        .await
        .unwrap();
    until("the child's pid", || {
        std::fs::read_to_string(&marker).is_ok_and(|s| s.ends_with('\n'))
    })
    .await;
    let child: u32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let leader = p.pid();
    assert!(alive(child) && alive(leader));
    p.stop().await;
    (leader, child)
}

#[tokio::test]
async fn teardown_kills_what_the_instance_started() {
    let sup = Supervisor::new(work_dir("tree"));
    let (leader, child) = children_of(&sup, "sleep 600").await;
    assert!(!alive(leader) && !alive(child), "the process group is gone");
    // A child that left the process group is still in the instance's cgroup.
    let (_, escaped) = children_of(&sup, "setsid sleep 600").await;
    until("the escaped child to be gone", || !alive(escaped)).await;
}

#[tokio::test]
async fn dropping_an_instance_kills_it_too() {
    let sup = Supervisor::new(work_dir("drop"));
    let dir = sup.prepare("drop", 64).await.unwrap();
    let path = dir.path().to_path_buf();
    let p = sup.spawn(sh("exec sleep 600"), dir).await.unwrap();
    let pid = p.pid();
    drop(p);
    until("the dropped instance to be gone", || {
        !alive(pid) && !Path::new(&path).exists()
    })
    .await;
}
