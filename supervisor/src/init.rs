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

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use crate::control::{self, Op};

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
    let kinds = [
        ("user", libc::CLONE_NEWUSER),
        ("ipc", libc::CLONE_NEWIPC),
        ("net", libc::CLONE_NEWNET),
        ("pid_for_children", libc::CLONE_NEWPID),
        ("mnt", libc::CLONE_NEWNS),
    ];
    // Opened first: once in the instance's mount namespace, /proc is the instance's.
    let mut joins = Vec::new();
    for (name, kind) in kinds {
        let theirs = std::fs::read_link(format!("/proc/{init_pid}/ns/{name}"))?;
        let ours = std::fs::read_link(format!("/proc/self/ns/{name}"))?;
        if theirs != ours {
            joins.push((
                std::fs::File::open(format!("/proc/{init_pid}/ns/{name}"))?,
                kind,
            ));
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
            inner(ctl, setup, status_w)
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

fn fail(ctl: &OwnedFd, why: &str) -> ! {
    let _ = control::send(ctl.as_raw_fd(), Op::Failed, &[why.as_bytes()], None, 0);
    // SAFETY: _exit(2) ends the process at once.
    unsafe { libc::_exit(70) }
}

/// What the outer process set up, for the inner one.
struct Setup {
    pid: bool,
    net: bool,
    /// The machine's `/tmp`, opened before the instance's own was mounted over it.
    host_tmp: Option<OwnedFd>,
    /// The outer process's pid on the machine.
    host_pid: libc::pid_t,
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

fn set_up(want: Want, tmp_bytes: u64) -> Result<Setup, String> {
    if want.user {
        // SAFETY: geteuid/getegid have no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        // SAFETY: unshare(2) of this single-threaded process.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            return Err(os_err("unshare(CLONE_NEWUSER)"));
        }
        // The same ids inside as outside: files keep their owner; the function is not root inside.
        write("/proc/self/setgroups", "deny")?;
        write("/proc/self/uid_map", &format!("{uid} {uid} 1"))?;
        write("/proc/self/gid_map", &format!("{gid} {gid} 1"))?;
    }
    let mut flags = 0;
    if want.pid {
        flags |= libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC;
    }
    if want.net {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: unshare(2) of this single-threaded process.
    if flags != 0 && unsafe { libc::unshare(flags) } != 0 {
        return Err(os_err(&format!("unshare({})", want.arg())));
    }
    let mut host_tmp = None;
    if want.pid {
        mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
        host_tmp = Some(open_path(Path::new("/tmp"), libc::O_DIRECTORY)?);
        let opts = format!("size={tmp_bytes},mode=1777");
        let flags = libc::MS_NOSUID | libc::MS_NODEV;
        mount(Some("tmpfs"), "/tmp", Some("tmpfs"), flags, Some(&opts))?;
        if Path::new("/dev/shm").is_dir() {
            let opts = format!("size={},mode=1777", crate::SHM_BYTES);
            mount(Some("tmpfs"), "/dev/shm", Some("tmpfs"), flags, Some(&opts))?;
        }
    }
    if want.net {
        loopback_up()?;
    }
    Ok(Setup {
        pid: want.pid,
        net: want.net,
        host_tmp,
        // SAFETY: getpid has no preconditions.
        host_pid: unsafe { libc::getpid() },
    })
}

fn write(path: &str, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {path}: {e}"))
}

fn cstr(s: &[u8]) -> Result<CString, String> {
    CString::new(s).map_err(|_| "a NUL byte in a path or argument".to_owned())
}

fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), String> {
    let c = |s: Option<&str>| s.map(|s| cstr(s.as_bytes())).transpose();
    let (src, tgt, fs, dat) = (c(source)?, cstr(target.as_bytes())?, c(fstype)?, c(data)?);
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: mount(2) with NUL-terminated strings (or null) that live for the call.
    let rc = unsafe { libc::mount(ptr(&src), tgt.as_ptr(), ptr(&fs), flags, ptr(&dat).cast()) };
    if rc != 0 {
        return Err(os_err(&format!(
            "mount {} on {target}",
            fstype.or(source).unwrap_or("(propagation)")
        )));
    }
    Ok(())
}

fn open_path(path: &Path, extra: libc::c_int) -> Result<OwnedFd, String> {
    let p = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: open(2) of a NUL-terminated path; the result is checked.
    let fd = unsafe { libc::open(p.as_ptr(), libc::O_PATH | libc::O_CLOEXEC | extra) };
    if fd < 0 {
        return Err(os_err(&format!("opening {}", path.display())));
    }
    // SAFETY: a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn loopback_up() -> Result<(), String> {
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_err("socket"));
    }
    // SAFETY: the socket just made, owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data (an array and a union of integers and arrays); all zeroes is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    ifr.ifr_name[0] = b'l' as libc::c_char;
    ifr.ifr_name[1] = b'o' as libc::c_char;
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own, on the socket above.
    let rc = unsafe {
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut ifr) == 0 {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS as _, &ifr)
        } else {
            -1
        }
    };
    if rc != 0 {
        return Err(os_err("bringing up lo"));
    }
    Ok(())
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
fn read_full(fd: RawFd, buf: &mut [u8]) -> bool {
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
fn wait_for(pid: libc::pid_t) -> i32 {
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

/// Ends this process the way `status` says a process ended: the same exit code, or the same signal.
fn reproduce(status: i32) -> ! {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit/signal/sigprocmask/kill on this process only, with valid arguments; a
        // default-action signal sent to ourselves ends us like the function's process ended.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
        }
        // SAFETY: _exit(2) ends the process at once (a signal whose default is to be ignored).
        unsafe { libc::_exit(128 + sig) }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    };
    // SAFETY: _exit(2) ends the process at once.
    unsafe { libc::_exit(code) }
}

