//! The instance side of the runtime API and the invocation loop.

use std::time::{Duration, Instant};

use bytes::Bytes;
use scf_protocol::api::{Call, Dialect, InvocationMeta, READY_BODY, headers, lambda_error_body};
use scf_protocol::{Context, FunctionError, MAX_RESPONSE_BYTES};

use crate::client::{Answer, Client};
use crate::{Config, Host, ShimError};

/// One invocation pulled from the platform.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Id of the invocation.
    pub request_id: String,
    /// The event, as the JSON text the platform sent (not validated: hosts parse it once, and report
    /// [`FunctionError::invalid_event`] when it is not JSON).
    pub event: Bytes,
    /// The context handed to the handler.
    pub context: Context,
    /// When the execution timeout runs out.
    pub deadline: Instant,
}

/// The instance's connection to the platform, call by call (pull style).
///
/// [`run`] drives it for hosts that can block; a host that must keep its own event loop turning (Node.js)
/// calls these methods itself, from a worker thread.
#[derive(Debug)]
pub struct Runtime {
    config: Config,
    client: Client,
    dialect: Dialect,
    init_runtime: Duration,
}

impl Runtime {
    /// Reads the configuration from the environment and connects to the runtime API. The time from the
    /// shim's start until this call is the InitRuntime phase.
    pub fn from_env() -> Result<Runtime, ShimError> {
        let init_runtime = crate::clock::since_shim_start().unwrap_or_default();
        let config = Config::from_env()?;
        Self::connect(config, init_runtime)
    }

    /// Connects to the runtime API named by `config`.
    pub fn connect(config: Config, init_runtime: Duration) -> Result<Runtime, ShimError> {
        let client = Client::connect(config.endpoint.clone())?;
        Ok(Runtime {
            client,
            dialect: config.dialect,
            config,
            init_runtime,
        })
    }

    /// The instance's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Tells the platform that initialisation is over; `init_function` is how long loading the function took.
    /// (In the Lambda dialect there is no such call: the first `next` says it.)
    pub fn ready(&mut self, init_function: Duration) -> Result<(), ShimError> {
        if self.dialect.route(&Call::InitReady, "").is_none() {
            return Ok(());
        }
        let hs = [
            (
                headers::INIT_RUNTIME_US,
                self.init_runtime.as_micros().to_string(),
            ),
            (
                headers::INIT_FUNCTION_US,
                init_function.as_micros().to_string(),
            ),
        ];
        self.call(Call::InitReady, &hs, Bytes::from_static(READY_BODY))
            .map(|_| ())
    }

    /// Waits for the next invocation.
    #[allow(
        clippy::should_implement_trait,
        reason = "named after the protocol's `next` call"
    )]
    pub fn next(&mut self) -> Result<Invocation, ShimError> {
        let answer = self.call(Call::Next, &[], Bytes::new())?;
        let received = Instant::now();
        let meta = InvocationMeta::from_headers(
            self.dialect,
            |name| answer.headers.get(name).and_then(|v| v.to_str().ok()),
            epoch_ms(),
            self.config.memory_mb,
        )
        .map_err(ShimError::Protocol)?;
        let c = &self.config;
        let context = Context {
            memory_limit_in_mb: meta.memory_limit_in_mb,
            time_limit_in_ms: meta.time_limit_in_ms,
            request_id: meta.request_id.clone(),
            environment: c.context_env.0.clone(),
            environ: c.context_env.1.clone(),
            function_version: c.function_version.clone(),
            function_name: c.function_name.clone(),
            namespace: c.namespace.clone(),
            tencentcloud_region: c.region.clone(),
            tencentcloud_appid: c.appid.clone(),
            tencentcloud_uin: c.uin.clone(),
        };
        Ok(Invocation {
            request_id: meta.request_id,
            event: answer.body,
            context,
            deadline: received + Duration::from_millis(meta.time_limit_in_ms),
        })
    }

    /// Posts the result of `inv`. A result over the platform's limit is reported as a 407 error instead.
    pub fn respond(&mut self, inv: &Invocation, body: &[u8]) -> Result<(), ShimError> {
        if body.len() > MAX_RESPONSE_BYTES {
            return self.fail(inv, &FunctionError::response_too_large(body.len()));
        }
        self.call_for(
            Call::Response,
            &inv.request_id,
            &[],
            Bytes::copy_from_slice(body),
        )
        .map(|_| ())
    }

    /// Posts the failure of `inv`: the canonical error body (SCF), or Lambda's error body and error-type header.
    pub fn fail(&mut self, inv: &Invocation, err: &FunctionError) -> Result<(), ShimError> {
        match self.dialect {
            Dialect::Scf => {
                let body = err.to_body(&inv.request_id);
                self.call_for(Call::Error, &inv.request_id, &[], Bytes::from(body))
            }
            Dialect::Lambda => {
                let hs = [(headers::LAMBDA_ERROR_TYPE, err.kind.name().to_owned())];
                let body = lambda_error_body(err);
                self.call_for(Call::Error, &inv.request_id, &hs, Bytes::from(body))
            }
        }
        .map(|_| ())
    }

    fn call(
        &mut self,
        call: Call,
        hs: &[(&str, String)],
        body: Bytes,
    ) -> Result<Answer, ShimError> {
        self.call_for(call, "", hs, body)
    }

    fn call_for(
        &mut self,
        call: Call,
        request_id: &str,
        hs: &[(&str, String)],
        body: Bytes,
    ) -> Result<Answer, ShimError> {
        let (method, path) = self.dialect.route(&call, request_id).ok_or_else(|| {
            ShimError::Protocol(format!(
                "the {:?} dialect has no {call:?} call",
                self.dialect
            ))
        })?;
        let answer = self.client.call(method, &path, hs, body)?;
        if !answer.status.is_success() {
            let text = String::from_utf8_lossy(&answer.body);
            return Err(ShimError::Protocol(format!(
                "{method} {path} answered {}: {text}",
                answer.status
            )));
        }
        Ok(answer)
    }
}

/// Milliseconds since the epoch (Lambda's deadlines are dated so).
fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs an instance to its end: connect, load the function through `host` (InitFunction), post
/// `init/ready`, then answer invocations until the platform closes the connection.
///
/// A function that fails to load still posts ready, then answers every invocation with its load error,
/// as the platform's own runtimes do.
pub fn run<H: Host>(mut host: H) -> Result<(), ShimError> {
    let mut runtime = Runtime::from_env()?;
    let started = Instant::now();
    let loaded = host.load(runtime.config());
    let init_function = started.elapsed();
    host.flush_logs();
    runtime.ready(init_function)?;
    loop {
        let inv = match runtime.next() {
            Ok(inv) => inv,
            Err(e) if e.is_disconnect() => return Ok(()),
            Err(e) => return Err(e),
        };
        let outcome = match &loaded {
            Ok(()) => host.invoke(&inv),
            Err(load_error) => Err(load_error.clone()),
        };
        host.flush_logs();
        let posted = match outcome {
            Ok(body) => runtime.respond(&inv, &body),
            Err(err) => runtime.fail(&inv, &err),
        };
        match posted {
            Ok(()) => {}
            Err(e) if e.is_disconnect() => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
