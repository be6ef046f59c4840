//! Instance shells: an instance's init ([`crate::init`]) started ahead of the cold start that will use it,
//! already in its own memory cgroup and namespaces, with its private `/proc`, `/tmp` and network, waiting on
//! its control channel. A cold start takes one and hands it the spawn: what isolation costs (the cgroup's
//! attach, which can wait for a kernel grace period; making namespaces and mounts; forking from the large
//! platform process) is paid before, off the event loop.
//!
//! [`Shells`] keeps up to [`Shells::keep_ready`] of them per supervisor, refilled on the blocking pool after
//! one is taken; when none is ready, a cold start starts one itself.
//!
//! The first shell is also the probe: the supervisor asks for the strongest isolation the machine may allow
//! (PID, mount, IPC and network namespaces; inside a user namespace when the platform is not root) and steps
//! down when the init says it could not (`SCF_LOCAL_NAMESPACES=off`, `SCF_LOCAL_NETNS=off` step down at
//! once).

use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::control::{self, Op};
use crate::init::{CONTROL_FD, INIT_ARG, Want};
use crate::memory::{Cgroup, CgroupRoot};
use crate::process::{Leader, pidfd_open};
use crate::{IsolationMode, Network, SpawnError};

/// How long an init may take to say it is ready.
const READY_LIMIT_MS: i32 = 30_000;

/// One started init, waiting.
#[derive(Debug)]
pub(crate) struct Shell {
    /// The init's (outer) process: the platform's child and its process group's leader.
    pub(crate) pid: u32,
    pub(crate) leader: Arc<Leader>,
    /// The platform's end of the control channel.
    pub(crate) ctl: Option<OwnedFd>,
    pub(crate) cgroup: Option<Cgroup>,
    /// The instance's PID namespace (`pid:[…]`), where it has one.
    pub(crate) pidns: Option<String>,
    pub(crate) want: Want,
    /// Its parts went to a [`crate::Process`] (or it was destroyed): dropping it does nothing more.
    pub(crate) handed_over: bool,
}

impl Drop for Shell {
    fn drop(&mut self) {
        if !self.handed_over {
            let mut rest = Shell {
                pid: self.pid,
                leader: self.leader.clone(),
                ctl: self.ctl.take(),
                cgroup: self.cgroup.take(),
                pidns: None,
                want: self.want,
                // Dropped unrun (a runtime shutting down drops blocking work it will not start), `rest` must
                // not come back here: its channel closes, which ends its init anyway.
                handed_over: true,
            };
            self.handed_over = true;
            crate::off_loop(move || rest.destroy_now());
        }
    }
}

impl Shell {
    /// Starts an init asked for `want`, in `cgroup`, and waits until it is ready. Blocking.
    fn start(init: &Path, want: Want, cgroup: Option<Cgroup>) -> Result<Shell, String> {
        use std::os::unix::process::CommandExt as _;
        let (platform_end, init_end) =
            control::pair().map_err(|e| format!("the init's channel: {e}"))?;
        let mut cmd = std::process::Command::new(init);
        cmd.arg(INIT_ARG)
            .arg(want.arg())
            .arg(crate::TMP_BYTES.to_string())
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0);
        let procs = cgroup.as_ref().map(Cgroup::procs_fd);
        let ctl = init_end.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec and makes only system calls (write(2) to
        // a descriptor opened before the fork, fcntl(2), dup2(2)), which are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = procs {
                    // "0": the writing process itself joins the instance's cgroup, before it can start others.
                    if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                let rc = if ctl == CONTROL_FD {
                    libc::fcntl(ctl, libc::F_SETFD, 0)
                } else {
                    libc::dup2(ctl, CONTROL_FD)
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // Held from the fork on, so the orphan reaper of a platform with zygotes leaves it to its owner.
        let mut held = crate::zygote::held();
        let child = cmd.spawn().map_err(|e| {
            format!(
                "cannot start {} as the instance's init: {e}",
                init.display()
            )
        });
        drop(cmd);
        drop(init_end);
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                if let Some(c) = &cgroup {
                    c.kill_and_remove();
                }
                return Err(e);
            }
        };
        let pid = child.id();
        held.insert(pid);
        drop(held);
        drop(child); // std's handle neither waits nor kills; the platform reaps the leader itself
        let leader =
            pidfd_open(pid).map_or(Leader::Pid(pid as i32), |fd| Leader::Pidfd(Arc::new(fd)));
        let mut shell = Shell {
            pid,
            leader: Arc::new(leader),
            ctl: Some(platform_end),
            cgroup,
            pidns: None,
            want,
            handed_over: false,
        };
        let ready = shell.wait_ready();
        match ready {
            Ok(()) => {
                if want.pid {
                    shell.pidns = std::fs::read_link(format!("/proc/{pid}/ns/pid_for_children"))
                        .ok()
                        .map(|p| p.to_string_lossy().into_owned());
                }
                Ok(shell)
            }
            Err(e) => {
                shell.destroy_now();
                Err(e)
            }
        }
    }

    fn wait_ready(&self) -> Result<(), String> {
        let Some(ctl) = &self.ctl else {
            return Err("no channel".into());
        };
        let fd = ctl.as_raw_fd();
        match control::wait_readable(fd, READY_LIMIT_MS) {
            Ok(true) => {}
            Ok(false) => return Err("the instance's init did not get ready".into()),
            Err(e) => return Err(format!("waiting for the instance's init: {e}")),
        }
        match control::recv(fd, 0) {
            Ok(Some(m)) if m.op == Op::Ready => Ok(()),
            Ok(Some(m)) if m.op == Op::Failed => Err(m.text(0)),
            Ok(Some(m)) => Err(format!("the instance's init said {:?}", m.op)),
            Ok(None) => Err(format!(
                "the instance's init ended at once ({})",
                self.leader
                    .wait(libc::WNOWAIT)
                    .map(|how| crate::Exit {
                        how,
                        memory_exceeded: false
                    }
                    .describe())
                    .unwrap_or_default()
            )),
            Err(e) => Err(format!("reading the instance's init: {e}")),
        }
    }

    /// Whether its init still runs (it waits in the pool).
    fn alive(&self) -> bool {
        self.leader.wait(libc::WNOWAIT | libc::WNOHANG).is_none()
    }

    /// Kills and reaps it and removes its cgroup, now. Blocking.
    pub(crate) fn destroy_now(&mut self) {
        self.ctl = None;
        // SAFETY: kill(2) of the group of the init, which is not reaped yet (so the id is still its).
        unsafe { libc::kill(-(self.pid as i32), libc::SIGKILL) };
        if let Some(c) = self.cgroup.take() {
            c.kill_and_remove();
        }
        reap(self.pid, &self.leader);
        self.handed_over = true;
    }
}

