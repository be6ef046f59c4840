//! One instance of a function, whatever it runs: its supervised process ([`scf_supervisor::Process`]), how
//! the platform reaches it (its route: the runtime API for event functions, an HTTP port for web and
//! image-style ones), its cold start and its state. The cold start is the same sequence for every kind:
//!
//! - **PullCode**: the code is there, the instance's private directory is made, the kind prepares what the
//!   process needs (a runtime API listener, a port);
//! - **InitRuntime + InitFunction**: the process is spawned, then the kind waits until it is ready (its
//!   `init/ready`, its port accepting a connection), while the platform watches its exit and the init
//!   timeout.
//!
//! The platform enforces what an in-process host cannot: the execution timeout (kill, 433), the memory size
//! (434: the supervisor's one method), and the process's exit (439).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::path::PathBuf;

use scf_protocol::FunctionError;
use scf_supervisor::{
    Exit, Forked, Network, Prepared, Process, SpawnError, SpawnSpec, Supervisor, ZygoteSpec,
};

use crate::PlatformError;
use crate::config::FunctionConfig;
use crate::requestlog::ColdStart;

/// How long the platform waits for a dead instance's last output.
pub(crate) const LAST_WORDS: Duration = Duration::from_millis(200);

/// Where the platform finds its pieces, and what supervises its instances.
#[derive(Debug, Clone)]
pub struct Platform {
    /// The `scf-shim` binary (also every instance's init).
    pub(crate) shim: PathBuf,
    pub(crate) supervisor: Supervisor,
    /// Python instances are forked from a zygote (`docs/architecture.md`), or why not.
    pub(crate) zygote: Result<(), String>,
    /// The runtime's own files an instance must see even when they are in the machine's `/tmp` (which the
    /// instance's own `/tmp` hides): the installation (or checkout) `scf-shim` is part of, and the
    /// interpreters named by `SCF_PYTHON`, `SCF_NODE`, `SCF_NODE_BOOTSTRAP`.
    pub(crate) runtime_paths: Vec<PathBuf>,
    /// What no instance may see of the machine ([`Platform::hide`]).
    pub(crate) hidden_paths: Vec<PathBuf>,
    /// The code directories of the functions this platform serves: each instance sees its own only
    /// ([`Platform::hidden_for`]). Shared by every clone (each function's pool holds one).
    code_dirs: Arc<std::sync::RwLock<Vec<PathBuf>>>,
}

/// The directory a runtime file belongs to: `<prefix>` for `<prefix>/bin/<file>` (an installation, a
/// virtualenv), the checkout for a file in its `target/`, else the file's own directory.
fn runtime_root(file: &Path) -> Option<PathBuf> {
    let dir = file.parent()?;
    if dir.file_name().is_some_and(|n| n == "bin") {
        return dir.parent().map(Path::to_path_buf);
    }
    if let Some(target) = dir
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "target"))
    {
        return target.parent().map(Path::to_path_buf);
    }
    Some(dir.to_path_buf())
}

/// Whether a forked instance can be contained here: the zygote's child is not its init's, so only a PID
/// namespace or a memory cgroup makes everything it starts die with it.
fn forks_contained(supervisor: &Supervisor) -> Result<(), String> {
    let cgroups = matches!(
        supervisor.memory_mode(),
        scf_supervisor::MemoryMode::CgroupV1 | scf_supervisor::MemoryMode::CgroupV2
    );
    if supervisor.isolation().pid_mount.is_ok() || cgroups {
        Ok(())
    } else {
        Err(
            "neither PID namespaces nor memory cgroups here: what a forked instance started could \
             outlive it"
                .to_owned(),
        )
    }
}

/// A function variable naming standard modules its zygote pre-imports (`docs/python.md`).
pub use scf_shim::host::python::PREIMPORT_ENV as ZYGOTE_PREIMPORT_ENV;

/// Turns the Python zygote off (`off`, `0`, `no`, `false`); `scf-local --no-zygote` sets it.
pub const ZYGOTE_ENV: &str = "SCF_LOCAL_ZYGOTE";