// ---------------------------------------------------------------------------------------------------------
// The inner process: PID 1 of the instance (or a subreaper), serving the platform.

struct Inner {
    ctl: OwnedFd,
    setup: Setup,
    status_w: OwnedFd,
    sigchld: OwnedFd,
    /// The function's process, once spawned (its pid as this process sees it).
    instance: Option<libc::pid_t>,
    /// How it ended, once it has.
    status: Option<i32>,
}

fn inner(ctl: OwnedFd, setup: Setup, status_w: OwnedFd) -> ! {
    // SAFETY: prctl(2) on this process: die with the outer process (the platform's child).
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if setup.pid {
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        if let Err(e) = mount(Some("proc"), "/proc", Some("proc"), flags, None) {
            fail(&ctl, &e);
        }
    } else {
        // Without a PID namespace, orphans of the instance come to this process, which kills them.
        // SAFETY: prctl(2) on this process.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) };
    }
    let sigchld = match sigchld_fd() {
        Ok(fd) => fd,
        Err(e) => fail(&ctl, &format!("signalfd: {e}")),
    };
    let mut me = Inner {
        ctl,
        setup,
        status_w,
        sigchld,
        instance: None,
        status: None,
    };
    let mut made = Vec::new();
    if me.setup.pid {
        made.push("pid");
    }
    if me.setup.net {
        made.push("net");
    }
    let made = if made.is_empty() {
        "none".to_owned()
    } else {
        made.join(",")
    };
    if control::send(me.ctl.as_raw_fd(), Op::Ready, &[made.as_bytes()], None, 0).is_err() {
        me.finish();
    }
    me.serve()
}

