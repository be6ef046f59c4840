//! Zygotes: pre-initialised processes that fork instances (`docs/architecture.md`, "The Python zygote").
//!
//! One zygote per distinct [`ZygoteSpec`] (its program, arguments and environment), started on first use
//! and again after it dies. A fork request carries the instance's whole environment (built by
//! [`crate::env::instance_environment`], exactly as for a spawn), its working directory, its output pipe
//! and its memory cgroup (as descriptors); the zygote's child enters that world itself. The wire is
//! `scf-shim`'s (its `zygote` module documents it).
//!
//! **Ownership.** The platform makes itself a child subreaper (`PR_SET_CHILD_SUBREAPER`) before its first
//! zygote starts; the zygote forks twice and reaps the intermediate before it answers, so the instance is
//! already the platform's child when its pid comes back. From then on it is held as any spawned instance
//! ([`Process`]): a pidfd, `waitid` with `WNOWAIT`, its process group, its cgroup, its teardown.
//!
//! As a subreaper the platform also adopts the orphans of its instances (a process whose parent died).
//! One task reaps them on `SIGCHLD`: every zombie child that is not a leader the platform holds
//! ([`hold`]) and not in the platform's own process group (its own commands, which their owners reap).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::Read as _;
use std::os::fd::{AsRawFd, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::control::Op;
use crate::process::Leader;
use crate::{Prepared, Process, SpawnError, SpawnSpec, Supervisor};

/// How long a zygote may take to come up, and to answer a request (bounded; a stuck zygote is replaced).
const HELLO_WITHIN: Duration = Duration::from_secs(30);
const REPLY_WITHIN: Duration = Duration::from_secs(10);
/// Starts that failed in a row after which a zygote is not tried again (its instances start normally).
const MAX_FAILED_STARTS: u32 = 3;
/// The largest request (`scf-shim`'s `zygote::MAX_REQUEST`).
const MAX_REQUEST: usize = 128 * 1024;
/// The zygote's end of its control socket (`scf-shim`'s `zygote::CONTROL_FD`).
const CONTROL_FD: RawFd = 3;

/// What a zygote is: the program that becomes one, its arguments and its own variables (its environment is
/// built from nothing, as an instance's is). Zygotes with equal specs are one zygote.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ZygoteSpec {
    /// The program (`scf-shim`).
    pub program: PathBuf,
    /// Its arguments (`--zygote`).
    pub args: Vec<OsString>,
    /// Its own variables (the instance variables that shape its interpreter), sorted.
    pub env: Vec<(String, String)>,
}

/// The result of [`Supervisor::fork`].
#[derive(Debug)]
pub enum Forked {
    /// The instance runs, forked from its zygote.
    Started(Process),
    /// No zygote could fork it (`why`); start it the normal way with what is handed back.
    Refused {
        /// Why.
        why: String,
        /// The spec, unused.
        spec: SpawnSpec,
        /// The prepared instance, unused.
        prepared: Box<Prepared>,
    },
}

/// The platform's zygotes, by spec.
#[derive(Debug, Default)]
pub(crate) struct Zygotes {
    slots: Mutex<HashMap<ZygoteSpec, Arc<Mutex<Slot>>>>,
}

#[derive(Debug, Default)]
struct Slot {
    running: Option<Zygote>,
    failed_starts: u32,
    last_error: Option<String>,
}

#[derive(Debug)]
struct Zygote {
    child: std::process::Child,
    control: OwnedFd,
}

impl Drop for Zygote {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let mut held = held();
        let _ = self.child.wait();
        held.remove(self.child.id());
    }
}

/// What the platform's zygotes are doing, for its banner and the benchmarks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZygoteState {
    /// The zygote's pid, while one runs.
    pub pid: Option<u32>,
    /// How many times in a row it failed to start, and the last failure.
    pub failed_starts: u32,
    /// The last failure.
    pub last_error: Option<String>,
}

