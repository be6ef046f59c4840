//! One instance's process: spawned off the event loop, watched for its exit without polling (a pidfd where
//! the kernel has them, else a thread parked in `waitid`), measured by the platform's one memory method,
//! and torn down with everything it started.
//!
//! The leader is not reaped until teardown (its exit is read with `WNOWAIT`), so the process group's id
//! cannot be reused by an unrelated process while the platform may still signal it.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

use crate::dir::InstanceDir;
use crate::exit::{Exit, ExitHow};
use crate::memory::{Busy, Cgroup, Watched};
use crate::netns;
use crate::output::Output;
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
    fn wait(&self, flags: libc::c_int) -> Option<ExitHow> {
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

/// A running instance process and everything the platform keeps for it.
#[derive(Debug)]
pub struct Process {
    pid: u32,
    leader: Arc<Leader>,
    exit: watch::Receiver<Option<Exit>>,
    output: Output,
    memory: MemoryOf,
    connector: Option<netns::Connector>,
    dir: Option<InstanceDir>,
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

/// An instance prepared to be started: its private directory (mode 0700, with `tmp/`) and, where the
/// platform has them, its memory cgroup with the function's memory size as its limit. Dropped unused, both
/// are removed (off the event loop).
#[derive(Debug)]
pub struct Prepared {
    pub(crate) dir: Option<InstanceDir>,
    pub(crate) cgroup: Option<Cgroup>,
    pub(crate) limit: u64,
}

impl Prepared {
    /// The private directory.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), InstanceDir::path)
    }

    /// The private temporary directory (`TMPDIR`).
    pub fn tmp(&self) -> PathBuf {
        self.path().join("tmp")
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(c) = self.cgroup.take() {
            crate::off_loop(move || c.kill_and_remove());
        }
    }
}

impl Supervisor {
    /// Prepares instance `id` of a function of `memory_mb` MB, off the event loop: its private directory
    /// and its memory cgroup.
    pub async fn prepare(&self, id: &str, memory_mb: u32) -> Result<Prepared, SpawnError> {
        let (parent, id) = (self.inner.work_dir.clone(), id.to_owned());
        let limit = u64::from(memory_mb) * 1024 * 1024;
        let root = match &self.inner.memory {
            Memory::Cgroup(root) => Some(root.clone()),
            Memory::Sampled(..) => None,
        };
        tokio::task::spawn_blocking(move || {
            let dir = InstanceDir::create(&parent, &id).map_err(SpawnError::Dir)?;
            let cgroup = root
                .map(|r| r.create(&id, limit))
                .transpose()
                .map_err(SpawnError::Cgroup)?;
            Ok(Prepared {
                dir: Some(dir),
                cgroup,
                limit,
            })
        })
        .await
        .map_err(|e| SpawnError::Dir(std::io::Error::other(e)))?
    }

    /// Starts `spec` as the instance `prepared` (which it then owns): in its own process group, in its
    /// memory cgroup where the platform has them, in its own network namespace when asked and possible,
    /// with stdout and stderr on one pipe. The fork and exec happen off the event loop.
    pub async fn spawn(
        &self,
        spec: SpawnSpec,
        mut prepared: Prepared,
    ) -> Result<Process, SpawnError> {
        let (write, output) = crate::output::pipe().map_err(SpawnError::Output)?;
        let limit = prepared.limit;
        let own_net =
            spec.isolation.network == Network::Own && *self.net_mode() == netns::NetMode::Namespace;
        let cgroup = prepared.cgroup.take();
        let dir = prepared.dir.take();
        let spawned = tokio::task::spawn_blocking(move || {
            // Held from the fork on, so the orphan reaper of a platform with zygotes leaves it alone.
            let mut held = crate::zygote::held();
            let child = start(&spec, write, cgroup.as_ref().map(Cgroup::procs_fd), own_net)
                .inspect_err(|_| {
                    if let Some(c) = &cgroup {
                        c.kill_and_remove();
                    }
                })?;
            let pid = child.id();
            held.insert(pid);
            drop(held);
            drop(child); // std's handle neither waits nor kills; the platform reaps the leader itself
            let leader =
                pidfd_open(pid).map_or(Leader::Pid(pid as i32), |fd| Leader::Pidfd(Arc::new(fd)));
            let connector = if own_net {
                match netns::Connector::new(pid) {
                    Ok(c) => Some(c),
                    // A process that exited at once leaves no namespace to join: its exit says why.
                    Err(_) if exits_soon(&leader) => None,
                    Err(e) => {
                        // SAFETY: kill(2) of the group of the child just started (not reaped).
                        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
                        let _ = leader.wait(0);
                        if let Some(c) = &cgroup {
                            c.kill_and_remove();
                        }
                        return Err(SpawnError::Namespace(e));
                    }
                }
            } else {
                None
            };
            Ok((pid, leader, cgroup, connector))
        })
        .await
        .map_err(|e| SpawnError::Output(std::io::Error::other(e)))?;
        let (pid, leader, cgroup, connector) = spawned?;
        self.adopt(pid, leader, cgroup, connector, output, dir, limit)
    }

    /// The [`Process`] of a leader that is the platform's child (spawned, or forked by a zygote): its memory
    /// by the platform's method, its exit watched.
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of one process, moved in"
    )]
    pub(crate) fn adopt(
        &self,
        pid: u32,
        leader: Leader,
        cgroup: Option<Cgroup>,
        connector: Option<netns::Connector>,
        output: Output,
        dir: Option<InstanceDir>,
        limit: u64,
    ) -> Result<Process, SpawnError> {
        let leader = Arc::new(leader);
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
            leader,
            exit,
            output,
            memory,
            connector,
            dir,
            torn_down: false,
        })
    }
}

