//! One instance's process: its init ([`crate::init`]) taken from the supervisor's shells, handed the spawn,
//! watched for its exit without polling (a pidfd where the kernel has them, else a thread parked in
//! `waitid`), measured by the platform's one memory method, and torn down with everything it started.
//!
//! The leader is the init's outer process: it ends exactly as the function's process did. It is not reaped
//! until teardown (its exit is read with `WNOWAIT`), so its process group's id cannot be reused by an
//! unrelated process while the platform may still signal it.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

use crate::control::{Control, Op};
use crate::dir::{InstanceDir, TmpCheck};
use crate::exit::{Exit, ExitHow};
use crate::memory::{Busy, Cgroup, Watched};
use crate::output::Output;
use crate::shell::Shell;
use crate::{Memory, Network, SpawnError, SpawnSpec, Supervisor};

/// How the platform waits for the leader.
#[derive(Debug)]
pub(crate) enum Leader {
    /// A pidfd (Linux 5.3+).
    Pidfd(Arc<OwnedFd>),
    /// The pid (older kernels).
    Pid(i32),
}

impl Leader {
    /// `waitid` on the leader: `WEXITED` plus `flags` (`WNOWAIT`, `WNOHANG`). `None` if it has not exited
    /// (with `WNOHANG`) or cannot be waited for.
    pub(crate) fn wait(&self, flags: libc::c_int) -> Option<ExitHow> {
        // SAFETY: siginfo_t is plain data; all zeroes is a valid value for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let (idtype, id) = match self {
            Leader::Pidfd(fd) => (libc::P_PIDFD, fd.as_raw_fd() as libc::id_t),
            Leader::Pid(pid) => (libc::P_PID, *pid as libc::id_t),
        };
        loop {
            // SAFETY: waitid(2) fills `info`, which we own; the id names our own child.
            let rc = unsafe { libc::waitid(idtype, id, &mut info, libc::WEXITED | flags) };
            if rc == 0 {
                break;
            }
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Some(ExitHow::Unknown);
        }
        // SAFETY: waitid returned 0, so `info` holds a child's state; si_pid/si_status read its union.
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return None; // WNOHANG: still running
        }
        Some(match info.si_code {
            libc::CLD_EXITED => ExitHow::Code(status),
            libc::CLD_KILLED | libc::CLD_DUMPED => ExitHow::Signal(status),
            _ => ExitHow::Unknown,
        })
    }
}

