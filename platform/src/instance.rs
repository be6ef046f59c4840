//! One function instance: its process, its private directories, its init phases and its limits.
//!
//! The platform enforces what an in-process host cannot: the execution timeout (kill, 433), the memory
//! size (kill, 434, by watching the process's resident memory), and the process's exit (439).

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use scf_protocol::api::{Dialect, InvocationMeta, LambdaIdentity};
use scf_protocol::{ErrorKind, FunctionError, MAX_RESPONSE_BYTES};
use tokio::process::{Child, Command};

use crate::api::{Answer, ApiHandle, Listener, Ready};
use crate::config::{FunctionConfig, RuntimeKind};
use crate::logs::{self, Capture, ColdStart};

/// How often the instance's memory is sampled while it runs an invocation.
const MEMORY_SAMPLE: Duration = Duration::from_millis(10);
/// How long the platform waits for a dead instance's last output.
const LAST_WORDS: Duration = Duration::from_millis(200);

/// Where the platform finds its pieces.
#[derive(Debug, Clone)]
pub struct Platform {
    /// The `scf-shim` binary.
    pub shim: PathBuf,
    /// The directory instances' private directories are made in.
    pub work_dir: PathBuf,
}

impl Platform {
    /// `scf-shim` from `SCF_SHIM`, else beside the running executable; instances under the system temp dir.
    pub fn discover() -> Result<Platform, crate::PlatformError> {
        let shim = match std::env::var_os("SCF_SHIM") {
            Some(p) => PathBuf::from(p),
            None => std::env::current_exe()
                .map_err(crate::PlatformError::io("locating scf-local"))?
                .with_file_name("scf-shim"),
        };
        if !shim.is_file() {
            return Err(crate::PlatformError::Config(format!(
                "scf-shim not found at {} (build it with `cargo build -p scf-shim`, or set SCF_SHIM)",
                shim.display()
            )));
        }
        Ok(Platform {
            shim,
            work_dir: std::env::temp_dir(),
        })
    }
}

/// A private directory (mode 0700, with `tmp/` for the instance's temporary files) that is removed with
/// its instance.
#[derive(Debug)]
pub(crate) struct InstanceDir(pub(crate) PathBuf);

impl InstanceDir {
    pub(crate) fn create(parent: &Path, id: &str) -> std::io::Result<InstanceDir> {
        let dir = parent.join(format!("scf-instance-{id}"));
        std::fs::create_dir_all(dir.join("tmp"))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(InstanceDir(dir))
    }
}

impl Drop for InstanceDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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
    pub fn early(error: FunctionError, cold: ColdStart) -> StartFailure {
        StartFailure {
            error,
            lines: Vec::new(),
            cold,
        }
    }
}

/// The outcome of one invocation.
#[derive(Debug)]
pub struct Outcome {
    /// The body the caller gets: the result verbatim, or the error body.
    pub result: Result<Bytes, (ErrorKind, Bytes)>,
    /// What the function printed during it (and during init, on the first invocation).
    pub lines: Vec<String>,
    /// Wall time from dispatch to answer.
    pub duration: Duration,
    /// Resident memory of the instance at the end, bytes.
    pub mem_usage: u64,
    /// Whether the instance is gone (killed or exited) and must not be reused.
    pub instance_gone: bool,
}

/// A running instance.
#[derive(Debug)]
pub struct Instance {
    /// Unique id of the instance.
    pub id: String,
    child: Child,
    api: ApiHandle,
    capture: Capture,
    _dir: InstanceDir,
    memory_mb: u32,
    timeout: Duration,
    /// The cold start's phases.
    pub cold: ColdStart,
    /// Resident memory when it became ready, bytes.
    pub ready_mem: u64,
    gone: bool,
}

