//! `scf-supervisor`: one function instance's process, whatever it runs (`scf-shim`, a custom runtime, a web
//! server, an image's command), and everything the platform does to it that is not HTTP or the runtime
//! API:
//!
//! - its **init** ([`init`]), started ahead in its memory cgroup and, where the machine allows it, in its own
//!   PID, mount and IPC namespaces (a private `/proc`, its own 512 MB `/tmp`) and, for an instance that asks
//!   ([`Network::Own`]), a network namespace with only its loopback:
//!   the supervisor keeps a few ready ([`Supervisor::keep_ready`]), so a cold start pays none of it;
//! - the spawn, by that init, with an environment built from nothing ([`mod@env`]), in its own process group,
//!   with stdout and stderr on one pipe ([`Output`]), as a [`SpawnSpec`] says; or the fork of a Python
//!   instance by a zygote ([`Supervisor::fork`]), whose child joins that init's cgroup and namespaces
//!   ([`init::enter`]);
//! - listeners and connections inside the instance's network ([`Prepared::listen_tcp`],
//!   [`Prepared::listen_unix`], [`Process::connect`]), and who a connecting process is ([`Owner`]);
//! - exit detection without polling (a pidfd where the kernel has them), and the one text describing an
//!   exit ([`Exit::describe`]);
//! - memory by one method ([`MemoryMode`]): a memory cgroup per instance where the machine allows it (the
//!   kernel enforces the size), else the instance's processes' resident memory, sampled while it works;
//! - teardown that kills everything the instance started (its PID namespace, its cgroup, its process group,
//!   or its init as a subreaper), reaps it and removes what it had ([`Process::stop`]).
//!
//! A [`Supervisor`] probes once what the machine allows and says it ([`Supervisor::describe`]).

mod control;
mod dir;
pub mod env;
mod exit;
pub mod init;
mod memory;
mod netns;
mod output;
mod peer;
mod process;
mod shell;
mod zygote;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

pub use exit::{Exit, ExitHow};
pub use init::INIT_ARG;
pub use memory::{MemoryMode, own_memory_limit};
pub use netns::NetMode;
pub use output::Output;
pub use process::{Owner, Prepared, Process, Work};
pub use zygote::{Forked, ZygoteSpec, ZygoteState};

/// The size of an instance's own `/tmp` (a `tmpfs`), as on the cloud.
pub const TMP_BYTES: u64 = 512 * 1024 * 1024;
/// The size of an instance's own `/dev/shm`.
pub const SHM_BYTES: u64 = 64 * 1024 * 1024;
/// How many inits a serving platform keeps ready per supervisor.
pub const READY_SHELLS: usize = 2;

/// What to start as an instance.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    /// The program (looked up on the instance's `PATH` when it has no `/`).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Its working directory (the function's code).
    pub cwd: PathBuf,
    /// The instance's own variables: the documented SCF ones and the function's. The supervisor adds the
    /// short allowlist of [`env::INHERITED`] and nothing else of the platform's environment.
    pub env: Vec<(String, String)>,
    /// Paths the instance needs to see even when they are in the machine's `/tmp`, which its own `/tmp`
    /// hides (the runtime's files, an interpreter): bound into its `/tmp` at the same places. Its working
    /// directory and its program are bound without being named here.
    pub visible: Vec<PathBuf>,
    /// Paths of the machine the instance must not see (the platform's data directory, its SecretKey file, other
    /// functions' code):
    /// in its mount namespace an empty read-only `tmpfs` covers each directory and `/dev/null` each file.
    /// One that holds the instance's working directory is left as it is. Canonical paths (the platform
    /// resolves them once, not per instance). Without a mount namespace, nothing is hidden.
    pub hidden: Vec<PathBuf>,
}

/// An instance's network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Network {
    /// The machine's network, as functions with public access have on the cloud: it reaches the internet;
    /// its runtime API admits only the instance's own processes ([`Owner`]).
    #[default]
    Shared,
    /// A network namespace of its own with only its loopback (a web function's port 9000; a function
    /// without public access), where the machine allows it ([`IsolationMode::network`]); else the
    /// machine's.
    Own,
}

/// What isolates instances on this machine, probed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolationMode {
    /// PID, mount and IPC namespaces of their own (a private `/proc`, `/tmp` and `/dev/shm`; everything
    /// an instance started dies with its init), or why not.
    pub pid_mount: Result<(), String>,
    /// A network namespace of their own (only a loopback interface; their runtime API and port 9000
    /// reachable from inside only), or why not.
    pub network: Result<(), String>,
    /// The namespaces are made inside a user namespace (the platform is not root).
    pub user_namespace: bool,
}

impl IsolationMode {
    /// One line for the banner, naming each protection on or off.
    pub fn describe(&self) -> String {
        let mut parts = vec!["environment built from nothing: on".to_owned()];
        parts.push(match &self.pid_mount {
            Ok(()) => format!(
                "PID, mount and IPC namespaces{}: on (a private /proc, its own {} MB /tmp and /dev/shm, the platform's data directory, SecretKey file and other functions' code hidden; everything an instance starts dies with it)",
                if self.user_namespace {
                    " (in a user namespace)"
                } else {
                    ""
                },
                TMP_BYTES / (1024 * 1024)
            ),
            Err(why) => format!(
                "PID and mount namespaces: off ({why}: instances see the machine's /proc and share its /tmp; TMPDIR is private, checked against {} MB after each invocation; their init, a subreaper, kills what they start)",
                TMP_BYTES / (1024 * 1024)
            ),
        });
        parts.push(match &self.network {
            Ok(()) => "network namespace: for web functions and functions with publicAccess: false (only their loopback: port 9000 and the runtime API reachable only from inside); the others share the machine's network, as on the cloud, and their runtime APIs admit only their own processes".to_owned(),
            Err(why) => format!(
                "network namespace: off ({why}: runtime APIs, Unix and TCP, admit only the instance's processes; web ports are reachable by other local processes)"
            ),
        });
        parts.push("debugged instances: without namespaces".to_owned());
        parts.join("; ")
    }
}