impl Supervisor {
    /// Starts `spec` as the instance `prepared` by forking it from the zygote `zygote` (started first if
    /// none runs). The child joins the instance's cgroup and its init's namespaces ([`crate::init::enter`])
    /// before it forks the instance, so a forked instance lives in the same world as a spawned one. Refused,
    /// with the spec and the prepared instance handed back, when nothing would kill what a forked instance
    /// starts (no PID namespace and no memory cgroup), or no zygote can be had: the caller then spawns it.
    pub async fn fork(
        &self,
        zygote: &ZygoteSpec,
        spec: SpawnSpec,
        prepared: Prepared,
    ) -> Result<Forked, SpawnError> {
        if !prepared.shell.want.pid && prepared.shell.cgroup.is_none() {
            return Ok(Forked::Refused {
                why: "without a PID namespace or a memory cgroup, what a forked instance starts could outlive it"
                    .to_owned(),
                spec,
                prepared: Box::new(prepared),
            });
        }
        let slot = self.inner.zygotes.slot(zygote);
        if slot_lock(&slot).failed_starts >= MAX_FAILED_STARTS {
            let why = slot_lock(&slot).last_error.clone().unwrap_or_default();
            return Ok(Forked::Refused {
                why: format!("the zygote failed to start {MAX_FAILED_STARTS} times: {why}"),
                spec,
                prepared: Box::new(prepared),
            });
        }
        let env = crate::env::instance_environment(std::env::vars_os(), &spec.env);
        let init_pid = prepared.shell.want.pid.then_some(prepared.shell.pid);
        let message = request(&spec, &env, prepared.shell.cgroup.is_some(), init_pid);
        if message.len() > MAX_REQUEST {
            return Ok(Forked::Refused {
                why: "the instance's environment is too large for a zygote's request".to_owned(),
                spec,
                prepared: Box::new(prepared),
            });
        }
        // The init makes the instance's world as for a spawn (what it must see of the machine's /tmp, what it
        // must not see of the machine) while the zygote forks: the instance waits for the init's word on the
        // `go` pipe before it enters that world (`scf-shim`'s `zygote`).
        let go = if prepared.shell.want.pid {
            Some(crate::init::pipe().map_err(SpawnError::Output)?)
        } else {
            None
        };
        let (go_read, go_write) = go.unzip();
        let (write, output) = crate::output::pipe().map_err(SpawnError::Output)?;
        let procs = match prepared.shell.cgroup.as_ref() {
            Some(c) => Some(dup(c.procs_fd()).map_err(SpawnError::Output)?),
            None => None,
        };
        let zspec = zygote.clone();
        let forking = tokio::task::spawn_blocking(move || {
            let mut fds = vec![write.as_raw_fd()];
            fds.extend(procs.as_ref().map(AsRawFd::as_raw_fd));
            fds.extend(go_read.as_ref().map(AsRawFd::as_raw_fd));
            // Closed once the zygote has its copies.
            let _kept = (write, procs, go_read);
            let mut slot = slot_lock(&slot);
            let mut tries = 0;
            loop {
                tries += 1;
                if slot.running.as_mut().is_none_or(|z| !z.alive()) {
                    slot.running = None;
                    match Zygote::start(&zspec) {
                        Ok(z) => {
                            slot.running = Some(z);
                            slot.failed_starts = 0;
                        }
                        Err(why) => {
                            slot.failed_starts += 1;
                            slot.last_error = Some(why.clone());
                            return Err(why);
                        }
                    }
                    start_reaper();
                }
                let Some(z) = slot.running.as_ref() else {
                    return Err("no zygote".to_owned());
                };
                // The instance is the platform's child before the answer comes: hold its pid from then on.
                let held = held();
                match z.fork(&message, &fds) {
                    Ok(pid) => {
                        let mut held = held;
                        held.insert(pid);
                        drop(held);
                        return Ok(pid);
                    }
                    Err(Failure::Refused(why)) => return Err(why),
                    // The zygote died or hangs: replace it and ask the new one, once.
                    Err(Failure::Channel(why)) => {
                        drop(held);
                        slot.running = None;
                        if tries >= 2 {
                            return Err(why);
                        }
                    }
                }
            }
        });
        let expect = async {
            let Some(go_write) = go_write else {
                return Ok(());
            };
            let mut parts = vec![spec.cwd.as_os_str().as_bytes().to_vec()];
            parts.extend(crate::process::world_parts(&spec).await);
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            // The test switch: a request the init does not serve, with the `go` pipe, which it refuses.
            let op = if fail_next_expect() {
                Op::Ready
            } else {
                Op::Expect
            };
            let reply = prepared
                .control
                .call(op, &refs, Some(go_write.as_raw_fd()))
                .await;
            // The init has its copy (or failed): the zygote's child sees the pipe close if no word came.
            drop(go_write);
            let reply = reply.map_err(|e| SpawnError::Init(e.to_string()))?;
            if reply.op != Op::Ready {
                return Err(SpawnError::Init(reply.into_error().to_string()));
            }
            Ok(())
        };
        let (expected, forked) = tokio::join!(expect, forking);
        let forked = forked.map_err(|e| SpawnError::Output(std::io::Error::other(e)))?;
        if let Err(e) = expected {
            // The instance (if the zygote forked it) waits for a word that never comes and ends on its own;
            // nobody will hold it, so it is killed and reaped here.
            if let Ok(pid) = forked {
                let _ = tokio::task::spawn_blocking(move || discard(pid)).await;
            }
            return Err(e);
        }
        match forked {
            Ok(pid) => {
                let leader = crate::process::pidfd_open(pid)
                    .map_or(Leader::Pid(pid as i32), |fd| Leader::Pidfd(Arc::new(fd)));
                self.holding(prepared, pid, Arc::new(leader), true, None, output)
                    .map(Forked::Started)
            }
            Err(why) => Ok(Forked::Refused {
                why,
                spec,
                prepared: Box::new(prepared),
            }),
        }
    }