impl Instance {
    /// Starts an instance of `function` and waits until it is ready (or fails, or passes its init timeout).
    pub async fn start(
        platform: &Platform,
        function: &FunctionConfig,
    ) -> Result<Instance, StartFailure> {
        let fail = StartFailure::early;
        let t0 = Instant::now();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut cold = ColdStart::default();

        // PullCode: check the code and prepare the instance's private directories.
        if !function.code_dir.is_dir() {
            return Err(fail(
                FunctionError::internal(format!(
                    "code directory {} is missing",
                    function.code_dir.display()
                )),
                cold,
            ));
        }
        let dir = InstanceDir::create(&platform.work_dir, &id).map_err(|e| {
            fail(
                FunctionError::internal(format!("creating the instance directory: {e}")),
                cold,
            )
        })?;
        let program = match function.runtime {
            RuntimeKind::Custom if function.command.is_some() => PathBuf::from("/bin/sh"),
            RuntimeKind::Custom => {
                let bootstrap = function.code_dir.join("bootstrap");
                let executable = std::fs::metadata(&bootstrap)
                    .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
                match executable {
                    Ok(true) => bootstrap,
                    Ok(false) => {
                        return Err(fail(
                            FunctionError::new(
                                ErrorKind::InitError,
                                "bootstrap is not an executable file",
                                bootstrap.display().to_string(),
                            ),
                            cold,
                        ));
                    }
                    Err(e) => {
                        return Err(fail(
                            FunctionError::new(
                                ErrorKind::InitError,
                                "a custom runtime needs an executable file named bootstrap in the code directory",
                                format!("{}: {e}", bootstrap.display()),
                            ),
                            cold,
                        ));
                    }
                }
            }
            _ => platform.shim.clone(),
        };
        // Custom runtimes (a `bootstrap` may be a shell script using curl) and the Lambda dialect (whose
        // clients take host:port) are served on loopback TCP; everything else on the private Unix socket.
        let tcp = function.runtime == RuntimeKind::Custom || function.dialect == Dialect::Lambda;
        let listener = if tcp {
            Listener::tcp_loopback().await
        } else {
            Listener::unix(&dir.0.join("api.sock"))
        }
        .map_err(|e| fail(FunctionError::internal(e.to_string()), cold))?;
        let (api_host, api_port) = match listener.port() {
            Some(port) => ("127.0.0.1".to_owned(), port.to_string()),
            None => (
                format!("unix:{}", dir.0.join("api.sock").display()),
                String::new(),
            ),
        };
        let who = LambdaIdentity {
            function_name: function.name.clone(),
            region: function.region.clone(),
        };
        let mut api = ApiHandle::serve(listener, function.dialect, who);
        let (log_write, capture) =
            logs::pipe().map_err(|e| fail(FunctionError::internal(e.to_string()), cold))?;
        cold.pull_code = t0.elapsed();

        // InitRuntime + InitFunction: spawn, then wait for init/ready.
        let mut cmd = Command::new(&program);
        if let (RuntimeKind::Custom, Some(command)) = (function.runtime, &function.command) {
            // `exec`: the instance is the command itself, not a shell waiting for it (its memory, its exit).
            cmd.arg("-c").arg(format!("exec {command}"));
        }
        if function.dialect == Dialect::Lambda {
            cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{api_port}"))
                .env("AWS_LAMBDA_FUNCTION_NAME", &function.name)
                .env(
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                    function.memory_mb.to_string(),
                )
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_REGION", &function.region)
                .env("LAMBDA_TASK_ROOT", &function.code_dir)
                .env(
                    "AWS_LAMBDA_LOG_GROUP_NAME",
                    format!("/scf-local/{}", function.name),
                )
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "local");
        }
        cmd.current_dir(&function.code_dir)
            .env_remove(scf_shim_start_env())
            .env("_HANDLER", &function.handler)
            .env("SCF_RUNTIME", function.runtime.env_name())
            .envs(
                (function.dialect == Dialect::Scf)
                    .then_some([
                        ("SCF_RUNTIME_API", &api_host),
                        ("SCF_RUNTIME_API_PORT", &api_port),
                    ])
                    .into_iter()
                    .flatten(),
            )
            .envs(function.instance_env(&dir.0.join("tmp")))
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        logs::attach(&mut cmd, log_write)
            .map_err(|e| fail(FunctionError::internal(format!("log pipe: {e}")), cold))?;
        let spawned = Instant::now();
        let mut child = cmd.spawn().map_err(|e| {
            fail(
                FunctionError::new(
                    ErrorKind::InitError,
                    format!("cannot start {}: {e}", program.display()),
                    "",
                ),
                cold,
            )
        })?;
        drop(cmd); // closes our copies of the pipe's write end