/// Waits for an init's outer process to end and reaps it; reaped and forgotten under one lock (the held set),
/// so that a new leader reusing the pid is registered after. Blocking.
pub(crate) fn reap(pid: u32, leader: &Leader) {
    let _ = leader.wait(libc::WNOWAIT); // until it has exited
    let mut held = crate::zygote::held();
    let _ = leader.wait(0);
    held.remove(pid);
}

/// The shells of one supervisor: one pool for instances on the machine's network and one for instances with
/// a network namespace of their own (where the machine allows one).
#[derive(Debug)]
pub(crate) struct Shells {
    init: PathBuf,
    cgroups: Option<Arc<CgroupRoot>>,
    shared: Pool,
    own: Option<Pool>,
}

/// Ready shells of one kind.
#[derive(Debug)]
struct Pool {
    want: Want,
    ready: Mutex<Vec<Shell>>,
    keep: AtomicUsize,
    filling: AtomicBool,
}

impl Pool {
    fn new(want: Want) -> Pool {
        Pool {
            want,
            ready: Mutex::new(Vec::new()),
            keep: AtomicUsize::new(0),
            filling: AtomicBool::new(false),
        }
    }
}

/// Numbers shells across every supervisor of the process: they share the process's cgroup directory.
static NEXT_SHELL: AtomicU64 = AtomicU64::new(0);

impl Shells {
    /// Probes what the machine allows by starting the first shell (kept, ready for the first cold start).
    /// Blocking.
    pub(crate) fn probe(
        init: PathBuf,
        cgroups: Option<Arc<CgroupRoot>>,
    ) -> Result<(Shells, IsolationMode), SpawnError> {
        let off = |var: &str| {
            std::env::var(var)
                .ok()
                .filter(|v| {
                    matches!(
                        v.to_ascii_lowercase().as_str(),
                        "0" | "off" | "no" | "false"
                    )
                })
                .map(|v| format!("{var}={v}"))
        };
        // SAFETY: geteuid has no preconditions.
        let user = unsafe { libc::geteuid() } != 0;
        let mut shells = Shells {
            init,
            cgroups,
            shared: Pool::new(Want::default()),
            own: None,
        };
        let mut mode = IsolationMode {
            pid_mount: Ok(()),
            network: Ok(()),
            user_namespace: false,
        };
        let no_ns = off("SCF_LOCAL_NAMESPACES");
        let no_net = off("SCF_LOCAL_NETNS").or_else(|| no_ns.clone());
        let mut tries = Vec::new();
        if no_ns.is_none() {
            if no_net.is_none() {
                tries.push(Want {
                    pid: true,
                    net: true,
                    user,
                });
            }
            tries.push(Want {
                pid: true,
                net: false,
                user,
            });
        }
        tries.push(Want::default());
        let mut last_error = String::new();
        for want in tries {
            match shells.start_one(want) {
                Ok(shell) => {
                    mode.user_namespace = want.user && want.pid;
                    if !want.pid {
                        mode.pid_mount = Err(no_ns.clone().unwrap_or_else(|| last_error.clone()));
                    }
                    if !want.net {
                        mode.network = Err(no_net.clone().unwrap_or_else(|| last_error.clone()));
                    }
                    shells.shared = Pool::new(Want { net: false, ..want });
                    let pool = if want.net {
                        shells.own.insert(Pool::new(want))
                    } else {
                        &shells.shared
                    };
                    if let Ok(mut ready) = pool.ready.lock() {
                        ready.push(shell);
                    }
                    return Ok((shells, mode));
                }
                Err(e) => {
                    if want.net {
                        // The network namespace may be what failed: keep its reason for the banner.
                        mode.network = Err(e.clone());
                    }
                    last_error = e;
                }
            }
        }
        Err(SpawnError::Init(last_error))
    }