    /// The pids of the zygotes running now.
    pub fn zygote_pids(&self) -> Vec<u32> {
        let slots: Vec<Arc<Mutex<Slot>>> = self
            .inner
            .zygotes
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        slots
            .iter()
            .filter_map(|s| {
                slot_lock(s)
                    .running
                    .as_mut()
                    .and_then(|z| z.alive().then(|| z.child.id()))
            })
            .collect()
    }

    /// The state of the zygote of `spec` (none if it was never asked for).
    pub fn zygote_state(&self, spec: &ZygoteSpec) -> Option<ZygoteState> {
        let slots = self
            .inner
            .zygotes
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = slots.get(spec)?;
        let mut slot = slot_lock(slot);
        let pid = slot
            .running
            .as_mut()
            .and_then(|z| z.alive().then(|| z.child.id()));
        Some(ZygoteState {
            pid,
            failed_starts: slot.failed_starts,
            last_error: slot.last_error.clone(),
        })
    }
}

/// For the tests of a failed `Expect` only (no configuration reaches it, and nothing else in the platform
/// reads it): when the platform starts with this variable set, the first instance it forks gets a request
/// its init refuses in place of its `Expect`, so that the init reports an error and the instance, which the
/// zygote forked already, never gets its `go` byte. A legitimate `Expect` cannot be made to fail from a
/// function's configuration: what the init binds is what exists (a missing path is skipped) and what it
/// covers it covers with a fresh `tmpfs` or `/dev/null`.
pub(crate) const FAIL_FIRST_EXPECT_ENV: &str = "_SCF_TEST_FAIL_FIRST_EXPECT";