        let exited = tokio::select! {
            ready = api.ready() => match ready {
                Some(Ready { init_error: Some(error), .. }) => Some(error),
                Some(r) => {
                    let total = r.at.duration_since(spawned);
                    let init_function = r.init_function.unwrap_or(total).min(total);
                    cold.init_function = init_function;
                    cold.init_runtime = total - init_function;
                    None
                }
                None => Some(FunctionError::internal("the runtime API server stopped")),
            },
            status = child.wait() => Some(FunctionError::process_exit(&format!(
                "the instance exited before it was ready ({})",
                describe_exit(status.ok())
            ))),
            _ = tokio::time::sleep(function.init_timeout) => Some(FunctionError::new(
                ErrorKind::InitTimeout,
                format!("InitContainerTimeout: the instance was not ready within {} seconds", secs(function.init_timeout)),
                "",
            )),
        };
        if let Some(error) = exited {
            kill_group(&mut child).await;
            capture.wait_closed(LAST_WORDS).await;
            cold.init_runtime = spawned.elapsed();
            return Err(StartFailure {
                error,
                lines: capture.take_lines(true),
                cold,
            });
        }
        let ready_mem = child.id().map(rss_bytes).unwrap_or(0);
        Ok(Instance {
            id,
            child,
            api,
            capture,
            _dir: dir,
            memory_mb: function.memory_mb,
            timeout: function.timeout,
            cold,
            ready_mem,
            gone: false,
        })
    }

    /// The instance process's id (also its process group's).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the instance can take another invocation: it was not killed, and its process has not exited
    /// since its last invocation (a runtime may end itself while idle, e.g. after an uncaught error).
    pub fn is_usable(&mut self) -> bool {
        if !self.gone && matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
            self.gone = true;
        }
        !self.gone
    }

    /// Runs one invocation on this instance.
    pub async fn invoke(&mut self, request_id: &str, event: Bytes, asynchronous: bool) -> Outcome {
        let started = Instant::now();
        let meta = InvocationMeta {
            request_id: request_id.to_owned(),
            memory_limit_in_mb: self.memory_mb,
            time_limit_in_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let platform_error = |e: FunctionError| Err((e.kind, Bytes::from(e.to_body(request_id))));
        let Some(mut reply) = self.api.dispatch(meta, event).await else {
            self.gone = true;
            return self.outcome(
                started,
                platform_error(FunctionError::internal("the instance's API is closed")),
                true,
            );
        };
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        // The first sample after one period (an interval's first tick is immediate: a wasted /proc read on
        // every invocation).
        let mut sampler =
            tokio::time::interval_at(tokio::time::Instant::now() + MEMORY_SAMPLE, MEMORY_SAMPLE);
        let limit = u64::from(self.memory_mb) * 1024 * 1024;
        let pid = self.child.id();
        let result = loop {
            tokio::select! {
                biased;
                answer = &mut reply => break match answer {
                    Ok(Answer::Response(body)) if body.len() > MAX_RESPONSE_BYTES => {
                        platform_error(FunctionError::response_too_large(body.len()))
                    }
                    Ok(Answer::Response(body)) => Ok(body),
                    Ok(Answer::Error(body)) => Err(error_body(request_id, body)),
                    Err(_) => platform_error(FunctionError::internal("the instance dropped the invocation")),
                },
                status = self.child.wait() => {
                    // A result posted just before the exit still counts.
                    if let Ok(answer) = reply.try_recv() {
                        self.gone = true;
                        break match answer {
                            Answer::Response(body) => Ok(body),
                            Answer::Error(body) => Err(error_body(request_id, body)),
                        };
                    }
                    self.gone = true;
                    break platform_error(FunctionError::process_exit(&describe_exit(status.ok())));
                },
                _ = &mut deadline => {
                    kill_group(&mut self.child).await;
                    self.gone = true;
                    break platform_error(FunctionError::timeout(self.timeout.as_secs_f64(), asynchronous));
                },
                _ = sampler.tick() => {
                    if pid.map(rss_bytes).unwrap_or(0) > limit {
                        kill_group(&mut self.child).await;
                        self.gone = true;
                        break platform_error(FunctionError::memory_limit(self.memory_mb));
                    }
                },
            }
        };
        let gone = self.gone;
        self.outcome(started, result, gone)
    }

    fn outcome(
        &mut self,
        started: Instant,
        result: Result<Bytes, (ErrorKind, Bytes)>,
        gone: bool,
    ) -> Outcome {
        let duration = started.elapsed();
        let mem_usage = self.child.id().map(rss_bytes).unwrap_or(0);
        Outcome {
            result,
            lines: Vec::new(),
            duration,
            mem_usage,
            instance_gone: gone,
        }
    }

    /// The function's output since the last call; after the instance is gone, waits briefly for its last words.
    pub async fn take_lines(&mut self) -> Vec<String> {
        if self.gone {
            self.capture.wait_closed(LAST_WORDS).await;
        }
        self.capture.take_lines(true)
    }

    /// Stops the instance (its whole process group) and waits for it.
    pub async fn stop(mut self) {
        kill_group(&mut self.child).await;
    }
}

fn scf_shim_start_env() -> &'static str {
    "_SCF_SHIM_START_NS"
}

/// The caller-visible body for an error the instance posted: the canonical body as it sent it, or, for a
/// runtime that posts something else (a custom `bootstrap`), that text wrapped as an unhandled user error.
fn error_body(request_id: &str, body: Bytes) -> (ErrorKind, Bytes) {
    match FunctionError::from_body(&body) {
        Some((e, _)) => (e.kind, body),
        None => {
            let e = FunctionError::user(
                ErrorKind::UnhandledError,
                String::from_utf8_lossy(&body).into_owned(),
            );
            (e.kind, Bytes::from(e.to_body(request_id)))
        }
    }
}

async fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a negative pid signals the process group the child leads (spawned with
        // process_group(0)); no memory is involved.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let _ = child.kill().await;
}

fn describe_exit(status: Option<std::process::ExitStatus>) -> String {
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}{}", signal_name(sig)),
            _ => "exited".to_owned(),
        },
        None => "exited".to_owned(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGBUS => " (SIGBUS)",
        _ => "",
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}

/// Resident memory of `pid`, bytes (0 when it cannot be read). Reads `/proc/PID/statm`, which the kernel
/// renders far faster than `status` (this runs on every invocation and every memory sample).
pub fn rss_bytes(pid: u32) -> u64 {
    let Ok(statm) = std::fs::read_to_string(format!("/proc/{pid}/statm")) else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * page_size()
}

fn page_size() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; it only reads a system constant.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
    })
}