/// SIGCHLD blocked and delivered on a signalfd instead.
fn sigchld_fd() -> io::Result<OwnedFd> {
    // SAFETY: sigset operations on a local set; sigprocmask/signalfd on this single-threaded process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

impl Inner {
    fn serve(&mut self) -> ! {
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: self.ctl.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.sigchld.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: poll(2) on two pollfds we own.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if rc < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                self.finish();
            }
            if fds[1].revents != 0 {
                let mut info = [0u8; 128];
                // SAFETY: read(2) of the signalfd's pending records into a local buffer.
                while unsafe { libc::read(self.sigchld.as_raw_fd(), info.as_mut_ptr().cast(), 128) }
                    > 0
                {}
                self.reap();
                if self.status.is_some() {
                    self.finish();
                }
            }
            if fds[0].revents != 0 {
                match control::recv(self.ctl.as_raw_fd(), 0) {
                    Ok(Some(m)) => self.handle(m),
                    // The platform closed the channel (teardown, or it is gone): the instance ends.
                    Ok(None) | Err(_) => self.finish(),
                }
            }
        }
    }

    /// Reaps every child that has ended, noting the function's process's status.
    fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid(2) for any child, without blocking.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            if Some(pid) == self.instance && self.status.is_none() {
                self.status = Some(status);
            }
        }
    }

    fn reply(&self, op: Op, parts: &[&[u8]], pass: Option<RawFd>) {
        if control::send(self.ctl.as_raw_fd(), op, parts, pass, 0).is_err() {
            // Nobody to answer: the platform is gone.
        }
    }

    fn reply_error(&self, e: &io::Error, text: &str) {
        let errno = e.raw_os_error().unwrap_or(0).to_string();
        self.reply(Op::Error, &[errno.as_bytes(), text.as_bytes()], None);
    }

    fn handle(&mut self, m: control::Message) {
        match m.op {
            Op::ListenTcp => {
                let port = m.text(0).parse::<u16>().unwrap_or(0);
                match listen_tcp(port) {
                    Ok(fd) => self.reply(Op::Fd, &[], Some(fd.as_raw_fd())),
                    Err(e) => self.reply_error(&e, &format!("listening on 127.0.0.1:{port}")),
                }
            }
            Op::ListenUnix => {
                match listen_abstract(&m.parts.first().cloned().unwrap_or_default()) {
                    Ok(fd) => self.reply(Op::Fd, &[], Some(fd.as_raw_fd())),
                    Err(e) => self.reply_error(&e, "listening on an abstract Unix socket"),
                }
            }
            // An unconnected TCP socket: made here, it belongs to the instance's network, so the platform's
            // connect(2) on it reaches the instance's loopback. The init never waits on a connection.
            Op::Socket => match socket(libc::AF_INET, true) {
                Ok(fd) => self.reply(Op::Fd, &[], Some(fd.as_raw_fd())),
                Err(e) => self.reply_error(&e, "a socket in the instance's network"),
            },
            Op::Spawn => self.spawn(m),
            Op::Expect => self.expect(m),
            Op::Kill => self.finish(),
            other => self.reply(
                Op::Error,
                &[b"0", format!("not a request: {other:?}").as_bytes()],
                None,
            ),
        }
    }

    /// A process forked elsewhere will enter the instance (`enter`): make what it must see of the machine's
    /// `/tmp` visible, and give it the pid its init has on the machine, as a spawned function's process gets;
    /// then say so on the pipe passed with the request (one byte, left there for the process that waits on
    /// it to see: `scf-shim`'s `zygote::join`), and answer. On failure the pipe is closed without a word.
    fn expect(&mut self, m: control::Message) {
        let cwd = m.parts.first().cloned().unwrap_or_default();
        let Tagged {
            visible, hidden, ..
        } = Tagged::of(m.parts.iter().skip(1));
        if let Err(e) = self.make_world(visible, &hidden, &cwd) {
            self.reply(Op::Error, &[b"0", e.as_bytes()], None);
            return;
        }
        self.next_pid_is_hosts();
        if let Some(go) = m.fd {
            // SAFETY: write(2) of one byte from a static buffer to the pipe passed with the request, ours.
            unsafe { libc::write(go.as_raw_fd(), b"1".as_ptr().cast(), 1) };
        }
        self.reply(Op::Ready, &[], None);
    }

    /// In the instance's mount namespace (none: nothing to do): binds what it must see of the machine's
    /// `/tmp` into its own, and covers what it must not see of the machine.
    fn make_world(
        &self,
        visible: Vec<PathBuf>,
        hidden: &[PathBuf],
        cwd: &[u8],
    ) -> Result<(), String> {
        let Some(host_tmp) = &self.setup.host_tmp else {
            return Ok(());
        };
        bind_visible(host_tmp, visible)?;
        hide(hidden, Path::new(OsStr::from_bytes(cwd)))
    }

    /// With a PID namespace, the instance's next process gets the pid its init has on the machine (the
    /// namespace's last pid is set just below it): pids that functions report stay distinct across
    /// instances and name a live process of the instance on the machine. Best effort: without it the pid is
    /// a small number.
    fn next_pid_is_hosts(&self) {
        if self.setup.pid {
            let _ = std::fs::write(
                "/proc/sys/kernel/ns_last_pid",
                (self.setup.host_pid - 1).to_string(),
            );
        }
    }

    fn spawn(&mut self, m: control::Message) {
        if self.instance.is_some() {
            self.reply(
                Op::Error,
                &[b"0", b"the instance has started already"],
                None,
            );
            return;
        }
        let Some(log) = m.fd else {
            self.reply(Op::Error, &[b"0", b"a spawn without its log pipe"], None);
            return;
        };
        let program = m.parts.first().cloned().unwrap_or_default();
        let cwd = m.parts.get(1).cloned().unwrap_or_default();
        let Tagged {
            args,
            env,
            visible,
            hidden,
        } = Tagged::of(m.parts.iter().skip(2));
        if let Err(e) = self.make_world(visible, &hidden, &cwd) {
            self.reply(Op::Error, &[b"0", e.as_bytes()], None);
            return;
        }
        self.next_pid_is_hosts();
        match start_instance(&program, &cwd, &args, &env, &log) {
            Ok(pid) => {
                drop(log);
                self.instance = Some(pid);
                self.reply(Op::Spawned, &[pid.to_string().as_bytes()], None);
            }
            Err(e) => self.reply_error(&e, ""),
        }
    }

    /// Kills everything the instance started, reaps it, says how the function's process ended (to the
    /// outer process), and ends. With a PID namespace, ending is enough (the kernel kills what is left);
    /// the kill and the reaping make the function's status known even when the platform ended it.
    fn finish(&mut self) -> ! {
        if self.setup.pid {
            // SAFETY: kill(-1) from PID 1 of a PID namespace signals every other process in it.
            unsafe { libc::kill(-1, libc::SIGKILL) };
            loop {
                let mut status = 0;
                // SAFETY: waitpid(2) for any child, blocking: every process of the namespace is ours now.
                let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
                if pid < 0 {
                    if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    break;
                }
                if Some(pid) == self.instance && self.status.is_none() {
                    self.status = Some(status);
                }
            }
        } else {
            self.kill_descendants();
        }
        if let Some(status) = self.status {
            let bytes = status.to_le_bytes();
            // SAFETY: write(2) of 4 bytes from a local array (a pipe takes them at once).
            unsafe { libc::write(self.status_w.as_raw_fd(), bytes.as_ptr().cast(), 4) };
        }
        // SAFETY: _exit(2) ends the process at once.
        unsafe { libc::_exit(0) }
    }

    /// Without a PID namespace: kills the function's process group, then every child of this subreaper
    /// (orphans of the instance come here) until none is left.
    fn kill_descendants(&mut self) {
        if let Some(pid) = self.instance {
            // SAFETY: kill(2) of the function's own process group; its leader is not reaped yet, so the
            // group id still names it.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        for _ in 0..100_000 {
            let children = children_of_self();
            for c in &children {
                // SAFETY: kill(2) of a child of this process (not reaped: it is listed).
                unsafe { libc::kill(*c, libc::SIGKILL) };
            }
            let mut status = 0;
            // SAFETY: waitpid(2) for any child; blocking only while some child lives.
            let flags = if children.is_empty() {
                libc::WNOHANG
            } else {
                0
            };
            // SAFETY: waitpid(2) for any child of this process.
            let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
            if pid > 0 {
                if Some(pid) == self.instance && self.status.is_none() {
                    self.status = Some(status);
                }
                continue;
            }
            if pid < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if children.is_empty() {
                return;
            }
        }
    }
}