/// Whether this `Expect` is the one [`FAIL_FIRST_EXPECT_ENV`] makes fail (true once at most).
fn fail_next_expect() -> bool {
    static ARMED: OnceLock<AtomicBool> = OnceLock::new();
    ARMED
        .get_or_init(|| AtomicBool::new(std::env::var_os(FAIL_FIRST_EXPECT_ENV).is_some()))
        .swap(false, Ordering::Relaxed)
}

/// Kills and reaps a forked instance nobody will hold (a child of ours, registered in [`held`]). Blocking.
fn discard(pid: u32) {
    let mut held = held();
    // SAFETY: kill(2) and waitpid(2) of our own child, which is unreaped (held), so its pid is not reused.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
        let mut status = 0;
        while libc::waitpid(pid as i32, &mut status, 0) < 0
            && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {}
    }
    held.remove(pid);
}

/// A second descriptor of `fd` (close-on-exec).
fn dup(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: `fd` is open (borrowed from its owner for this call); the new descriptor is ours alone.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn slot_lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Zygotes {
    fn slot(&self, spec: &ZygoteSpec) -> Arc<Mutex<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(spec.clone())
            .or_default()
            .clone()
    }
}

/// The request's bytes: `<cwd>\0<start_ns>\0<cgroup 0|1>\0<init pid, or 0>\0K=V\0…`.
fn request(
    spec: &SpawnSpec,
    env: &[(String, String)],
    cgroup: bool,
    init_pid: Option<u32>,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(4096);
    m.extend_from_slice(spec.cwd.as_os_str().as_bytes());
    m.push(0);
    m.extend_from_slice(monotonic_ns().to_string().as_bytes());
    m.push(0);
    m.push(if cgroup { b'1' } else { b'0' });
    m.push(0);
    m.extend_from_slice(init_pid.unwrap_or(0).to_string().as_bytes());
    for (k, v) in env {
        m.push(0);
        m.extend_from_slice(k.as_bytes());
        m.push(b'=');
        m.extend_from_slice(v.as_bytes());
    }
    m
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) fills our timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

enum Failure {
    /// The zygote answered that it cannot fork this one.
    Refused(String),
    /// The channel failed: the zygote is dead or stuck.
    Channel(String),
}

impl Zygote {
    /// Starts a zygote and waits for its `hello`. Blocking.
    fn start(spec: &ZygoteSpec) -> Result<Zygote, String> {
        use std::os::unix::process::CommandExt as _;
        let (ours, theirs) = crate::control::pair().map_err(|e| format!("control socket: {e}"))?;
        let theirs_fd = theirs.as_raw_fd();
        let mut cmd = std::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .current_dir("/")
            .env_clear()
            .envs(crate::env::instance_environment(
                std::env::vars_os(),
                &spec.env,
            ))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .process_group(0);
        // SAFETY: the closure runs in the child before exec and only calls dup2(2), which is
        // async-signal-safe; `theirs_fd` is open in the parent until spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(theirs_fd, CONTROL_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let guard = held();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", spec.program.display()))?;
        let mut guard = guard;
        guard.insert(child.id());
        drop(guard);
        drop(theirs);
        set_timeout(&ours, HELLO_WITHIN);
        let mut zygote = Zygote {
            child,
            control: ours,
        };
        match recv(&zygote.control) {
            Ok(m) if m.starts_with(b"hello ") => Ok(zygote),
            Ok(m) => Err(format!(
                "the zygote said {:?} instead of hello",
                String::from_utf8_lossy(&m)
            )),
            Err(e) => {
                let _ = zygote.child.kill();
                let _ = zygote.child.wait();
                let mut said = String::new();
                if let Some(err) = zygote.child.stderr.take() {
                    let _ = err.take(4096).read_to_string(&mut said);
                }
                Err(format!(
                    "the zygote did not start ({e}){}{}",
                    if said.trim().is_empty() { "" } else { ": " },
                    said.trim()
                ))
            }
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks for one instance; its pid. Blocking.
    fn fork(&self, message: &[u8], fds: &[RawFd]) -> Result<u32, Failure> {
        set_timeout(&self.control, REPLY_WITHIN);
        send_with_fds(&self.control, message, fds)
            .map_err(|e| Failure::Channel(format!("sending to the zygote: {e}")))?;
        let reply = recv(&self.control)
            .map_err(|e| Failure::Channel(format!("the zygote's answer: {e}")))?;
        let reply = String::from_utf8_lossy(&reply);
        if let Some(pid) = reply.strip_prefix("ok ") {
            return pid
                .trim()
                .parse()
                .map_err(|_| Failure::Channel(format!("the zygote answered {reply:?}")));
        }
        Err(Failure::Refused(
            reply.strip_prefix("err ").unwrap_or(&reply).to_owned(),
        ))
    }
}

fn set_timeout(fd: &OwnedFd, within: Duration) {
    let tv = libc::timeval {
        tv_sec: within.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: setsockopt(2) reads the timeval we pass for its size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
}

fn recv(fd: &OwnedFd) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 8192];
    loop {
        // SAFETY: recv(2) writes at most buf.len() bytes into `buf`.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n > 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the zygote closed its channel",
            ));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn send_with_fds(fd: &OwnedFd, bytes: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    let size = std::mem::size_of_val(fds) as u32;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(size) } as usize;
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    // SAFETY: msghdr is plain data; all zeroes is a valid empty header, filled in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer has room for one header with `fds`; sendmsg(2) only reads the buffers.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size) as _;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr(),
            libc::CMSG_DATA(cmsg).cast::<RawFd>(),
            fds.len(),
        );
        if libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The leaders the platform holds (spawned or forked instances, zygotes): the orphan reaper leaves them to
