//! The instance side of the Python zygote: the control channel a zygote reads spawn requests from, and the
//! operating-system half of a forked child's "enter the instance's world" (`docs/architecture.md`, "The
//! Python zygote").
//!
//! The platform starts one zygote per distinct interpreter and Python-relevant environment: `scf-shim
//! --zygote`, which execs the interpreter with [`crate::host::python::ZYGOTE_BOOTSTRAP`]. The zygote's end of
//! a `SOCK_SEQPACKET` socket pair is descriptor [`CONTROL_FD`]. Messages, one datagram each:
//!
//! - zygote → platform, once ready: `hello <pid>\n<sys.executable>`;
//! - platform → zygote, one per instance: `<cwd>\0<start_ns>\0<cgroup 0|1>\0<init pid>\0K=V\0K=V…`, with the
//!   instance's output pipe (its stdout and stderr) and, when the third field is `1`, its cgroup's
//!   `cgroup.procs`, then, when the init pid is not 0, the read end of its `go` pipe, as `SCM_RIGHTS`
//!   descriptors in that order. The init pid (0 for none) is the instance's init on the machine, whose
//!   namespaces the instance joins; the init makes the instance's world for it while the zygote forks, and
//!   writes one byte to the `go` pipe once it has (it closes the pipe without one if it cannot): the
//!   instance waits for it before it enters its working directory. The
//!   variables are the instance's whole environment, built by the platform exactly as for a spawned instance;
//! - zygote → platform, per request: `ok <pid>` (the instance, already the platform's child) or
//!   `err <why>`.
//!
//! Everything here is plain system calls: no Python, no allocation between fork and the calls that need it
//! beyond what the child owns.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::PathBuf;

pub use scf_supervisor::init::own_namespaces;

/// The zygote's end of its control socket.
pub const CONTROL_FD: RawFd = 3;
/// The largest request a zygote reads (the environment of an instance is far smaller).
pub const MAX_REQUEST: usize = 128 * 1024;
/// The argument that starts `scf-shim` as a zygote.
pub const ZYGOTE_ARG: &str = "--zygote";

/// One instance to fork: what its world is.
#[derive(Debug)]
pub struct Request {
    /// Its working directory (the function's code).
    pub cwd: PathBuf,
    /// When the platform asked for it (`CLOCK_MONOTONIC`, ns): the instance's InitRuntime starts here.
    pub start_ns: u64,
    /// Its whole environment.
    pub env: Vec<(OsString, OsString)>,
    /// Its stdout and stderr.
    output: OwnedFd,
    /// Its memory cgroup's `cgroup.procs`, where the platform has memory cgroups.
    cgroup: Option<OwnedFd>,
    /// Its init's pid on the machine, whose namespaces it joins, where it has namespaces.
    init_pid: Option<u32>,
    /// Readable once its init has made its world (where it has an init to join).
    go: Option<OwnedFd>,
}

/// How long a forked instance waits for its init's word before it gives up (and ends as a failed start):
/// bounded even if its init neither answers nor closes the pipe.
const GO_WITHIN_MS: libc::c_int = 9_000;

/// Sends the zygote's `hello`: it is initialised and waits for requests.
pub fn hello(executable: &str) -> io::Result<()> {
    send(format!("hello {}\n{executable}", std::process::id()).as_bytes())
}

/// Answers a request with the instance's pid.
pub fn reply_ok(pid: i32) -> io::Result<()> {
    send(format!("ok {pid}").as_bytes())
}

/// Answers a request with why no instance was forked.
pub fn reply_err(why: &str) -> io::Result<()> {
    send(format!("err {why}").as_bytes())
}