impl Platform {
    /// `scf-shim` from `SCF_SHIM`, else beside the running executable; instances' directories under the
    /// system's temporary directory; memory cgroups and namespaces where the machine allows them (probed by
    /// starting the first instance's init: blocking).
    pub fn discover() -> Result<Platform, PlatformError> {
        let shim = Self::find_shim()?;
        let supervisor = Supervisor::new(std::env::temp_dir(), shim.clone()).map_err(|e| {
            PlatformError::Config(format!(
                "{e} ({} starts every instance: build it with `cargo build -p scf-shim`)",
                shim.display()
            ))
        })?;
        let mut runtime_paths: Vec<PathBuf> = runtime_root(&shim).into_iter().collect();
        for var in ["SCF_PYTHON", "SCF_NODE", "SCF_NODE_BOOTSTRAP"] {
            if let Some(p) = std::env::var_os(var).map(PathBuf::from)
                && p.is_absolute()
            {
                runtime_paths.extend(runtime_root(&p));
            }
        }
        Ok(Platform {
            shim,
            supervisor: supervisor.clone(),
            runtime_paths,
            hidden_paths: Vec::new(),
            code_dirs: Arc::default(),
            zygote: match std::env::var(ZYGOTE_ENV) {
                Ok(v)
                    if matches!(
                        v.to_ascii_lowercase().as_str(),
                        "0" | "off" | "no" | "false"
                    ) =>
                {
                    Err(format!("{ZYGOTE_ENV}={v}"))
                }
                _ => forks_contained(&supervisor),
            },
        })
    }

    /// The `scf-shim` binary: `SCF_SHIM`, else the one beside the running executable.
    pub fn find_shim() -> Result<PathBuf, PlatformError> {
        let shim = match std::env::var_os("SCF_SHIM") {
            Some(p) => PathBuf::from(p),
            None => std::env::current_exe()
                .map_err(PlatformError::io("locating scf-local"))?
                .with_file_name("scf-shim"),
        };
        if !shim.is_file() {
            return Err(PlatformError::Config(format!(
                "scf-shim not found at {} (build it with `cargo build -p scf-shim`, or set SCF_SHIM)",
                shim.display()
            )));
        }
        Ok(shim)
    }

    /// Turns the Python zygote on or off for the instances this platform starts from now on.
    pub fn set_zygote(&mut self, on: bool) {
        self.zygote = if on {
            forks_contained(&self.supervisor)
        } else {
            Err("turned off".to_owned())
        };
    }

    /// The pids of the Python zygotes running now (for the benchmarks' memory figures).
    pub fn zygote_pids(&self) -> Vec<u32> {
        self.supervisor.zygote_pids()
    }

    /// Hides `paths` from every instance started from now on (the data directory, the SecretKey file),
    /// where instances have a mount namespace of their own (`SpawnSpec::hidden`).
    pub fn hide(&mut self, paths: impl IntoIterator<Item = PathBuf>) {
        for p in paths {
            if let Ok(p) = p.canonicalize()
                && !self.hidden_paths.contains(&p)
            {
                self.hidden_paths.push(p);
            }
        }
    }

    /// Notes the code directory of a function served here: other functions' instances do not see it.
    pub(crate) fn serves_code(&self, dir: &Path) {
        if let Ok(mut dirs) = self.code_dirs.write()
            && !dirs.iter().any(|d| d == dir)
        {
            dirs.push(dir.to_path_buf());
        }
    }

    /// What an instance whose code is `own` must not see ([`SpawnSpec::hidden`]): the hidden paths, and the
    /// code directories of the other functions served here, except those that hold `own` or lie inside it
    /// (part of its own code, as its package would have them).
    pub(crate) fn hidden_for(&self, own: &Path) -> Vec<PathBuf> {
        let mut hidden = self.hidden_paths.clone();
        if let Ok(dirs) = self.code_dirs.read() {
            hidden.extend(
                dirs.iter()
                    .filter(|d| !own.starts_with(d) && !d.starts_with(own))
                    .cloned(),
            );
        }
        hidden
    }

