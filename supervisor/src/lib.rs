//! `scf-supervisor`: one function instance's process, whatever it runs (`scf-shim`, a custom runtime, a web
//! server, an image's command), and everything the platform does to it that is not HTTP or the runtime
//! API:
//!
//! - a private directory (mode 0700, with `tmp/`) and a memory cgroup, made ([`Supervisor::prepare`]) and
//!   removed off the event loop;
//! - the spawn, off the event loop, in its own process group, with stdout and stderr on one pipe
//!   ([`Output`]), as a [`SpawnSpec`] says: program, arguments, environment, and the [`Isolation`] it gets
//!   (today: its own network namespace, where the machine allows it);
//! - exit detection without polling (a pidfd where the kernel has them), and the one text describing an
//!   exit ([`Exit::describe`]);
//! - memory by one method ([`MemoryMode`]): a memory cgroup per instance where the machine allows it (the
//!   kernel enforces the size), else the process group's resident memory, sampled while the instance works;
//! - teardown that kills everything the instance started (its cgroup, its process group), reaps it and
//!   removes its directory ([`Process::stop`]).
//!
//! A [`Supervisor`] probes once what the machine allows and says it ([`Supervisor::describe`]).

mod dir;
pub mod env;
mod exit;
mod memory;
mod netns;
mod output;
mod process;
mod zygote;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

pub use exit::{Exit, ExitHow};
pub use memory::MemoryMode;
pub use netns::NetMode;
pub use output::Output;
pub use process::{Prepared, Process, Work};
pub use zygote::{Forked, ZygoteSpec, ZygoteState};

/// What to start as an instance, and how it is set apart from the rest of the machine.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Its working directory (the function's code).
    pub cwd: PathBuf,
    /// The instance's own variables: the documented SCF ones and the function's. Its environment is built
    /// from nothing: these, and the short allowlist of the platform's own in [`env::INHERITED`]
    /// ([`env::instance_environment`]); nothing else of the platform's environment reaches it.
    pub env: Vec<(String, String)>,
    /// How it is isolated.
    pub isolation: Isolation,
}

/// How an instance is set apart from the machine. This is the place isolation grows (more namespaces, an
/// environment built from nothing, private `/proc` and `/tmp`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Isolation {
    /// Its network.
    pub network: Network,
}

/// An instance's network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Network {
    /// The machine's network (and its loopback).
    #[default]
    Shared,
    /// Its own network namespace with only loopback up, where the machine allows it ([`NetMode`]);
    /// otherwise the machine's.
    Own,
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
    /// The instance's network namespace could not be joined.
    #[error("joining the instance's network namespace: {0}")]
    Namespace(std::io::Error),
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
    zygotes: zygote::Zygotes,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Memory::Cgroup(root) = &self.memory {
            root.remove();
        }
    }
}

/// What the machine allows, probed once; starts instance processes.
#[derive(Debug, Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Supervisor {
    /// A supervisor making instance directories under `work_dir`: probes memory cgroups
    /// (`SCF_LOCAL_CGROUP=off` turns them off) and network namespaces (`SCF_LOCAL_NETNS=off`).
    pub fn new(work_dir: PathBuf) -> Supervisor {
        let memory = match memory::CgroupRoot::probe() {
            Ok(root) => Memory::Cgroup(Arc::new(root)),
            Err(why) => Memory::Sampled(memory::Sampler::start(), why),
        };
        Supervisor {
            inner: Arc::new(Inner {
                work_dir,
                memory,
                zygotes: zygote::Zygotes::default(),
            }),
        }
    }

    /// A supervisor that measures memory by sampling process groups even where cgroups are available
    /// (`why` is what [`Supervisor::describe`] says).
    pub fn without_cgroups(work_dir: PathBuf, why: &str) -> Supervisor {
        Supervisor {
            inner: Arc::new(Inner {
                work_dir,
                memory: Memory::Sampled(memory::Sampler::start(), why.to_owned()),
                zygotes: zygote::Zygotes::default(),
            }),
        }
    }

    /// How instances' memory is measured and limited.
    pub fn memory_mode(&self) -> MemoryMode {
        match &self.inner.memory {
            Memory::Cgroup(root) => root.mode(),
            Memory::Sampled(_, why) => MemoryMode::ProcessGroup(why.clone()),
        }
    }

    /// Whether instances asking for their own network get it.
    pub fn net_mode(&self) -> &'static NetMode {
        netns::mode()
    }

    /// Lines for the platform's banner: what protects instances here.
    pub fn describe(&self) -> Vec<String> {
        let teardown = match self.memory_mode() {
            MemoryMode::CgroupV1 | MemoryMode::CgroupV2 => {
                "on (each instance's memory cgroup: a setsid() child dies with it too)".to_owned()
            }
            MemoryMode::ProcessGroup(why) => format!(
                "process group only ({why}: a child that calls setsid() outlives its instance)"
            ),
        };
        vec![
            format!("memory: {}", self.memory_mode().describe()),
            format!(
                "isolation: environment built from nothing: on; everything an instance starts dies with it: \
                 {teardown}; PID and mount namespaces (a private /proc and /tmp): off; runtime APIs \
                 reachable only from their instance: off (docs/reliability.md)"
            ),
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