fn send(bytes: &[u8]) -> io::Result<()> {
    // SAFETY: send(2) reads `bytes` for its length; CONTROL_FD is the zygote's socket (or fails cleanly).
    let n = unsafe {
        libc::send(
            CONTROL_FD,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits for the next request (blocking). `None` when the platform closed the channel (the zygote ends).
pub fn recv_request() -> io::Result<Option<Request>> {
    let mut buf = vec![0u8; MAX_REQUEST];
    // Room for three descriptors.
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(3 * std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all zeroes is a valid empty header, filled in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len() as _;
    let n = loop {
        // SAFETY: recvmsg(2) writes into `buf` and `control`, both alive and of the lengths given in `msg`.
        let n = unsafe { libc::recvmsg(CONTROL_FD, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut fds = Vec::new();
    // SAFETY: the CMSG_* macros walk the control buffer recvmsg filled, within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    // The kernel installed these descriptors for us: we own them now.
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if n == 0 && fds.is_empty() {
        return Ok(None);
    }
    if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
        return Err(io::Error::other("request truncated"));
    }
    parse(&buf[..n], fds).map(Some)
}

fn parse(bytes: &[u8], fds: Vec<OwnedFd>) -> io::Result<Request> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("request: {what}"));
    let mut fields = bytes.split(|b| *b == 0);
    let cwd = PathBuf::from(OsStr::from_bytes(fields.next().ok_or_else(|| bad("cwd"))?));
    let start_ns = std::str::from_utf8(fields.next().ok_or_else(|| bad("start"))?)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("start"))?;
    let with_cgroup = fields.next().ok_or_else(|| bad("cgroup"))? == b"1";
    let init_pid = std::str::from_utf8(fields.next().ok_or_else(|| bad("init"))?)
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or_else(|| bad("init"))?;
    let mut env = Vec::new();
    for kv in fields.filter(|f| !f.is_empty()) {
        let eq = kv
            .iter()
            .position(|b| *b == b'=')
            .ok_or_else(|| bad("variable"))?;
        env.push((
            OsString::from_vec(kv[..eq].to_vec()),
            OsString::from_vec(kv[eq + 1..].to_vec()),
        ));
    }
    let mut fds = fds.into_iter();
    let output = fds.next().ok_or_else(|| bad("no output descriptor"))?;
    let cgroup = if with_cgroup {
        Some(fds.next().ok_or_else(|| bad("no cgroup descriptor"))?)
    } else {
        None
    };
    let go = if init_pid != 0 {
        Some(fds.next().ok_or_else(|| bad("no go descriptor"))?)
    } else {
        None
    };
    Ok(Request {
        cwd,
        start_ns,
        env,
        output,
        cgroup,
        init_pid: (init_pid != 0).then_some(init_pid),
        go,
    })
}

/// How many threads this process has (`/proc/self/task`): a zygote forks only with one.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// The first half of entering the instance's world, in the zygote's first child (single-threaded), before
/// it forks the instance: it joins the instance's memory cgroup, then its init's namespaces
/// (`scf_supervisor::init::enter`: a process cannot change its own PID namespace, so only the instance it
/// forks next is inside). The cgroup is joined first, while the machine's cgroup files are still in view.
/// The instance's mounts may still be in the making (the init makes them meanwhile): the instance waits for
/// them in [`enter`].
pub fn join(request: &mut Request) -> io::Result<()> {
    if let Some(procs) = request.cgroup.take() {
        // SAFETY: write(2) of one byte from a static buffer to the descriptor we own.
        if unsafe { libc::write(procs.as_raw_fd(), b"0".as_ptr().cast(), 1) } != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    if let Some(pid) = request.init_pid {
        scf_supervisor::init::enter(pid)?;
    }
    Ok(())
}

/// Waits until the init's byte is in the `go` pipe (left there: a zygote asked again after one died sees it
/// too); an error if the pipe closes without it or the wait is over.
fn wait_for_go(go: &OwnedFd) -> io::Result<()> {
    let mut fd = libc::pollfd {
        fd: go.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: poll(2) on one pollfd we own.
        let rc = unsafe { libc::poll(&mut fd, 1, GO_WITHIN_MS) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if rc == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the instance's init did not make its world in time",
            ));
        }
        let mut ready: libc::c_int = 0;
        // SAFETY: FIONREAD writes the pipe's byte count into our int.
        if unsafe { libc::ioctl(go.as_raw_fd(), libc::FIONREAD, &mut ready) } == 0 && ready > 0 {
            return Ok(());
        }
        return Err(io::Error::other(
            "the instance's init could not make its world",
        ));
    }
}

/// The operating-system half of entering the instance's world, in the forked instance (after [`join`] in its
/// parent) before anything of the function runs: it waits (bounded) until its init has made its world (the
/// paths it must see of the machine's `/tmp` bound, what it must not see covered), then takes its own process
/// group (the platform kills the group),
/// stdin from `/dev/null`, stdout and stderr onto its output pipe, its working directory, and no descriptor
/// of the zygote's left open. Returns the instance's environment, which the caller applies (the interpreter
/// keeps its own copy of it).
pub fn enter(request: Request) -> io::Result<Vec<(OsString, OsString)>> {
    use std::os::fd::IntoRawFd as _;
    let check = |rc: libc::c_int| {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    let Request {
        cwd,
        env,
        output,
        go,
        ..
    } = request;
    if let Some(go) = go {
        wait_for_go(&go)?;
    }
    // SAFETY: setpgid(2) on ourselves; no memory involved.
    check(unsafe { libc::setpgid(0, 0) })?;
    let null = std::fs::File::open("/dev/null")?;
    // Raw from here: close_range below closes it, and nothing may close the number again.
    let output = output.into_raw_fd();
    // SAFETY: dup2(2) onto the standard descriptors from descriptors that are open.
    unsafe {
        check(libc::dup2(null.as_raw_fd(), 0))?;
        check(libc::dup2(output, 1))?;
        check(libc::dup2(output, 2))?;
    }
    drop(null);
    std::env::set_current_dir(&cwd)?;
    // SAFETY: close_range(2) of every descriptor above stderr: the zygote's control socket, the output
    // pipe's original (now on 1 and 2), anything else inherited. Nothing in this process owns one of them
    // any more (the output was released above; `null` is closed).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn a_request_is_read_back() {
        let out = std::fs::File::open("/dev/null").unwrap();
        let r = parse(
            b"/code\x0042\x000\x000\x00A=1\x00B=x=y\x00",
            vec![out.into()],
        )
        .unwrap();
        assert_eq!(r.cwd, PathBuf::from("/code"));
        assert_eq!(r.start_ns, 42);
        assert_eq!(
            r.env,
            [("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
        assert!(r.cgroup.is_none());
        assert!(r.init_pid.is_none());
        let out = std::fs::File::open("/dev/null").unwrap();
        let go = std::fs::File::open("/dev/null").unwrap();
        let r = parse(b"/code\x0042\x000\x00917\x00", vec![out.into(), go.into()]).unwrap();
        assert_eq!(r.init_pid, Some(917));
        assert!(r.go.is_some());
        // With an init to join, the go pipe must come too.
        let out = std::fs::File::open("/dev/null").unwrap();
        assert!(parse(b"/code\x0042\x000\x00917\x00", vec![out.into()]).is_err());
        let out = std::fs::File::open("/dev/null").unwrap();
        assert!(parse(b"/code\x0042\x001\x000\x00", vec![out.into()]).is_err());
        assert!(parse(b"/code\x00x\x000", Vec::new()).is_err());
    }
}