    /// Keeps instance inits ready, so that cold starts do not pay for their cgroup and namespaces (what
    /// `scf-local serve` does; a one-shot `invoke` does not).
    pub fn keep_ready(&self) {
        self.supervisor.keep_ready(scf_supervisor::READY_SHELLS);
    }

    /// What protects instances on this machine, one line each (for the banner).
    pub fn describe(&self) -> Vec<String> {
        let mut lines = self.supervisor.describe();
        lines.push(match &self.zygote {
            Ok(()) => "python: instances fork from a zygote per interpreter (no user code in it), each into \
                       its init's cgroup and namespaces; debugged ones start the normal way"
                .to_owned(),
            Err(why) => format!("python: no zygote ({why}): every instance starts its interpreter"),
        });
        lines
    }

    /// The zygote a Python instance of `function` forks from, or `None` when it starts the normal way: the
    /// zygote is off, the program is not `scf-shim`, the host is not Python, or it runs under a debugger.
    fn zygote_for(&self, function: &FunctionConfig, spec: &SpawnSpec) -> Option<ZygoteSpec> {
        use scf_shim::host::{Kind, python};
        if self.zygote.is_err() || spec.program != self.shim || function.debug.is_some() {
            return None;
        }
        let kind = match function.runtime {
            crate::config::RuntimeKind::Python => Kind::Python,
            crate::config::RuntimeKind::Auto => Kind::detect(&function.code_dir, &function.handler),
            _ => return None,
        };
        if kind != Kind::Python {
            return None;
        }
        let env = scf_supervisor::env::instance_environment(std::env::vars_os(), &spec.env);
        let chosen = python::Interpreter::choose(
            env.iter()
                .find(|(k, _)| k == python::PYTHON_ENV)
                .map(|(_, v)| v.into()),
            &function.code_dir,
        );
        let mut own: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| python::shapes_interpreter(k) && k != python::PYTHON_ENV)
            .collect();
        own.push((
            python::PYTHON_ENV.to_owned(),
            chosen.program.to_string_lossy().into_owned(),
        ));
        own.sort();
        Some(ZygoteSpec {
            program: self.shim.clone(),
            args: vec![scf_shim::zygote::ZYGOTE_ARG.into()],
            env: own,
        })
    }

    /// Starts an instance's process: forked from its zygote when it has one that can, else spawned.
    async fn start_process(
        &self,
        function: &FunctionConfig,
        spec: SpawnSpec,
        prepared: Prepared,
    ) -> Result<Process, SpawnError> {
        if let Some(zygote) = self.zygote_for(function, &spec) {
            match self.supervisor.fork(&zygote, spec, prepared).await? {
                Forked::Started(p) => return Ok(p),
                Forked::Refused { spec, prepared, .. } => {
                    return self.supervisor.spawn(spec, *prepared).await;
                }
            }
        }
        self.supervisor.spawn(spec, prepared).await
    }
}

/// A failed start: the classified error and what the instance printed.
#[derive(Debug)]
pub struct StartFailure {
    /// Why the instance could not start.
    pub error: FunctionError,
    /// Its output.
    pub lines: Vec<String>,
    /// How far the cold start got.
    pub cold: ColdStart,
}

impl StartFailure {
    /// A start that failed before the instance printed anything.
    pub(crate) fn early(error: FunctionError, cold: ColdStart) -> StartFailure {
        StartFailure {
            error,
            lines: Vec::new(),
            cold,
        }
    }
}

/// A running instance, reached through its route `R`.
#[derive(Debug)]
pub struct Instance<R> {
    /// Unique id of the instance.
    pub(crate) id: String,
    pub(crate) process: Process,
    pub(crate) route: R,
    pub(crate) cold: ColdStart,
    pub(crate) ready_mem: u64,
    pub(crate) timeout: Duration,
    pub(crate) memory_mb: u32,
    /// Runs under a debugger: no execution timeout (`debug.rs`).
    pub(crate) debugged: bool,
    /// The platform killed it (or must): it takes nothing more, even before its exit is seen.
    retired: AtomicBool,
    /// The memory read for the last request's log, bytes, until the instance's idle event takes it
    /// ([`NO_READING`]): one counter read per invocation, not two.
    last_reading: AtomicU64,
}

