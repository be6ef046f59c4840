//! Event functions: the instance is `scf-shim` (or a custom runtime: the code's `bootstrap`, or a command)
//! pulling one invocation at a time from its runtime API ([`scf_runtime_api`]), served on an abstract Unix
//! socket made inside the instance's network namespace (or TCP, `127.0.0.1:9001` inside it, for custom
//! runtimes and the Lambda dialect).
//!
//! An invocation the instance never pulled (it exited before its `next` took the event) was never
//! delivered: the pool runs it on a fresh instance instead of answering 439.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use scf_protocol::api::{Dialect, InvocationMeta, LambdaIdentity};
use scf_protocol::{ErrorKind, FunctionError, MAX_RESPONSE_BYTES};
use scf_runtime_api::{Admit, Answer, ApiHandle, Listener, Peer};
use scf_store::now_ms;
use scf_supervisor::{Network, SpawnError, SpawnSpec};
use tokio::sync::OwnedSemaphorePermit;

use crate::config::{FunctionConfig, RuntimeKind};
use crate::instance::Platform;
use crate::instance::{self, Instance, Readiness, StartErrors, StartFailure};
use crate::pool::{Closing, Finished, Pool, Route, Source};

/// The runtime API's port for custom runtimes and the Lambda dialect, inside the instance's network
/// namespace (as on the cloud).
pub const RUNTIME_API_PORT: u16 = 9001;

/// How the platform reaches an event instance: its runtime API.
#[derive(Debug)]
pub struct EventRoute {
    api: ApiHandle,
}

/// A running instance of an event function.
pub type EventInstance = Instance<EventRoute>;

/// The instances of an event function.
pub type EventPool = Pool<EventRoute>;

/// The outcome of one invocation on an instance.
#[derive(Debug)]
pub struct Outcome {
    /// The body the caller gets: the result verbatim, or the error's kind and body.
    pub result: Result<Bytes, (ErrorKind, Bytes)>,
    /// What the function printed during it (and during init, on the first invocation).
    pub lines: Vec<String>,
    /// Wall time from dispatch to answer.
    pub duration: Duration,
    /// Memory of the instance at the end, bytes.
    pub mem_usage: u64,
    /// Whether the instance is gone (killed or exited) and must not be reused.
    pub instance_gone: bool,
    /// Whether the instance took the invocation (`false`: it exited before its `next` pulled it).
    pub delivered: bool,
}

impl Route for EventRoute {
    fn capacity(_config: &FunctionConfig) -> usize {
        1
    }

    async fn start(
        platform: &Platform,
        function: &FunctionConfig,
    ) -> Result<Instance<EventRoute>, StartFailure> {
        EventInstance::start(platform, function).await
    }
}

fn init_error(message: String) -> FunctionError {
    FunctionError::new(ErrorKind::InitError, message, "")
}

