//! The init's inner process: PID 1 of the instance (or a subreaper), serving the platform's requests.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use super::mount::{bind_visible, hide, mount};
use super::outer::Setup;
use super::spawn::start_instance;
use super::{children_of_self, fail};
use crate::control::{self, Op};

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

pub(super) fn inner(ctl: OwnedFd, setup: Setup, status_w: OwnedFd) -> ! {
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
    // The instance's first process, spawned here or forked by a zygote's child that joins the namespace,
    // gets the pid this init has on the machine.
    me.next_pid_is_hosts();
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
    /// `/tmp` visible and cover what it must not see (the pid it gets was set when this init became ready);
    /// then say so on the pipe passed with the request (one byte, left there for the process that waits on
    /// it to see: `scf-shim`'s `zygote::enter`), and answer. On failure the pipe is closed without a word.
    fn expect(&mut self, m: control::Message) {
        let cwd = m.parts.first().cloned().unwrap_or_default();
        let Tagged {
            visible, hidden, ..
        } = Tagged::of(m.parts.iter().skip(1));
        if let Err(e) = self.make_world(visible, &hidden, &cwd) {
            self.reply(Op::Error, &[b"0", e.as_bytes()], None);
            return;
        }
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