/// No memory reading waits for the idle event.
const NO_READING: u64 = u64::MAX;

impl<R> Instance<R> {
    /// Whether it can take more work: the platform did not retire it and its process has not exited (a
    /// runtime may end itself while idle, e.g. after an uncaught error).
    pub fn is_usable(&self) -> bool {
        !self.retired.load(Ordering::SeqCst) && self.process.exit().is_none()
    }

    /// Its memory in use now, bytes, for a request's log; kept for the idle event that follows.
    pub(crate) fn memory_for_log(&self) -> u64 {
        let m = self.process.memory();
        self.last_reading.store(m, Ordering::Relaxed);
        m
    }

    /// Its memory in use, bytes, for the event that says it is idle: what its last request's log read, or
    /// read now if nothing was read since.
    pub(crate) fn memory_when_idle(&self) -> u64 {
        match self.last_reading.swap(NO_READING, Ordering::Relaxed) {
            NO_READING => self.process.memory(),
            m => m,
        }
    }

    /// Kills it: it takes nothing more; its exit follows.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        self.process.kill();
    }

    /// The instance's output since the last call; once it is gone, after waiting briefly for its last words.
    pub(crate) async fn lines(&self) -> Vec<String> {
        let gone = !self.is_usable();
        if gone {
            self.process.output().closed(LAST_WORDS).await;
        }
        self.process.output().take_lines(gone)
    }

    /// The error of work that ended because the process did: its memory, or its exit.
    pub(crate) fn died(&self, exit: &Exit) -> FunctionError {
        self.retired.store(true, Ordering::SeqCst);
        if exit.memory_exceeded {
            FunctionError::memory_limit(self.memory_mb)
        } else {
            FunctionError::process_exit(&exit.describe())
        }
    }

    /// The cold start's phases.
    pub fn cold_start(&self) -> ColdStart {
        self.cold
    }

    /// Memory in use when it became ready, bytes.
    pub fn ready_memory(&self) -> u64 {
        self.ready_mem
    }

    /// Its process's id (also its process group's).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The function's own process as the machine sees it, for reading its memory from `/proc` (in a PID
    /// namespace [`Instance::pid`] is its init's). Blocking.
    pub fn function_pid(&self) -> Option<u32> {
        self.process.function_pid()
    }

    /// Tears it down: everything it started, its directory.
    pub async fn stop(self) {
        self.process.stop().await;
    }
}

/// A cold start in progress: PullCode done.
pub(crate) struct Starting {
    pub(crate) id: String,
    /// The private directory and the memory cgroup.
    pub(crate) dir: Prepared,
    pub(crate) cold: ColdStart,
    t0: Instant,
}

/// What a kind says when its start fails.
pub(crate) struct StartErrors {
    /// The program could not be started.
    pub(crate) spawn: fn(SpawnError) -> FunctionError,
    /// The process exited before it was ready.
    pub(crate) exited: Box<dyn Fn(&Exit) -> FunctionError + Send + Sync>,
    /// It was not ready within the init timeout.
    pub(crate) timeout: Box<dyn Fn() -> FunctionError + Send + Sync>,
}