impl Leader {
    /// Waits at most `ms` milliseconds for the leader to exit (without reaping it). Whether it has.
    fn exited_within(&self, ms: i32) -> bool {
        match self {
            Leader::Pidfd(fd) => crate::control::wait_readable(fd.as_raw_fd(), ms).unwrap_or(true),
            Leader::Pid(_) => {
                for _ in 0..(ms / 5).max(1) {
                    if self.wait(libc::WNOWAIT | libc::WNOHANG).is_some() {
                        return true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                false
            }
        }
    }
}

/// A running instance process and everything the platform keeps for it.
#[derive(Debug)]
pub struct Process {
    /// The process whose end is the instance's: the init's outer process (the leader of its process group)
    /// for a spawned instance, the function's own process for a forked one.
    pid: u32,
    /// A forked instance's init (its outer process), which holds its namespaces and is reaped with it.
    forked_init: Option<(u32, Arc<Leader>)>,
    /// The function's own process as the platform sees it, where it is not in a PID namespace of its own.
    instance_pid: Option<u32>,
    /// The function's process as its init saw it when it spawned it (inside its PID namespace, if any).
    spawned_pid: Option<u32>,
    leader: Arc<Leader>,
    exit: watch::Receiver<Option<Exit>>,
    output: Output,
    memory: MemoryOf,
    control: Option<Arc<Control>>,
    own_net: bool,
    pidns: bool,
    dir: Option<InstanceDir>,
    /// The background check of the private `TMPDIR` (used only with `dir`).
    tmp: Arc<TmpCheck>,
    torn_down: bool,
}

/// How this process's memory is read.
#[derive(Debug)]
enum MemoryOf {
    Cgroup(Arc<Cgroup>),
    Sampled(crate::memory::Sampler, Arc<Watched>),
}

/// Work in progress on an instance: while one lives, the platform's memory sampler (where there are no
/// cgroups) watches it.
#[derive(Debug)]
pub struct Work(#[allow(dead_code, reason = "held for its Drop")] Option<Busy>);

impl Work {
    /// No work: a guard that watches nothing.
    pub fn none() -> Work {
        Work(None)
    }
}

/// An instance prepared to be started: its init (in its memory cgroup, with the function's memory size as
/// the limit where the platform has cgroups, and in its namespaces where the machine allows them) and,
/// without a private `/tmp`, its private directory (mode 0700, with `tmp/`). Dropped unused, all of it is
/// removed (off the event loop).
#[derive(Debug)]
pub struct Prepared {
    pub(crate) shell: Shell,
    pub(crate) control: Control,
    pub(crate) dir: Option<InstanceDir>,
    pub(crate) limit: u64,
}

impl Prepared {
    /// The private temporary directory (`TMPDIR`) as the instance sees it: its own `/tmp` where it has one,
    /// else `tmp/` in its private directory.
    pub fn tmp(&self) -> PathBuf {
        match &self.dir {
            Some(d) => d.path().join("tmp"),
            None => PathBuf::from("/tmp"),
        }
    }

    /// Whether the instance has its own network namespace (its loopback is its own).
    pub fn own_network(&self) -> bool {
        self.shell.want.net
    }

    /// A TCP listener for the instance: on `127.0.0.1:port` inside its own network namespace, or, on the
    /// machine's network, on a free loopback port (then any local process can connect: check who with
    /// [`Owner::owns_tcp`]).
    pub async fn listen_tcp(&self, port: u16) -> std::io::Result<std::net::TcpListener> {
        let port = if self.own_network() { port } else { 0 };
        let fd = self
            .control
            .call_for_fd(Op::ListenTcp, &[port.to_string().as_bytes()])
            .await?;
        let l = std::net::TcpListener::from(fd);
        l.set_nonblocking(true)?;
        Ok(l)
    }

    /// A Unix listener on the abstract socket `name` (no file: `@name`), made inside the instance's network
    /// namespace, so only the instance can reach it where it has one; elsewhere check who connects with
    /// [`Owner::owns`].
    pub async fn listen_unix(
        &self,
        name: &str,
    ) -> std::io::Result<std::os::unix::net::UnixListener> {
        let fd = self
            .control
            .call_for_fd(Op::ListenUnix, &[name.as_bytes()])
            .await?;
        let l = std::os::unix::net::UnixListener::from(fd);
        l.set_nonblocking(true)?;
        Ok(l)
    }

    /// The pid of the instance's init on the machine (its outer process), for [`crate::init::enter`].
    pub fn init_pid(&self) -> u32 {
        self.shell.pid
    }

    /// The `cgroup.procs` file of the instance's memory cgroup, where it has one: a process joins the
    /// instance's cgroup by writing `0` to it (before [`crate::init::enter`]).
    pub fn cgroup_procs(&self) -> Option<PathBuf> {
        self.shell.cgroup.as_ref().map(Cgroup::procs_path)
    }

    /// Who the instance is, for checking the process at the other end of a connection.
    pub fn owner(&self) -> Owner {
        Owner {
            leader: self.shell.pid,
            pidns: self.shell.pidns.clone(),
            cgroup: self.shell.cgroup.as_ref().map(|c| c.suffix().to_owned()),
            procs: self.cgroup_procs(),
        }
    }
}

/// Which processes belong to one instance.
#[derive(Debug, Clone)]
pub struct Owner {
    leader: u32,
    pidns: Option<String>,
    cgroup: Option<String>,
    /// The cgroup's `cgroup.procs`, where it has one.
    procs: Option<PathBuf>,
}

impl Owner {
    /// Whether process `pid` (as the platform sees it, e.g. from `SO_PEERCRED`) is one of the instance's:
    /// in its PID namespace where it has one, else in its cgroup, else below its init. Blocking (reads
    /// `/proc`): call it off the event loop.
    pub fn owns(&self, pid: u32) -> bool {
        if let Some(ns) = &self.pidns {
            return std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                .is_ok_and(|l| l.as_os_str().as_bytes() == ns.as_bytes());
        }
        if let Some(suffix) = &self.cgroup {
            return crate::memory::in_cgroup(pid, suffix);
        }
        let mut p = pid as i32;
        for _ in 0..256 {
            if p == self.leader as i32 {
                return true;
            }
            match crate::memory::parent_of(p) {
                Some(parent) if parent > 1 => p = parent,
                _ => return false,
            }
        }
        false
    }

    /// Whether the client end of an accepted loopback TCP connection (`local` and `peer` as the server sees
    /// them) is held by one of the instance's processes: those of its cgroup where it has one, else those of
    /// its PID namespace, else those below its init (`crate::peer`; bounded, refused past its bounds). Blocking (reads `/proc`): call it
    /// off the event loop. Only meaningful on the platform's network: an instance with its own network
    /// namespace is the only one that reaches its listeners anyway.
    pub fn owns_tcp(&self, local: std::net::SocketAddr, peer: std::net::SocketAddr) -> bool {
        crate::peer::held_by_instance(
            self.procs.as_deref(),
            self.pidns.as_deref(),
            self.leader,
            local,
            peer,
        )
    }
}

impl Supervisor {
    /// Prepares instance `id` of a function of `memory_mb` MB, off the event loop: takes a ready init (or
    /// starts one), sets its cgroup's limit, makes its private directory where it has no private `/tmp`.
    pub async fn prepare(
        &self,
        id: &str,
        memory_mb: u32,
        network: Network,
    ) -> Result<Prepared, SpawnError> {
        self.prepare_as(id, memory_mb, Some(network)).await
    }

    /// Prepares instance `id` as [`Supervisor::prepare`] does, but without namespaces: it shares the
    /// machine's network, `/proc` and `/tmp` (its `TMPDIR` is private), and its pid is its own as the
    /// machine sees it. For a debugged instance, whose debugger is reached from the machine. Its init is
    /// still a subreaper in its cgroup: everything it starts dies with it.
    pub async fn prepare_without_namespaces(
        &self,
        id: &str,
        memory_mb: u32,
    ) -> Result<Prepared, SpawnError> {
        self.prepare_as(id, memory_mb, None).await
    }

    async fn prepare_as(
        &self,
        id: &str,
        memory_mb: u32,
        namespaces: Option<Network>,
    ) -> Result<Prepared, SpawnError> {
        let (parent, id) = (self.inner.work_dir.clone(), id.to_owned());
        let limit = u64::from(memory_mb) * 1024 * 1024;
        let shells = self.inner.shells.clone();
        let (mut shell, dir) = tokio::task::spawn_blocking(move || {
            let shell = match namespaces {
                Some(network) => shells.take(network)?,
                None => shells.take_plain()?,
            };
            if let Some(c) = &shell.cgroup {
                c.set_limit(limit).map_err(SpawnError::Cgroup)?;
            }
            let dir = if shell.want.pid {
                None
            } else {
                Some(InstanceDir::create(&parent, &id).map_err(SpawnError::Dir)?)
            };
            Ok::<_, SpawnError>((shell, dir))
        })
        .await
        .map_err(|e| SpawnError::Dir(std::io::Error::other(e)))??;
        let ctl = shell
            .ctl
            .take()
            .ok_or_else(|| SpawnError::Init("the init's channel is gone".into()))?;
        let control = Control::new(ctl).map_err(|e| SpawnError::Init(e.to_string()))?;
        Ok(Prepared {
            shell,
            control,
            dir,
            limit,
        })
    }

    /// Starts `spec` as the instance `prepared` (which it then owns): its init forks and execs it in its own
    /// process group, with the environment built from nothing ([`crate::env`]), stdout and stderr on one
    /// pipe, and the paths it needs from the machine's `/tmp` bound into its own.
    pub async fn spawn(&self, spec: SpawnSpec, prepared: Prepared) -> Result<Process, SpawnError> {
        let (write, output) = crate::output::pipe().map_err(SpawnError::Output)?;
        let Prepared {
            shell,
            control,
            dir,
            limit,
        } = prepared;
        let env = crate::env::instance_environment(std::env::vars_os(), &spec.env);
        let mut parts: Vec<Vec<u8>> = vec![
            spec.program.as_os_str().as_bytes().to_vec(),
            spec.cwd.as_os_str().as_bytes().to_vec(),
        ];
        let tag = |t: u8, bytes: &[u8]| {
            let mut v = Vec::with_capacity(bytes.len() + 1);
            v.push(t);
            v.extend_from_slice(bytes);
            v
        };
        parts.extend(spec.args.iter().map(|a| tag(b'a', a.as_bytes())));
        parts.extend(
            env.iter()
                .map(|(k, v)| tag(b'e', format!("{k}={v}").as_bytes())),
        );
        if shell.want.pid {
            parts.extend(world_parts(&spec).await);
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let reply = control
            .call(Op::Spawn, &refs, Some(write.as_raw_fd()))
            .await
            .map_err(|e| SpawnError::Init(e.to_string()))?;
        drop(write); // the function's process holds the pipe's write end now
        let instance_pid = match reply.op {
            Op::Spawned => reply.text(0).parse::<u32>().ok(),
            _ => {
                return Err(SpawnError::Spawn {
                    program: spec.program.clone(),
                    source: reply.into_error(),
                });
            }
        };
        let pid = shell.pid;
        let leader = shell.leader.clone();
        let prepared = Prepared {
            shell,
            control,
            dir,
            limit,
        };
        self.holding(prepared, pid, leader, false, instance_pid, output)
    }

    /// The [`Process`] of the instance `prepared`, whose end is `leader`'s (`pid`): its init's outer process
    /// for a spawn, the function's process for a fork (`forked`: then the init is held beside it). Its memory
    /// by the platform's method, its exit watched.
    pub(crate) fn holding(
        &self,
        prepared: Prepared,
        pid: u32,
        leader: Arc<Leader>,
        forked: bool,
        instance_pid: Option<u32>,
        output: Output,
    ) -> Result<Process, SpawnError> {
        let Prepared {
            mut shell,
            control,
            dir,
            limit,
        } = prepared;
        let pidns = shell.want.pid;
        let own_net = shell.want.net;
        let cgroup = shell.cgroup.take();
        shell.handed_over = true;
        let forked_init = forked.then(|| (shell.pid, shell.leader.clone()));
        let memory = match (cgroup, &self.inner.memory) {
            (Some(c), _) => MemoryOf::Cgroup(Arc::new(c)),
            (None, Memory::Sampled(sampler, _)) => {
                MemoryOf::Sampled(sampler.clone(), sampler.watch(pid as i32, limit))
            }
            (None, Memory::Cgroup(_)) => {
                return Err(SpawnError::Cgroup(std::io::Error::other(
                    "the instance's cgroup is missing",
                )));
            }
        };
        let (exit_tx, exit) = watch::channel(None);
        watch_exit(pid, &leader, &memory, exit_tx);
        Ok(Process {
            pid,
            forked_init,
            instance_pid: if pidns { None } else { instance_pid },
            spawned_pid: instance_pid,
            leader,
            exit,
            output,
            memory,
            control: Some(Arc::new(control)),
            own_net,
            pidns,
            dir,
            tmp: Arc::default(),
            torn_down: false,
        })
    }
}

/// The `v` and `h` parts of a spawn (or of an [`Op::Expect`] before a fork): what the instance must see of
/// the machine's `/tmp` in its own (its code, its program, the runtime's files), resolved off the event
/// loop, and what it must not see of the machine ([`SpawnSpec::hidden`], canonical already).
pub(crate) async fn world_parts(spec: &SpawnSpec) -> Vec<Vec<u8>> {
    let mut wanted = spec.visible.clone();
    wanted.push(spec.cwd.clone());
    if spec.program.is_absolute() {
        wanted.push(spec.program.clone());
    }
    let tagged = |tag: u8, p: &Path| {
        let mut v = vec![tag];
        v.extend_from_slice(p.as_os_str().as_bytes());
        v
    };
    let mut parts = tokio::task::spawn_blocking(move || {
        wanted
            .into_iter()
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .map(|p| tagged(b'v', &p))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    parts.extend(spec.hidden.iter().map(|p| tagged(b'h', p)));
    parts
}

pub(crate) fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) with flags 0 returns a new descriptor (or -1); it touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    let fd = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Publishes the leader's exit when it happens: a task waiting on the pidfd (and, on cgroup v1, on the OOM
/// events of the instance's cgroup), or a thread parked in `waitid`. Nothing polls.
fn watch_exit(pid: u32, leader: &Arc<Leader>, memory: &MemoryOf, tx: watch::Sender<Option<Exit>>) {
    let memory_exceeded = {
        let memory = match memory {
            MemoryOf::Cgroup(c) => Ok(c.clone()),
            MemoryOf::Sampled(_, w) => Err(w.clone()),
        };
        move || match &memory {
            Ok(c) => c.oom_kills() > 0,
            Err(w) => w.exceeded.load(Ordering::SeqCst),
        }
    };
    let oom_events = match memory {
        MemoryOf::Cgroup(c) => c
            .oom_events()
            // SAFETY: the AsyncFd owns the eventfd, which stays open (and the same) until it is dropped.
            .and_then(|fd| unsafe { AsyncFd::register(fd) }.ok())
            .map(|fd| (fd, c.clone())),
        MemoryOf::Sampled(..) => None,
    };
    if let Leader::Pidfd(fd) = &**leader
        // SAFETY: PidfdRef holds the pidfd (an Arc shared with the Process), so it stays open and the same
        // for as long as the AsyncFd lives.
        && let Ok(readable) = unsafe { AsyncFd::register(PidfdRef(fd.clone())) }
    {
        let leader = leader.clone();
        tokio::spawn(async move {
            let mut oom_ok = oom_events.is_some();
            // The kernel signals an OOM before its killer acts: the instance is over its size then, even
            // if the kill below comes first and the killer has nothing left to count.
            let mut oom_seen = false;
            loop {
                let oom = async {
                    match (&oom_events, oom_ok) {
                        (Some((efd, _)), true) => efd.readable().await.map(|mut g| g.clear_ready()),
                        _ => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    r = oom => match (r, &oom_events) {
                        (Ok(()), Some((efd, cgroup))) => {
                            if read_eventfd(efd.get_ref()) > 0 {
                                oom_seen = true;
                                // The OOM killer takes one process: the instance goes whole.
                                // SAFETY: kill(2) of the unreaped leader's group; no memory involved.
                                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
                                cgroup.kill();
                            }
                        }
                        _ => oom_ok = false,
                    },
                    _ = readable.readable() => break,
                }
            }
            if let Some((efd, _)) = &oom_events {
                oom_seen |= read_eventfd(efd.get_ref()) > 0;
            }
            let how = leader
                .wait(libc::WNOWAIT | libc::WNOHANG)
                .unwrap_or(ExitHow::Unknown);
            let _ = tx.send(Some(Exit {
                how,
                memory_exceeded: oom_seen || memory_exceeded(),
            }));
        });
        return;
    }
    let leader = leader.clone();
    let _ = std::thread::Builder::new()
        .name(format!("scf-wait-{pid}"))
        .spawn(move || {
            let how = leader.wait(libc::WNOWAIT).unwrap_or(ExitHow::Unknown);
            let _ = tx.send(Some(Exit {
                how,
                memory_exceeded: memory_exceeded(),
            }));
        });
}

/// Reads (and so resets) an eventfd's counter; 0 when nothing was signalled.
fn read_eventfd(fd: &OwnedFd) -> u64 {
    let mut n = [0u8; 8];
    // SAFETY: reads the 8-byte counter of an eventfd we own into `n` (non-blocking: -1 when it is zero).
    let rc = unsafe { libc::read(fd.as_raw_fd(), n.as_mut_ptr().cast(), 8) };
    if rc == 8 { u64::from_ne_bytes(n) } else { 0 }
}

/// A pidfd shared with the [`Process`], for `AsyncFd` (which needs to own something with a descriptor).
struct PidfdRef(Arc<OwnedFd>);

impl std::os::fd::AsRawFd for PidfdRef {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl Process {
    /// The process's id as the machine sees it: the function's own process where it has no PID namespace
    /// of its own, else the instance's init (the leader of its process group).
    pub fn pid(&self) -> u32 {
        self.instance_pid.unwrap_or(self.pid)
    }

    /// The function's own process as the machine sees it, for reading its `/proc` (its memory): the same as
    /// [`Process::pid`] for a forked instance or one without a PID namespace; in one, the process of the
    /// init's that has the pid the init gave it. Blocking (reads `/proc`); `None` once it is gone.
    pub fn function_pid(&self) -> Option<u32> {
        if self.forked_init.is_some() || !self.pidns {
            return Some(self.pid());
        }
        let inside = self.spawned_pid?;
        let inner = crate::memory::children_of(self.pid).into_iter().next()?;
        crate::memory::children_of(inner)
            .into_iter()
            .find(|c| crate::memory::pid_inside(*c) == Some(inside))
    }

    /// The private directory (none when the instance has its own `/tmp`).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(InstanceDir::path)
    }

    /// Where the instance has no `/tmp` of its own (a `tmpfs` the kernel caps): whether the last check of its
    /// private `TMPDIR` found more than [`crate::TMP_BYTES`], and how much; `None` with its own `/tmp`. The
    /// platform calls it after each invocation: it also has the directory checked again, off the event loop
    /// and not awaited (one walk at a time, at most one per 10 ms, one after the last invocation), so an
    /// invocation's answer never waits for a walk. Call it within the runtime.
    pub fn tmp_over_cap(&self) -> Option<u64> {
        let dir = self.dir.as_ref()?.path();
        let used = self.tmp.used.load(Ordering::Relaxed);
        self.tmp.again.store(true, Ordering::SeqCst);
        if !self.tmp.running.swap(true, Ordering::SeqCst) {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn(self.tmp.clone().run(dir.to_path_buf()))),
                Err(_) => self.tmp.running.store(false, Ordering::SeqCst),
            }
        }
        (used > crate::TMP_BYTES).then_some(used)
    }

    /// Its stdout and stderr.
    pub fn output(&self) -> &Output {
        &self.output
    }

    /// How it ended, if it has.
    pub fn exit(&self) -> Option<Exit> {
        *self.exit.borrow()
    }

    /// Waits until it has ended; how.
    pub async fn exited(&self) -> Exit {
        let mut exit = self.exit.clone();
        let unknown = Exit {
            how: ExitHow::Unknown,
            memory_exceeded: false,
        };
        match exit.wait_for(Option::is_some).await {
            Ok(e) => e.unwrap_or(unknown),
            Err(_) => unknown,
        }
    }

    /// Memory in use now, bytes: the cgroup's counter, or the sampler's last reading (0 before one).
    pub fn memory(&self) -> u64 {
        match &self.memory {
            MemoryOf::Cgroup(c) => c.usage(),
            MemoryOf::Sampled(_, w) => w.mem.load(Ordering::Relaxed),
        }
    }

    /// Memory in use now, bytes, read fresh (off the event loop where that means reading `/proc`).
    pub async fn measure(&self) -> u64 {
        match &self.memory {
            MemoryOf::Cgroup(c) => c.usage(),
            MemoryOf::Sampled(_, w) => {
                let leader = self.pid as i32;
                let rss =
                    tokio::task::spawn_blocking(move || crate::memory::instance_tree(leader).0)
                        .await
                        .unwrap_or(0);
                w.mem.store(rss, Ordering::Relaxed);
                rss
            }
        }
    }

    /// The most memory it has used, bytes, where the kernel keeps that figure.
    pub fn peak_memory(&self) -> Option<u64> {
        match &self.memory {
            MemoryOf::Cgroup(c) => c.peak(),
            MemoryOf::Sampled(..) => None,
        }
    }

    /// Marks work in progress until the returned guard is dropped: the memory sampler (where there are no
    /// cgroups) watches the instance meanwhile. With cgroups the kernel watches all the time.
    pub fn work(&self) -> Work {
        match &self.memory {
            MemoryOf::Cgroup(_) => Work(None),
            MemoryOf::Sampled(sampler, w) => Work(Some(sampler.busy(w))),
        }
    }

    /// Connects to `127.0.0.1:port` as the instance sees it: inside its network namespace when it has one
    /// (through a socket its init made there; the connection itself is made here, so the init never
    /// waits and connections to one instance are made side by side).
    pub async fn connect(&self, port: u16) -> std::io::Result<tokio::net::TcpStream> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stream = match (&self.control, self.own_net) {
            (Some(c), true) => {
                // Its own task: a caller that gives up mid-request must not leave the reply unread on the
                // channel, where the next request would take it for its own.
                let c = c.clone();
                let fd = tokio::spawn(async move { c.call_for_fd(Op::Socket, &[]).await })
                    .await
                    .map_err(std::io::Error::other)??;
                let socket = tokio::net::TcpSocket::from_std_stream(std::net::TcpStream::from(fd));
                socket.connect(addr).await?
            }
            _ => tokio::net::TcpStream::connect(addr).await?,
        };
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Kills the instance now, with everything it started. With a PID namespace, killing its init does it
    /// (the kernel kills the rest); otherwise the function's process group is killed and its init, a
    /// subreaper, kills what left it. Its exit follows.
    pub fn kill(&self) {
        let init = self.init_pid();
        if self.forked_init.is_some() {
            // SAFETY: kill(2) of the forked function's process group; its leader is held unreaped until
            // teardown, so the id still names this group; no memory involved.
            unsafe { libc::kill(-(self.pid as i32), libc::SIGKILL) };
        }
        if self.pidns {
            // SAFETY: kill(2) of the process group of the instance's init, which is not reaped before
            // teardown, so the id still names this group; no memory involved.
            unsafe { libc::kill(-(init as i32), libc::SIGKILL) };
        } else {
            if let Some(c) = &self.control {
                let _ = crate::control::send(c.raw(), Op::Kill, &[], None, libc::MSG_DONTWAIT);
            }
            if let Some(p) = self.instance_pid
                && self.exit().is_none()
            {
                // SAFETY: kill(2) of the function's process group while its init lives (the init reaps the
                // function's process only as it ends, so the id still names the group); no memory involved.
                unsafe { libc::kill(-(p as i32), libc::SIGKILL) };
            }
        }
        if let MemoryOf::Cgroup(c) = &self.memory {
            c.kill();
        }
    }

    /// The instance's init's (outer) process.
    fn init_pid(&self) -> u32 {
        self.forked_init.as_ref().map_or(self.pid, |(pid, _)| *pid)
    }

    /// Tears the instance down: kills everything it started, reaps it, removes its cgroup and its private
    /// directory (the blocking part off the event loop), and waits until that is done.
    pub async fn stop(mut self) {
        let cleanup = self.teardown();
        let _ = tokio::task::spawn_blocking(cleanup).await;
    }

    /// Kills now; returns the blocking rest of the teardown.
    fn teardown(&mut self) -> impl FnOnce() + Send + 'static {
        self.torn_down = true;
        self.kill();
        // Closing the channel ends the init, which kills what is left of the instance.
        self.control = None;
        let leader = self.leader.clone();
        let pid = self.pid;
        let init = self.forked_init.clone();
        let init_pid = self.init_pid() as i32;
        let pidns = self.pidns;
        let cgroup = match &self.memory {
            MemoryOf::Cgroup(c) => Some(c.clone()),
            MemoryOf::Sampled(..) => None,
        };
        let dir = self.dir.take();
        move || {
            if !pidns && init.is_none() {
                // The subreaper kills the instance's orphans before it ends: give it a moment.
                let _ = leader.exited_within(1000);
            }
            // SAFETY: kill(2) of the group of the instance's init, which is not reaped yet.
            unsafe { libc::kill(-init_pid, libc::SIGKILL) };
            if let Some(c) = &cgroup {
                c.kill_and_remove();
            }
            crate::shell::reap(pid, &leader);
            if let Some((init_pid, init_leader)) = &init {
                crate::shell::reap(*init_pid, init_leader);
            }
            if let Some(d) = dir {
                d.remove_now();
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !self.torn_down {
            let cleanup = self.teardown();
            crate::off_loop(cleanup);
        }
    }
}