/// their owners. Spawns take the lock across the fork, so no leader can be reaped before it is registered.
static HELD: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

/// The held set, locked.
pub(crate) struct Held(MutexGuard<'static, Option<HashSet<u32>>>);

impl Held {
    pub(crate) fn insert(&mut self, pid: u32) {
        self.0.get_or_insert_with(HashSet::new).insert(pid);
    }

    /// `pid` was reaped (under this lock): it is no longer held.
    pub(crate) fn remove(&mut self, pid: u32) {
        if let Some(set) = self.0.as_mut() {
            set.remove(&pid);
        }
    }
}

/// Locks the held set (around a fork, until the new leader is inserted).
pub(crate) fn held() -> Held {
    Held(
        HELD.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

/// Makes the platform a child subreaper and starts the orphan reaper (once per process).
fn start_reaper() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        // SAFETY: prctl(2) PR_SET_CHILD_SUBREAPER with a flag argument; no memory involved.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let run = async {
            let Ok(mut sigchld) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
            else {
                return;
            };
            while sigchld.recv().await.is_some() {
                let _ = tokio::task::spawn_blocking(reap_orphans).await;
            }
        };
        // Called from the blocking pool: the runtime that owns it runs the reaper.
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            drop(h.spawn(run));
        }
    });
}

/// Reaps every zombie child that nobody else will: not a held leader, not in the platform's process group.
fn reap_orphans() {
    // SAFETY: getpgrp(2) has no preconditions.
    let own_group = unsafe { libc::getpgrp() };
    let me = std::process::id().to_string();
    let children = crate::init::children_of_self();
    let held = held();
    for pid in children.into_iter().filter_map(|p| u32::try_from(p).ok()) {
        if held.0.as_ref().is_some_and(|s| s.contains(&pid)) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        // After the command: state, ppid, pgrp, …
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let zombie = fields.first() == Some(&"Z");
        let ours = fields.get(1) == Some(&me.as_str());
        let group = fields.get(2).and_then(|g| g.parse::<i32>().ok());
        if zombie && ours && group != Some(own_group) {
            let mut status = 0;
            // SAFETY: waitpid(2) of a zombie child of ours that no owner holds.
            unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
        }
    }
}