/// PullCode's common part: the code directory is there, the instance's init is ready (in its memory cgroup
/// and namespaces), its private directory made where it has no `/tmp` of its own.
pub(crate) async fn pull_code(
    platform: &Platform,
    function: &FunctionConfig,
    network: Network,
) -> Result<Starting, StartFailure> {
    let t0 = Instant::now();
    let cold = ColdStart::default();
    if let Some(error) = &function.code_error {
        // Code that could not be prepared (a crate that does not build): no instance can start.
        return Err(StartFailure::early(error.clone(), cold));
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let code_dir = function.code_dir.clone();
    if !tokio::task::spawn_blocking(move || code_dir.is_dir())
        .await
        .unwrap_or(false)
    {
        return Err(StartFailure::early(
            FunctionError::internal(format!(
                "code directory {} is missing",
                function.code_dir.display()
            )),
            cold,
        ));
    }
    // A debugged instance is reached from the machine (its debugger's port on its loopback, its pid for
    // gdb): it runs without namespaces (`docs/debugging.md`).
    let prepared = if function.debug.is_some() {
        platform
            .supervisor
            .prepare_without_namespaces(&id, function.memory_mb)
            .await
    } else {
        platform
            .supervisor
            .prepare(&id, function.memory_mb, network)
            .await
    };
    let dir =
        prepared.map_err(|e| StartFailure::early(FunctionError::internal(e.to_string()), cold))?;
    Ok(Starting { id, dir, cold, t0 })
}

/// Whether `path` is an executable file (off the event loop).
pub(crate) async fn executable(path: &Path) -> std::io::Result<bool> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::fs::metadata(&path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The rest of the cold start: spawns `spec` (InitRuntime starts), then waits for `ready`, watching the
/// process's exit and the init timeout. `ready` returns the instance's own InitFunction figure when it
/// reports one; otherwise everything from the spawn to ready is InitFunction after `init_runtime_ends`.
pub(crate) async fn spawn_and_wait<R, T, F>(
    platform: &Platform,
    function: &FunctionConfig,
    mut starting: Starting,
    spec: SpawnSpec,
    errors: StartErrors,
    route: impl FnOnce(&Process) -> R,
    ready: F,
) -> Result<(Instance<R>, T), StartFailure>
where
    F: AsyncFnOnce(&Process, &R) -> Result<(T, Readiness), FunctionError>,
{
    starting.cold.pull_code = starting.t0.elapsed();
    let spawned = Instant::now();
    let process = match platform.start_process(function, spec, starting.dir).await {
        Ok(p) => p,
        Err(e) => return Err(StartFailure::early((errors.spawn)(e), starting.cold)),
    };
    let route = route(&process);
    let init_timeout = function.init_timeout;
    let outcome = {
        let waiting = ready(&process, &route);
        tokio::select! {
            biased;
            r = waiting => r,
            exit = process.exited() => Err((errors.exited)(&exit)),
            _ = crate::debug::deadline(init_timeout, function.debug.is_some()) => Err((errors.timeout)()),
        }
    };
    let mut cold = starting.cold;
    match outcome {
        Ok((value, readiness)) => {
            let total = readiness.at.duration_since(spawned);
            match readiness.init_function {
                Some(f) => {
                    let f = f.min(total);
                    cold.init_function = f;
                    cold.init_runtime = total - f;
                }
                None => {
                    let runtime = readiness
                        .runtime_ended
                        .unwrap_or(spawned)
                        .duration_since(spawned);
                    cold.init_runtime = runtime.min(total);
                    cold.init_function = total - cold.init_runtime;
                }
            }
            let ready_mem = process.measure().await;
            Ok((
                Instance {
                    id: starting.id,
                    process,
                    route,
                    cold,
                    ready_mem,
                    timeout: function.timeout,
                    memory_mb: function.memory_mb,
                    debugged: function.debug.is_some(),
                    retired: AtomicBool::new(false),
                    last_reading: AtomicU64::new(NO_READING),
                },
                value,
            ))
        }
        Err(error) => {
            process.kill();
            process.output().closed(LAST_WORDS).await;
            let lines = process.output().take_lines(true);
            cold.init_runtime = spawned.elapsed();
            process.stop().await;
            Err(StartFailure { error, lines, cold })
        }
    }
}

/// When an instance became ready, and how its cold start splits.
pub(crate) struct Readiness {
    /// When it was ready.
    pub(crate) at: Instant,
    /// Its own InitFunction figure, if it reported one.
    pub(crate) init_function: Option<Duration>,
    /// When InitRuntime ended (the process ran), if the kind knows.
    pub(crate) runtime_ended: Option<Instant>,
}
