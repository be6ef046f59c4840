//! The instance's init: the first program of every instance, started by the platform (as
//! `scf-shim --scf-instance-init NAMESPACES TMP_BYTES`, its control channel on descriptor 3) before the
//! platform knows which function it will run, so that everything isolation costs is paid ahead of the cold
//! start (see `docs/reliability.md`).
//!
//! It is two small processes:
//!
//! - the **outer** one is the platform's child and the instance's process group leader. It makes the
//!   namespaces it is asked for (a user namespace first when the platform is not root; then mount, PID, IPC
//!   and network namespaces), makes mounts private, mounts the instance's own `tmpfs` at `/tmp` (512 MB;
//!   a smaller one at `/dev/shm`), brings the loopback interface up, then forks the inner one, waits for it
//!   and ends exactly as the function's process ended (its exit status, or its signal), so that the
//!   platform reads the instance's exit from its own child as before;
//! - the **inner** one is PID 1 of the instance's PID namespace (with its own `/proc`), or, without
//!   namespaces, a child subreaper. It serves the platform's requests (the `control` module): listeners and
//!   connections inside the instance's network, and the spawn of the function's process (with the paths it
//!   needs from the machine's `/tmp` bound into its own), which it reaps with everything else. When the
//!   function's process ends, or the platform closes the channel or asks, it kills everything the instance
//!   started and ends: with a PID namespace the kernel kills what is left when PID 1 ends; without one the
//!   subreaper kills its descendants itself.
//!
//! The init is single-threaded and never runs the function's code: between its fork and exec the function's
//! process only moves to its own process group, takes its log pipe as stdout and stderr, and enters its
//! working directory.
//!
//! Here: what both processes share, and the entry for a process that joins an instance ([`enter`]). The outer
//! process's set-up and end are in `outer`, the inner process in `inner`, the spawn of the function's
//! process in `spawn`, and the mounts (what the instance sees of the machine's `/tmp`, the covers) in `mount`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};

use crate::control::{self, Op};

mod inner;
mod mount;
mod outer;
mod spawn;

use outer::{reproduce, set_up};

/// The first argument that makes a binary hosting the init run it ([`main`]).
pub const INIT_ARG: &str = "--scf-instance-init";

/// The descriptor of the init's control channel.
pub(crate) const CONTROL_FD: RawFd = 3;

/// The namespaces an init is asked to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Want {
    /// Mount, PID and IPC namespaces: a private `/proc`, `/tmp` and `/dev/shm`.
    pub(crate) pid: bool,
    /// A network namespace with only its loopback.
    pub(crate) net: bool,
    /// A user namespace first (the platform is not root).
    pub(crate) user: bool,
}

impl Want {
    /// The argument naming them (`pid,net,user`, `none`).
    pub(crate) fn arg(self) -> String {
        let mut v = Vec::new();
        if self.pid {
            v.push("pid");
        }
        if self.net {
            v.push("net");
        }
        if self.user {
            v.push("user");
        }
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(",")
        }
    }

    fn parse(s: &str) -> Want {
        let has = |n: &str| s.split(',').any(|p| p == n);
        Want {
            pid: has("pid"),
            net: has("net"),
            user: has("user"),
        }
    }
}