/// Why an instance could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The program could not be started.
    #[error("cannot start {}: {source}", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The private directory could not be made.
    #[error("the instance's directory: {0}")]
    Dir(std::io::Error),
    /// The output pipe could not be made.
    #[error("the instance's log pipe: {0}")]
    Output(std::io::Error),
    /// The instance's cgroup could not be made.
    #[error("the instance's memory cgroup: {0}")]
    Cgroup(std::io::Error),
    /// The instance's init could not be started, or failed.
    #[error("the instance's init: {0}")]
    Init(String),
}

#[derive(Debug)]
enum Memory {
    Cgroup(Arc<memory::CgroupRoot>),
    Sampled(memory::Sampler, String),
}

#[derive(Debug)]
struct Inner {
    work_dir: PathBuf,
    memory: Memory,
    shells: Arc<shell::Shells>,
    isolation: IsolationMode,
    net: NetMode,
    zygotes: zygote::Zygotes,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let shells = self.shells.clone();
        let root = match &self.memory {
            Memory::Cgroup(root) => Some(root.clone()),
            Memory::Sampled(..) => None,
        };
        off_loop(move || {
            shells.clear();
            if let Some(root) = root {
                root.remove();
            }
        });
    }
}

/// What the machine allows, probed once; starts instance processes.
#[derive(Debug, Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Supervisor {
    /// A supervisor making instance directories under `work_dir`, whose instances' init is `init` (a binary
    /// that runs [`init::main`] when its first argument is [`INIT_ARG`]: `scf-shim`). Probes memory cgroups
    /// (`SCF_LOCAL_CGROUP=off` turns them off) and namespaces (`SCF_LOCAL_NAMESPACES=off` turns them all
    /// off, `SCF_LOCAL_NETNS=off` the network one) by starting the first init. Blocking.
    pub fn new(work_dir: PathBuf, init: PathBuf) -> Result<Supervisor, SpawnError> {
        let memory = match memory::CgroupRoot::probe() {
            Ok(root) => Memory::Cgroup(Arc::new(root)),
            Err(why) => Memory::Sampled(memory::Sampler::start(), why),
        };
        Self::build(work_dir, init, memory)
    }

    /// A supervisor that measures memory by sampling even where cgroups are available (`why` is what
    /// [`Supervisor::describe`] says).
    pub fn without_cgroups(
        work_dir: PathBuf,
        init: PathBuf,
        why: &str,
    ) -> Result<Supervisor, SpawnError> {
        let memory = Memory::Sampled(memory::Sampler::start(), why.to_owned());
        Self::build(work_dir, init, memory)
    }

    fn build(work_dir: PathBuf, init: PathBuf, memory: Memory) -> Result<Supervisor, SpawnError> {
        let root = match &memory {
            Memory::Cgroup(root) => Some(root.clone()),
            Memory::Sampled(..) => None,
        };
        let (shells, isolation) = match shell::Shells::probe(init, root.clone()) {
            Ok(probed) => probed,
            Err(e) => {
                if let Some(root) = root {
                    root.remove();
                }
                return Err(e);
            }
        };
        let net = match &isolation.network {
            Ok(()) => NetMode::Namespace,
            Err(why) => NetMode::SharedPort(why.clone()),
        };
        Ok(Supervisor {
            inner: Arc::new(Inner {
                work_dir,
                memory,
                shells: Arc::new(shells),
                isolation,
                net,
                zygotes: zygote::Zygotes::default(),
            }),
        })
    }

    /// Keeps `n` inits ready (started ahead, refilled on the blocking pool): a cold start then takes one
    /// instead of paying for its cgroup and namespaces. `scf-local serve` keeps [`READY_SHELLS`]; a
    /// one-shot `invoke` none (its one instance takes the init the probe started).
    pub fn keep_ready(&self, n: usize) {
        self.inner.shells.keep_ready(n);
    }

    /// How instances' memory is measured and limited.
    pub fn memory_mode(&self) -> MemoryMode {
        match &self.inner.memory {
            Memory::Cgroup(root) => root.mode(),
            Memory::Sampled(_, why) => MemoryMode::ProcessGroup(why.clone()),
        }
    }

    /// What isolates instances.
    pub fn isolation(&self) -> &IsolationMode {
        &self.inner.isolation
    }

    /// Whether instances have their own network (and so their own port 9000).
    pub fn net_mode(&self) -> &NetMode {
        &self.inner.net
    }

    /// Lines for the platform's banner: what protects instances here.
    pub fn describe(&self) -> Vec<String> {
        vec![
            format!("memory: {}", self.memory_mode().describe()),
            format!("isolation: {}", self.inner.isolation.describe()),
            format!("web instances: {}", self.net_mode().describe()),
        ]
    }
}

/// Runs blocking `f` off the event loop when there is one (without waiting), else now.
pub(crate) fn off_loop(f: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            drop(h.spawn_blocking(f));
        }
        Err(_) => f(),
    }
}