impl Instance<EventRoute> {
    /// Starts an instance of `function` and waits until it is ready (or fails, or passes its init timeout).
    pub async fn start(
        platform: &Platform,
        function: &FunctionConfig,
    ) -> Result<EventInstance, StartFailure> {
        let fail = StartFailure::early;
        // PullCode: the code, the private directory, the start file, the runtime API.
        // Public access (the default) is the machine's network, as the cloud gives the internet; without it
        // the instance has a network of its own with only its loopback.
        let network = if function.public_access {
            Network::Shared
        } else {
            Network::Own
        };
        let starting = instance::pull_code(platform, function, network).await?;
        let cold = starting.cold;
        let (program, args): (std::path::PathBuf, Vec<OsString>) = match function.runtime {
            RuntimeKind::Custom => match &function.command {
                // `exec`: the instance is the command itself, not a shell waiting for it.
                Some(command) => (
                    "/bin/sh".into(),
                    vec!["-c".into(), format!("exec {command}").into()],
                ),
                None => {
                    let bootstrap = function.code_dir.join("bootstrap");
                    match instance::executable(&bootstrap).await {
                        Ok(true) => (bootstrap, Vec::new()),
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
            },
            _ => (platform.shim.clone(), Vec::new()),
        };
        // Custom runtimes (a `bootstrap` may be a shell script using curl) and the Lambda dialect (whose
        // clients take host:port) are served on TCP: 127.0.0.1:9001 inside the instance's network
        // namespace, as on the cloud (a free loopback port where it has none). Everything else on an
        // abstract Unix socket made inside it, which only the instance's processes are admitted to.
        let tcp = function.runtime == RuntimeKind::Custom || function.dialect == Dialect::Lambda;
        let prepared = &starting.dir;
        let unix_name = format!("scf-runtime-api-{}", starting.id);
        let listener = if tcp {
            match prepared.listen_tcp(RUNTIME_API_PORT).await {
                Ok(l) => Listener::from_tcp(l),
                Err(e) => return Err(fail(FunctionError::internal(e.to_string()), cold)),
            }
        } else {
            match prepared.listen_unix(&unix_name).await {
                Ok(l) => Listener::from_unix(l),
                Err(e) => return Err(fail(FunctionError::internal(e.to_string()), cold)),
            }
        }
        .map_err(|e| fail(FunctionError::internal(e.to_string()), cold))?;
        let (api_host, api_port) = match listener.port() {
            Some(port) => ("127.0.0.1".to_owned(), port.to_string()),
            None => (format!("unix:@{unix_name}"), String::new()),
        };
        // Only the instance's processes are admitted; a TCP API inside the instance's own network namespace
        // is reachable from inside only, and is not checked.
        let admit: Option<Admit> = match &listener {
            Listener::Tcp(_) if prepared.own_network() => None,
            _ => {
                let owner = prepared.owner();
                Some(Arc::new(move |who| match who {
                    Peer::Unix { pid } => owner.owns(pid),
                    Peer::Tcp { local, peer } => owner.owns_tcp(local, peer),
                }))
            }
        };
        let who = LambdaIdentity {
            function_name: function.name.clone(),
            region: function.region.clone(),
        };
        let api = ApiHandle::serve_admitting(listener, function.dialect, who, admit);

        let mut env: Vec<(String, String)> = Vec::new();
        if function.dialect == Dialect::Lambda {
            for (k, v) in [
                ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{api_port}")),
                ("AWS_LAMBDA_FUNCTION_NAME", function.name.clone()),
                (
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                    function.memory_mb.to_string(),
                ),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
                ("AWS_REGION", function.region.clone()),
                ("LAMBDA_TASK_ROOT", function.code_dir.display().to_string()),
                (
                    "AWS_LAMBDA_LOG_GROUP_NAME",
                    format!("/scf-local/{}", function.name),
                ),
                ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
            ] {
                env.push((k.to_owned(), v));
            }
        }
        env.push(("_HANDLER".into(), function.handler.clone()));
        env.push(("SCF_RUNTIME".into(), function.runtime.env_name().to_owned()));
        if function.dialect == Dialect::Scf {
            env.push(("SCF_RUNTIME_API".into(), api_host));
            env.push(("SCF_RUNTIME_API_PORT".into(), api_port));
        }
        env.extend(function.instance_env(&starting.dir.tmp()));
        let spec = SpawnSpec {
            program,
            args,
            cwd: function.code_dir.clone(),
            env,
            visible: platform.runtime_paths.clone(),
            hidden: platform.hidden_for(&function.code_dir),
        };
        let init_timeout = function.init_timeout;
        let memory_mb = function.memory_mb;
        let errors = StartErrors {
            spawn: |e| match e {
                SpawnError::Spawn { .. } => init_error(e.to_string()),
                other => FunctionError::internal(other.to_string()),
            },
            exited: Box::new(move |exit| {
                if exit.memory_exceeded {
                    FunctionError::memory_limit(memory_mb)
                } else {
                    FunctionError::process_exit(&format!(
                        "the instance exited before it was ready ({})",
                        exit.describe()
                    ))
                }
            }),
            timeout: Box::new(move || {
                FunctionError::new(
                    ErrorKind::InitTimeout,
                    format!(
                        "InitContainerTimeout: the instance was not ready within {} seconds",
                        secs(init_timeout)
                    ),
                    "",
                )
            }),
        };
        let (instance, ()) = instance::spawn_and_wait(
            platform,
            function,
            starting,
            spec,
            errors,
            |_| EventRoute { api },
            async |_, route: &EventRoute| match route.api.ready().await {
                Some(r) => match r.init_error {
                    Some(error) => Err(error),
                    None => Ok((
                        (),
                        Readiness {
                            at: r.at,
                            init_function: r.init_function,
                            runtime_ended: None,
                        },
                    )),
                },
                None => Err(FunctionError::internal("the runtime API server stopped")),
            },
        )
        .await?;
        crate::debug::started(&instance, function).await;
        Ok(instance)
    }

    /// Runs one invocation on this instance, then takes the function's output of it.
    pub async fn invoke(&self, request_id: &str, event: Bytes, asynchronous: bool) -> Outcome {
        let started = Instant::now();
        let work = self.process.work();
        let meta = InvocationMeta {
            request_id: request_id.to_owned(),
            memory_limit_in_mb: self.memory_mb,
            time_limit_in_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let platform_error = |e: FunctionError| Err((e.kind, Bytes::from(e.to_body(request_id))));
        let mut delivered = true;
        let result = match self.route.api.dispatch(meta, event) {
            Err(e) => {
                self.retire();
                platform_error(FunctionError::internal(e.to_string()))
            }
            Ok(mut reply) => {
                let deadline = crate::debug::deadline(self.timeout, self.debugged);
                tokio::select! {
                    biased;
                    answer = &mut reply => match answer {
                        Ok(answer) => answered(request_id, answer),
                        Err(_) => {
                            self.retire();
                            platform_error(FunctionError::internal("the instance dropped the invocation"))
                        }
                    },
                    exit = self.process.exited() => {
                        let error = self.died(&exit);
                        match reply.try_recv() {
                            // A result posted just before the exit still counts.
                            Ok(answer) => answered(request_id, answer),
                            Err(_) => {
                                delivered = !self.route.api.reclaim();
                                platform_error(error)
                            }
                        }
                    }
                    _ = deadline => {
                        self.retire();
                        platform_error(FunctionError::timeout(self.timeout.as_secs_f64(), asynchronous))
                    }
                }
            }
        };
        let duration = started.elapsed();
        drop(work);
        let mut lines = self.lines().await;
        // Without a /tmp of its own (a tmpfs the kernel caps), the instance's TMPDIR is checked in the
        // background after each invocation; what a check found over retires the instance here.
        if let Some(used) = self.process.tmp_over_cap() {
            self.retire();
            lines.push(format!(
                "scf-local: TMPDIR holds {} MB, over its {} MB: the instance is retired",
                used >> 20,
                scf_supervisor::TMP_BYTES >> 20
            ));
        }
        let gone = !self.is_usable();
        // The peak only for an instance that is gone (killed over its size, say): one counter read per
        // invocation otherwise.
        let mem_usage = gone
            .then(|| self.process.peak_memory())
            .flatten()
            .unwrap_or_else(|| self.memory_for_log());
        Outcome {
            result,
            lines,
            duration,
            mem_usage,
            instance_gone: gone,
            delivered,
        }
    }
}

/// The body the caller gets for `result`, and whether it is an error body.
pub fn caller_body(result: Result<Bytes, (ErrorKind, Bytes)>) -> (Bytes, bool) {
    match result {
        Ok(body) => (body, false),
        Err((_, body)) => (body, true),
    }
}

/// What the caller gets for what the instance answered.
fn answered(request_id: &str, answer: Answer) -> Result<Bytes, (ErrorKind, Bytes)> {
    let platform_error = |e: FunctionError| Err((e.kind, Bytes::from(e.to_body(request_id))));
    match answer {
        Answer::Response(body) if body.len() > MAX_RESPONSE_BYTES => {
            platform_error(FunctionError::response_too_large(body.len()))
        }
        Answer::Response(body) => Ok(body),
        Answer::TooLarge(n) => platform_error(FunctionError::response_too_large(n)),
        Answer::Error(body) => Err(error_body(request_id, body)),
    }
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

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}

impl Pool<EventRoute> {
    /// Runs one invocation holding `permit`, on a warm instance if one is idle, else on a new one; logs it.
    pub async fn invoke(
        self: &Arc<Self>,
        permit: OwnedSemaphorePermit,
        request_id: &str,
        event: Bytes,
        source: Source,
    ) -> Finished {
        let start_ms = now_ms();
        let mut warm = true;
        let mut permit = Some(permit);
        // Output of an instance that died before it took the invocation.
        let mut carried = Vec::new();
        loop {
            let p = match permit.take() {
                Some(p) => p,
                None => match self.permit().await {
                    Some(p) => p,
                    None => {
                        let e = FunctionError::internal("the function's pool is closed");
                        return self.refuse(request_id, start_ms, e, None, source).await;
                    }
                },
            };
            let lease = match self.acquire(p, warm).await {
                Ok(lease) => lease,
                Err(mut failure) => {
                    carried.append(&mut failure.lines);
                    failure.lines = carried;
                    let e = failure.error.clone();
                    return self
                        .refuse(request_id, start_ms, e, Some(failure), source)
                        .await;
                }
            };
            let mut log = self.open_log(request_id, &lease);
            let outcome = lease
                .instance
                .invoke(request_id, event.clone(), source.asynchronous)
                .await;
            if !outcome.delivered && !lease.fresh {
                // A reused instance exited before its `next` took the invocation: it was never delivered,
                // so it runs on a fresh instance (which may fail to take it too: that is then its answer).
                carried.extend(outcome.lines);
                permit = lease.into_permit();
                warm = false;
                continue;
            }
            log.user_lines(std::mem::take(&mut carried));
            log.user_lines(outcome.lines);
            return self
                .finish(Closing {
                    request_id: request_id.to_owned(),
                    start_ms,
                    log,
                    result: outcome.result,
                    duration: outcome.duration,
                    mem_usage: outcome.mem_usage,
                    source,
                })
                .await;
        }
    }
}
