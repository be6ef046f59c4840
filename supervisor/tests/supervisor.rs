//! The supervisor on real processes: exit, output, memory by both methods, teardown of what an instance
//! started, the private directory, the instance's init in both of its modes (with namespaces, and the
//! fallback without).
//!
//! The init is `scf-shim` (its init mode), found beside the test binary's target directory: `cargo build
//! -p scf-shim` (or `make build`) first.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::time::Duration;

use scf_supervisor::{ExitHow, MemoryMode, Network, Supervisor};

mod common;

use common::{init, work_dir};

fn supervisor(name: &str) -> Supervisor {
    Supervisor::new(work_dir(name), init()).unwrap()
}

use common::sh;

#[tokio::test]
async fn an_exit_is_seen_with_its_output_and_the_directory_goes_with_the_instance() {
    let sup = supervisor("exit");
    let dir = sup.prepare("exit", 64, Network::Shared).await.unwrap();
    // With its own /tmp the instance has no directory of the machine's; without, a private one.
    assert_eq!(dir.tmp(), Path::new("/tmp"), "{:?}", sup.isolation());
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
}

#[tokio::test]
async fn a_kill_is_described_with_its_signal() {
    let sup = supervisor("kill");
    let dir = sup.prepare("kill", 64, Network::Shared).await.unwrap();
    let p = sup.spawn(sh("exec sleep 600"), dir).await.unwrap();
    assert!(p.exit().is_none());
    p.kill();
    assert_eq!(p.exited().await.describe(), "killed by signal 9 (SIGKILL)");
    p.stop().await;
}

async fn over_the_memory_size(sup: &Supervisor) {
    let dir = sup.prepare("hog", 64, Network::Shared).await.unwrap();
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
    let sup = supervisor("hog");
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
    let sup = Supervisor::without_cgroups(work_dir("hog-sampled"), init(), "test").unwrap();
    assert_eq!(sup.memory_mode(), MemoryMode::ProcessGroup("test".into()));
    over_the_memory_size(&sup).await;
}

#[tokio::test]
async fn teardown_kills_what_the_instance_started() {
    let sup = supervisor("tree");
    common::teardown_kills_everything(&sup).await;
}

#[tokio::test]
async fn what_an_instance_started_dies_when_it_exits() {
    let sup = supervisor("exits");
    common::an_exit_kills_everything(&sup).await;
}

#[tokio::test]
async fn dropping_an_instance_kills_it_too() {
    let sup = supervisor("drop");
    let dir = sup.prepare("drop", 64, Network::Shared).await.unwrap();
    let p = sup.spawn(sh("exec sleep 600"), dir).await.unwrap();
    let pid = p.pid();
    drop(p);
    common::until("the dropped instance to be gone", || !common::alive(pid)).await;
}

#[tokio::test]
async fn with_namespaces_an_instance_has_its_own_proc_tmp_and_network() {
    let sup = supervisor("ns");
    // This machine (root) allows every namespace: the test is for them.
    assert_eq!(sup.isolation().pid_mount, Ok(()), "{:?}", sup.isolation());
    assert_eq!(sup.isolation().network, Ok(()), "{:?}", sup.isolation());
    let dir = sup.prepare("ns", 64, Network::Own).await.unwrap();
    let p = sup
        .spawn(
            sh(
                "echo pid $$; ls /proc | grep -c '^[0-9]'; echo tmp $(ls -A /tmp | wc -l); \
                grep -c . /proc/net/dev; df -k /tmp | tail -1 | tr -s ' ' | cut -d' ' -f2",
            ),
            dir,
        )
        .await
        .unwrap();
    p.exited().await;
    p.output().closed(Duration::from_secs(60)).await;
    let lines = p.output().take_lines(true);
    assert_eq!(
        lines[0],
        format!("pid {}", p.pid()),
        "the function's process has its init's pid on the machine: {lines:?}"
    );
    let processes: u32 = lines[1].parse().unwrap();
    assert!(
        processes <= 4,
        "only the instance's processes are in /proc: {lines:?}"
    );
    assert_eq!(lines[2], "tmp 0", "a /tmp of its own: {lines:?}");
    // /proc/net/dev: two header lines and lo.
    assert_eq!(lines[3], "3", "only a loopback interface: {lines:?}");
    assert_eq!(
        lines[4],
        (512 * 1024).to_string(),
        "/tmp is 512 MB: {lines:?}"
    );
    p.stop().await;
}

/// What a process forked from a running one (a zygote's child) does to become a process of an instance
/// (`scf_supervisor::init::enter`): joined to its cgroup and namespaces, its next child has the instance's
/// PID namespace, network, mount namespace (its `/proc`, its own `/tmp`). The check runs in that child,
/// which answers through its exit status.
#[tokio::test]
async fn a_running_process_enters_an_instances_world() {
    let sup = supervisor("enter");
    assert_eq!(
        sup.isolation().pid_mount,
        Ok(()),
        "this machine allows namespaces"
    );
    let prepared = sup.prepare("enter", 64, Network::Own).await.unwrap();
    let init = prepared.init_pid();
    let link = |what: &str| std::fs::read_link(format!("/proc/{init}/ns/{what}")).unwrap();
    let (pid_ns, net_ns, mnt_ns) = (link("pid_for_children"), link("net"), link("mnt"));
    let procs = prepared.cgroup_procs();
    // SAFETY: fork(2); the child only runs the checks below and ends with _exit (glibc's fork leaves its
    // allocator usable in the child).
    let child = unsafe { libc::fork() };
    if child == 0 {
        let code = (|| {
            if let Some(p) = &procs {
                std::fs::write(p, "0").map_err(|_| 10)?;
            }
            scf_supervisor::init::enter(init).map_err(|_| 11)?;
            // SAFETY: fork(2) of this single-threaded child.
            let inner = unsafe { libc::fork() };
            if inner == 0 {
                let me = |what: &str| std::fs::read_link(format!("/proc/self/ns/{what}")).ok();
                let tmp_is_tmpfs = std::fs::read_to_string("/proc/self/mountinfo")
                    .unwrap_or_default()
                    .lines()
                    .any(|l| l.split(' ').nth(4) == Some("/tmp") && l.contains(" - tmpfs "));
                let ok = me("pid") == Some(pid_ns.clone())
                    && me("net") == Some(net_ns.clone())
                    && me("mnt") == Some(mnt_ns.clone())
                    && tmp_is_tmpfs
                    // Inside, the instance's first process has its init's pid on the machine (the init set
                    // the namespace's next pid when it became ready), as a spawned one has.
                    // SAFETY: getpid has no preconditions.
                    && unsafe { libc::getpid() } == init as i32;
                // SAFETY: _exit ends the grandchild at once.
                unsafe { libc::_exit(if ok { 0 } else { 12 }) };
            }
            let mut status = 0;
            // SAFETY: waitpid(2) of the child just forked.
            unsafe { libc::waitpid(inner, &mut status, 0) };
            if libc::WIFEXITED(status) {
                Ok(libc::WEXITSTATUS(status))
            } else {
                Err(13)
            }
        })();
        // SAFETY: _exit ends the forked child at once.
        unsafe { libc::_exit(code.unwrap_or_else(|c| c)) };
    }
    let mut status = 0;
    // SAFETY: waitpid(2) of the child forked above.
    unsafe { libc::waitpid(child, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "status {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "10 cgroup, 11 enter, 12 checks, 13 signal"
    );
    drop(prepared);
}