/// Builds and spawns the child (blocking: fork and exec).
fn start(
    spec: &SpawnSpec,
    write: OwnedFd,
    cgroup_procs: Option<RawFd>,
    own_net: bool,
) -> Result<std::process::Child, SpawnError> {
    use std::os::unix::process::CommandExt as _;
    let stderr = write.try_clone().map_err(SpawnError::Output)?;
    let mut cmd = std::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(crate::env::instance_environment(
            std::env::vars_os(),
            &spec.env,
        ))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(write))
        .stderr(std::process::Stdio::from(stderr))
        .process_group(0);
    // Only when there is something to do between fork and exec: without a pre_exec hook the standard
    // library starts the child with posix_spawn (vfork-like), which is faster from a large parent.
    if cgroup_procs.is_some() || own_net {
        // SAFETY: the closure runs in the forked child before exec and makes only system calls (write(2)
        // to a descriptor opened before the fork, unshare(2), socket/ioctl/close), which are
        // async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = cgroup_procs {
                    // "0": the writing process itself joins the instance's cgroup, before it can start others.
                    if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if own_net {
                    netns::enter_new()?;
                }
                Ok(())
            });
        }
    }
    let child = cmd.spawn().map_err(|source| SpawnError::Spawn {
        program: spec.program.clone(),
        source,
    });
    drop(cmd); // closes our copies of the pipe's write end
    child
}

pub(crate) fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) with flags 0 returns a new descriptor (or -1); it touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    let fd = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether the leader exits within a moment (it failed at once). Blocking; runs off the loop.
fn exits_soon(leader: &Leader) -> bool {
    for _ in 0..60 {
        if leader.wait(libc::WNOWAIT | libc::WNOHANG).is_some() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    false
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
    /// The process's id (also its process group's).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The private directory.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), InstanceDir::path)
    }

    /// The private temporary directory (`TMPDIR`).
    pub fn tmp_dir(&self) -> PathBuf {
        self.dir().join("tmp")
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
                let pgid = self.pid as i32;
                let rss = tokio::task::spawn_blocking(move || crate::memory::group_rss(pgid))
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

    /// Connects to `127.0.0.1:port` as the instance sees it: inside its network namespace when it has one.
    pub async fn connect(&self, port: u16) -> std::io::Result<tokio::net::TcpStream> {
        let stream = match &self.connector {
            Some(c) => c.connect(port).await?,
            None => {
                tokio::net::TcpStream::connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
                    .await?
            }
        };
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Kills the instance now: its process group, and its cgroup where one write does it. Its exit follows.
    pub fn kill(&self) {
        // SAFETY: kill(2) of the process group of the instance's leader, which is not reaped before
        // teardown, so the id still names this group; no memory involved.
        unsafe { libc::kill(-(self.pid as i32), libc::SIGKILL) };
        if let MemoryOf::Cgroup(c) = &self.memory {
            c.kill();
        }
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
        self.connector = None;
        let leader = self.leader.clone();
        let pid = self.pid;
        let cgroup = match &self.memory {
            MemoryOf::Cgroup(c) => Some(c.clone()),
            MemoryOf::Sampled(..) => None,
        };
        let dir = self.dir.take();
        move || {
            if let Some(c) = &cgroup {
                c.kill_and_remove();
            }
            let _ = leader.wait(libc::WNOWAIT); // until it has exited
            // Reaped and forgotten under one lock: a new leader reusing the pid is registered after.
            let mut held = crate::zygote::held();
            let _ = leader.wait(0); // reap
            held.remove(pid);
            drop(held);
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