    fn start_one(&self, want: Want) -> Result<Shell, String> {
        let n = NEXT_SHELL.fetch_add(1, Ordering::Relaxed);
        let cgroup = match &self.cgroups {
            Some(root) => Some(
                root.create(&format!("s{n}"))
                    .map_err(|e| format!("the instance's memory cgroup: {e}"))?,
            ),
            None => None,
        };
        Shell::start(&self.init, want, cgroup)
    }

    fn pool(&self, network: Network) -> &Pool {
        match (network, &self.own) {
            (Network::Own, Some(own)) => own,
            _ => &self.shared,
        }
    }

    /// Asks for `n` shells on the machine's network to be kept ready. Instances with a network of their
    /// own (web functions, functions without public access) are fewer: one of theirs is kept ready once
    /// one was asked for.
    pub(crate) fn keep_ready(self: &Arc<Self>, n: usize) {
        self.shared.keep.store(n, Ordering::SeqCst);
        self.refill(Network::Shared);
    }

    /// A shell for a cold start on `network`: a ready one, else one started now. Blocking.
    pub(crate) fn take(self: &Arc<Self>, network: Network) -> Result<Shell, SpawnError> {
        let pool = self.pool(network);
        if pool.want.net && self.shared.keep.load(Ordering::SeqCst) > 0 {
            pool.keep.store(1, Ordering::SeqCst);
        }
        loop {
            let pooled = pool.ready.lock().ok().and_then(|mut r| r.pop());
            match pooled {
                Some(shell) if shell.alive() => {
                    self.refill(network);
                    return Ok(shell);
                }
                Some(mut dead) => dead.destroy_now(),
                None => break,
            }
        }
        self.refill(network);
        self.start_one(pool.want).map_err(SpawnError::Init)
    }

    /// A shell without namespaces (the machine's network, `/proc` and `/tmp`), started now, for an instance
    /// that must be reached from the machine as it is (a debugged one: its debugger's port, its pid). Its
    /// init is still a subreaper in the instance's cgroup. Blocking.
    pub(crate) fn take_plain(self: &Arc<Self>) -> Result<Shell, SpawnError> {
        self.start_one(Want::default()).map_err(SpawnError::Init)
    }

    /// Starts shells on the blocking pool until the pool's count is ready (one filler at a time per pool).
    fn refill(self: &Arc<Self>, network: Network) {
        let pool = self.pool(network);
        if pool.keep.load(Ordering::SeqCst) == 0 || pool.filling.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = self.clone();
        crate::off_loop(move || {
            let pool = me.pool(network);
            loop {
                let have = pool.ready.lock().map(|r| r.len()).unwrap_or(usize::MAX);
                if have >= pool.keep.load(Ordering::SeqCst) {
                    break;
                }
                match me.start_one(pool.want) {
                    Ok(shell) => {
                        if let Ok(mut ready) = pool.ready.lock() {
                            ready.push(shell);
                        }
                    }
                    // The next cold start starts its own (and says why it cannot, if it cannot).
                    Err(_) => break,
                }
            }
            pool.filling.store(false, Ordering::SeqCst);
        });
    }

    /// Stops every waiting shell. Blocking.
    pub(crate) fn clear(&self) {
        for pool in std::iter::once(&self.shared).chain(self.own.as_ref()) {
            let shells = pool
                .ready
                .lock()
                .map(|mut r| std::mem::take(&mut *r))
                .unwrap_or_default();
            pool.keep.store(0, Ordering::SeqCst);
            for mut s in shells {
                s.destroy_now();
            }
        }
    }
}