/// The one entry into an instance's world for a process that is already running (a process forked from a
/// zygote, say), instead of being started by the instance's init: joins the namespaces of the init whose
/// (outer) pid is `init_pid` ([`crate::Prepared::init_pid`]), those that differ from the caller's, in this
/// order: its user namespace (where it made one), IPC, network, PID (for the caller's children: a process
/// cannot change its own PID namespace) and mount namespaces, then goes to `/`.
///
/// The caller must be single-threaded (the kernel refuses user and mount namespaces to a multi-threaded
/// caller) and must, before calling, have joined the instance's cgroup (write `0` to the file
/// [`crate::Prepared::cgroup_procs`] names), since the mount namespace changes what the machine's
/// filesystem shows. After it returns, the caller forks: the child is a process of the instance (its own
/// pid there, its `/proc`, its `/tmp`, only its loopback, its runtime API reachable), and an orphan of it
/// goes to the instance's PID 1, which kills it with the instance. Without namespaces (the init made none)
/// it only goes to `/`.
pub fn enter(init_pid: u32) -> io::Result<()> {
    let ours = own_namespaces()?;
    // Opened first: once in the instance's mount namespace, /proc is the instance's.
    let mut joins = Vec::new();
    for ((name, kind), ours) in NAMESPACES.into_iter().zip(ours) {
        let theirs = std::fs::File::open(format!("/proc/{init_pid}/ns/{name}"))?;
        if identity(&theirs.metadata()?) != ours {
            joins.push((theirs, kind));
        }
    }
    for (ns, kind) in &joins {
        // SAFETY: setns(2) of this process (or thread) into the namespace an open descriptor names.
        if unsafe { libc::setns(ns.as_raw_fd(), *kind) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    std::env::set_current_dir("/")
}

/// The namespaces [`enter`] joins, in its order.
const NAMESPACES: [(&str, libc::c_int); 5] = [
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("net", libc::CLONE_NEWNET),
    ("pid_for_children", libc::CLONE_NEWPID),
    ("mnt", libc::CLONE_NEWNS),
];

/// What names a namespace: its file's device and inode.
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    (meta.dev(), meta.ino())
}

/// The caller's own namespaces (user, IPC, network, PID for children, mount: those [`enter`] joins), read
/// once per process and kept: a process that forks children which [`enter`] an instance (a zygote) and never
/// changes its own namespaces calls this before it forks, so its children do not read them again on their
/// critical path. [`enter`] calls it too.
pub fn own_namespaces() -> io::Result<[(u64, u64); 5]> {
    static OWN: std::sync::OnceLock<[(u64, u64); 5]> = std::sync::OnceLock::new();
    if let Some(own) = OWN.get() {
        return Ok(*own);
    }
    let mut own = [(0, 0); 5];
    for ((name, _), slot) in NAMESPACES.into_iter().zip(own.iter_mut()) {
        *slot = identity(&std::fs::metadata(format!("/proc/self/ns/{name}"))?);
    }
    Ok(*OWN.get_or_init(|| own))
}

/// Runs the init (never returns). Call it first thing in `main` when the first argument is [`INIT_ARG`];
/// the platform starts it with the control channel on descriptor 3.
pub fn main() -> ! {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let want = Want::parse(args.first().map(String::as_str).unwrap_or("none"));
    let tmp_bytes = args
        .get(1)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(crate::TMP_BYTES);
    // SAFETY: descriptor 3 is the control channel the platform passed; nothing else in this process owns it.
    let ctl = unsafe { OwnedFd::from_raw_fd(CONTROL_FD) };
    // The function's process must not inherit it.
    // SAFETY: fcntl(2) on the descriptor just taken.
    unsafe { libc::fcntl(ctl.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    let setup = match set_up(want, tmp_bytes) {
        Ok(s) => s,
        Err(e) => fail(&ctl, &e),
    };
    let (status_r, status_w) = match pipe() {
        Ok(p) => p,
        Err(e) => fail(&ctl, &format!("pipe: {e}")),
    };
    // SAFETY: fork(2) in a single-threaded process; the child goes on with ordinary code.
    match unsafe { libc::fork() } {
        0 => {
            drop(status_r);
            inner::inner(ctl, setup, status_w)
        }
        -1 => fail(&ctl, &format!("fork: {}", io::Error::last_os_error())),
        child => {
            drop((ctl, status_w, setup));
            let own = wait_for(child);
            let mut raw = [0u8; 4];
            let reported = read_full(status_r.as_raw_fd(), &mut raw);
            reproduce(if reported {
                i32::from_le_bytes(raw)
            } else {
                own
            })
        }
    }
}

pub(super) fn fail(ctl: &OwnedFd, why: &str) -> ! {
    let _ = control::send(ctl.as_raw_fd(), Op::Failed, &[why.as_bytes()], None, 0);
    // SAFETY: _exit(2) ends the process at once.
    unsafe { libc::_exit(70) }
}

pub(super) fn os_err(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

pub(super) fn cstr(s: &[u8]) -> Result<CString, String> {
    CString::new(s).map_err(|_| "a NUL byte in a path or argument".to_owned())
}

/// A pipe, both ends close-on-exec: `(read, write)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads exactly `buf.len()` bytes; false on EOF (or an error) first.
pub(super) fn read_full(fd: RawFd, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: read(2) into the rest of `buf`, which we own.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n > 0 {
            got += n as usize;
        } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return false;
        }
    }
    true
}

/// Waits for child `pid`; its wait status.
pub(super) fn wait_for(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waitpid(2) of our own child into `status`.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return status;
        }
        if rc < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return 0;
        }
    }
}

/// This process's children: `/proc/self/task/*/children`, else a scan of `/proc` (the init's, and the
/// platform's orphan reaper's).
pub(crate) fn children_of_self() -> Vec<libc::pid_t> {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let mut out = Vec::new();
    let mut found_file = false;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                found_file = true;
                out.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
    }
    if !found_file && let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(me) {
                out.push(pid);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_named_in_one_argument() {
        let all = Want {
            pid: true,
            net: true,
            user: true,
        };
        assert_eq!(all.arg(), "pid,net,user");
        assert_eq!(Want::parse(&all.arg()), all);
        assert_eq!(Want::default().arg(), "none");
        assert_eq!(Want::parse("none"), Want::default());
    }
}