/// The tagged parts of a spawn or an expect: `a`rguments, `e`nvironment, `v`isible and `h`idden paths.
#[derive(Default)]
struct Tagged {
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    visible: Vec<PathBuf>,
    hidden: Vec<PathBuf>,
}

impl Tagged {
    fn of<'a>(parts: impl Iterator<Item = &'a Vec<u8>>) -> Tagged {
        let mut t = Tagged::default();
        for p in parts {
            match p.split_first() {
                Some((b'a', rest)) => t.args.push(rest.to_vec()),
                Some((b'e', rest)) => t.env.push(rest.to_vec()),
                Some((b'v', rest)) => t.visible.push(PathBuf::from(OsStr::from_bytes(rest))),
                Some((b'h', rest)) => t.hidden.push(PathBuf::from(OsStr::from_bytes(rest))),
                _ => {}
            }
        }
        t
    }
}

/// This process's children: `/proc/self/task/*/children`, else a scan of `/proc`.
fn children_of_self() -> Vec<libc::pid_t> {
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

fn socket(domain: libc::c_int, nonblock: bool) -> io::Result<OwnedFd> {
    let ty =
        libc::SOCK_STREAM | libc::SOCK_CLOEXEC | if nonblock { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(domain, ty, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn loopback(port: u16) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data; all zeroes is valid before the fields are set.
    let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    a.sin_family = libc::AF_INET as libc::sa_family_t;
    a.sin_port = port.to_be();
    a.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
    a
}

fn listen_tcp(port: u16) -> io::Result<OwnedFd> {
    let fd = socket(libc::AF_INET, false)?;
    let one: libc::c_int = 1;
    let a = loopback(port);
    // SAFETY: setsockopt/bind/listen on the socket we own, with a live sockaddr_in and option value.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        if libc::bind(
            fd.as_raw_fd(),
            (&a as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) != 0
            || libc::listen(fd.as_raw_fd(), 1024) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(fd)
}

fn listen_abstract(name: &[u8]) -> io::Result<OwnedFd> {
    // SAFETY: sockaddr_un is plain data; all zeroes is valid before the path is set.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if name.is_empty() || name.len() + 1 > a.sun_path.len() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // An abstract name: a NUL byte, then the name (no file anywhere; one namespace per network namespace).
    for (i, b) in name.iter().enumerate() {
        a.sun_path[i + 1] = *b as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + name.len();
    let fd = socket(libc::AF_UNIX, false)?;
    // SAFETY: bind/listen on the socket we own, with a live sockaddr_un of `len` meaningful bytes.
    unsafe {
        if libc::bind(
            fd.as_raw_fd(),
            (&a as *const libc::sockaddr_un).cast(),
            len as libc::socklen_t,
        ) != 0
            || libc::listen(fd.as_raw_fd(), 1024) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(fd)
}

/// Binds the paths the instance needs from the machine's `/tmp` (its code, the runtime's files) into its
/// own `/tmp`, at the same places. The paths are canonical (the platform resolved them); `/tmp` itself is
/// never bound, and a path inside one already bound is covered by it.
fn bind_visible(host_tmp: &OwnedFd, mut paths: Vec<PathBuf>) -> Result<(), String> {
    paths.retain(|p| p.starts_with("/tmp") && p != Path::new("/tmp"));
    paths.sort();
    paths.dedup();
    let mut bound: Vec<PathBuf> = Vec::new();
    for path in paths {
        if bound.iter().any(|b| path.starts_with(b)) {
            continue;
        }
        let Ok(rel) = path.strip_prefix("/tmp") else {
            continue;
        };
        let crel = cstr(rel.as_os_str().as_bytes())?;
        // SAFETY: openat(2) below the machine's /tmp (opened before the instance's was mounted), O_PATH:
        // nothing is read; the result is checked.
        let src = unsafe {
            libc::openat(
                host_tmp.as_raw_fd(),
                crel.as_ptr(),
                libc::O_PATH | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            )
        };
        if src < 0 {
            continue; // not there: nothing to show
        }
        // SAFETY: a new descriptor nobody else owns.
        let src = unsafe { OwnedFd::from_raw_fd(src) };
        let is_dir = std::fs::metadata(format!("/proc/self/fd/{}", src.as_raw_fd()))
            .map(|m| m.is_dir())
            .unwrap_or(false);
        if is_dir {
            std::fs::create_dir_all(&path)
        } else {
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            std::fs::File::create(&path).map(drop)
        }
        .map_err(|e| format!("making {} in the instance's /tmp: {e}", path.display()))?;
        let from = format!("/proc/self/fd/{}", src.as_raw_fd());
        let to = path.to_string_lossy().into_owned();
        mount(Some(&from), &to, None, libc::MS_BIND | libc::MS_REC, None)?;
        bound.push(path);
    }
    Ok(())
}

/// Covers each of `paths` (canonical) in the instance's mount namespace: a directory with an empty read-only
/// `tmpfs` (mode 0), a file with `/dev/null`, read-only. A path that holds `cwd` (the function's code) is left
/// as it is, and one that is not there (under the instance's own `/tmp`, say) has nothing to cover.
fn hide(paths: &[PathBuf], cwd: &Path) -> Result<(), String> {
    let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
    for path in paths {
        if cwd.starts_with(path) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        let target = path.to_string_lossy().into_owned();
        let ro = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        if meta.is_dir() {
            mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                ro,
                Some("size=4k,mode=0"),
            )?;
        } else if meta.is_file() {
            // Without MS_NODEV: the cover is a device node, read as empty.
            let ro = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NOEXEC;
            mount(Some("/dev/null"), &target, None, libc::MS_BIND, None)?;
            mount(
                None,
                &target,
                None,
                libc::MS_BIND | libc::MS_REMOUNT | ro,
                None,
            )?;
        }
    }
    Ok(())
}

/// Forks and execs the function's process: its own process group, the log pipe as stdout and stderr,
/// `/dev/null` as stdin, `cwd` as its directory, exactly `env`. Its pid, or why it could not start.
fn start_instance(
    program: &[u8],
    cwd: &[u8],
    args: &[Vec<u8>],
    env: &[Vec<u8>],
    log: &OwnedFd,
) -> io::Result<libc::pid_t> {
    let bad = |_| io::Error::from_raw_os_error(libc::EINVAL);
    let candidates = candidates(program, env);
    let candidates: Vec<CString> = candidates
        .into_iter()
        .map(CString::new)
        .collect::<Result<_, _>>()
        .map_err(bad)?;
    let mut argv: Vec<CString> = vec![CString::new(program).map_err(bad)?];
    for a in args {
        argv.push(CString::new(a.as_slice()).map_err(bad)?);
    }
    let envp: Vec<CString> = env
        .iter()
        .map(|e| CString::new(e.as_slice()))
        .collect::<Result<_, _>>()
        .map_err(bad)?;
    let cwd = CString::new(cwd).map_err(bad)?;
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    let (err_r, err_w) = pipe()?;
    // SAFETY: fork(2) in a single-threaded process. The child only makes system calls on data prepared
    // above, then execs or exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the child: system calls on descriptors and strings prepared before the fork; every
        // path ends in execve(2) or _exit(2).
        unsafe {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            // The Rust runtime ignores SIGPIPE; the function starts with the default.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if null < 0
                || libc::dup2(null, 0) < 0
                || libc::dup2(log.as_raw_fd(), 1) < 0
                || libc::dup2(log.as_raw_fd(), 2) < 0
                || libc::chdir(cwd.as_ptr()) != 0
            {
                child_failed(err_w.as_raw_fd());
            }
            // As execvp(3): a file found but not executable (EACCES) is the answer unless another
            // candidate runs; any other failure stops the search.
            let (mut denied, mut fatal) = (false, None);
            for c in &candidates {
                libc::execve(c.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr());
                match *libc::__errno_location() {
                    libc::ENOENT | libc::ENOTDIR => {}
                    libc::EACCES => denied = true,
                    other => {
                        fatal = Some(other);
                        break;
                    }
                }
            }
            *libc::__errno_location() =
                fatal.unwrap_or(if denied { libc::EACCES } else { libc::ENOENT });
            child_failed(err_w.as_raw_fd());
        }
    }
    drop(err_w);
    let mut errno = [0u8; 4];
    if read_full(err_r.as_raw_fd(), &mut errno) {
        wait_for(pid);
        return Err(io::Error::from_raw_os_error(i32::from_le_bytes(errno)));
    }
    Ok(pid)
}

/// In the forked child: reports `errno` to the parent and exits.
///
/// # Safety
/// Call only in the child between fork and exec.
unsafe fn child_failed(fd: RawFd) -> ! {
    // SAFETY: reading errno, writing 4 bytes to the error pipe, _exit: all async-signal-safe.
    unsafe {
        let e = (*libc::__errno_location()).to_le_bytes();
        libc::write(fd, e.as_ptr().cast(), 4);
        libc::_exit(127)
    }
}

/// The files to try for `program`: itself when it has a `/`, else each directory of the instance's `PATH`.
fn candidates(program: &[u8], env: &[Vec<u8>]) -> Vec<Vec<u8>> {
    if program.contains(&b'/') {
        return vec![program.to_vec()];
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix(b"PATH="))
        .map(<[u8]>::to_vec)
        .unwrap_or_else(|| b"/usr/local/bin:/usr/bin:/bin".to_vec());
    path.split(|b| *b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
            let mut p = dir.to_vec();
            p.push(b'/');
            p.extend_from_slice(program);
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_looked_up_on_the_instances_path() {
        let env = vec![b"PATH=/a:/b/c".to_vec(), b"X=1".to_vec()];
        assert_eq!(
            candidates(b"python3", &env),
            [b"/a/python3".to_vec(), b"/b/c/python3".to_vec()]
        );
        assert_eq!(candidates(b"./bootstrap", &env), [b"./bootstrap".to_vec()]);
        assert_eq!(candidates(b"sh", &[])[2], b"/bin/sh".to_vec());
    }

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
