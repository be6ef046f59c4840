//! Web functions and image-style event functions (`docs/web.md`, `docs/scf-platform.md` §7): the instance is
//! the function's own HTTP server, the code directory's executable `scf_bootstrap` (or
//! `inputs.image.command`), listening on port 9000. InitFunction ends when the port accepts a connection.
//!
//! - A web function's requests arrive as `/web/<function>/<path>` (the router sends them here) and are
//!   proxied to the instance as `/<path>` with hyper, streaming both ways, with the `X-Scf-*` headers added.
//! - An image-style event function gets each `Invoke` as `POST /event-invoke` (the event is the body, the
//!   context is in the `X-Scf-*` headers); the answer's status says success (2xx) or an error.
//!
//! One instance takes up to `instanceConcurrencyConfig.maxConcurrency` requests at once (1 by default). A
//! timeout fails only its own request (with a single-request instance the instance is killed, as for event
//! functions); a memory overrun or an exit fails every request on the instance.

use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use scf_protocol::limits::MAX_SYNC_EVENT_BYTES;
use scf_protocol::{ErrorKind, FunctionError};
use scf_supervisor::{NetMode, Network, SpawnSpec, Work};

use crate::config::{FunctionConfig, HttpKind};
use crate::instance::Platform;
use crate::instance::{self, Instance, LAST_WORDS, Readiness, StartErrors, StartFailure};
use crate::pool::{Closing, Finished, Lease, Pool, Route, Source};
use crate::requestlog::RequestLog;

mod event;
mod proxy;

/// The port every instance listens on, as on the cloud.
pub const WEB_PORT: u16 = 9000;
/// Largest response head (status line and headers) a web function may send.
pub const MAX_RESPONSE_HEADER_BYTES: usize = 4 * 1024;
/// How often the platform tries the port during InitFunction.
const PORT_POLL: Duration = Duration::from_millis(2);
/// How long a failed exchange waits to learn whether the instance died.
const DEATH_GRACE: Duration = Duration::from_millis(300);

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of the platform's HTTP answers.
pub type WebBody = BoxBody<Bytes, BoxError>;

/// The headers the platform sets on every request to the instance; a caller's own are dropped.
const SCF_HEADERS: [&str; 9] = [
    "x-scf-request-id",
    "x-scf-memory",
    "x-scf-timeout",
    "x-scf-version",
    "x-scf-name",
    "x-scf-namespace",
    "x-scf-region",
    "x-scf-appid",
    "x-scf-uin",
];

/// [`SCF_HEADERS`] as header names, made at compile time.
const SCF_HEADER_NAMES: [HeaderName; 9] = [
    HeaderName::from_static(SCF_HEADERS[0]),
    HeaderName::from_static(SCF_HEADERS[1]),
    HeaderName::from_static(SCF_HEADERS[2]),
    HeaderName::from_static(SCF_HEADERS[3]),
    HeaderName::from_static(SCF_HEADERS[4]),
    HeaderName::from_static(SCF_HEADERS[5]),
    HeaderName::from_static(SCF_HEADERS[6]),
    HeaderName::from_static(SCF_HEADERS[7]),
    HeaderName::from_static(SCF_HEADERS[8]),
];

/// `X-Scf-Request-Id`, on every request to an instance and every answer to a caller.
const REQUEST_ID: HeaderName = HeaderName::from_static(SCF_HEADERS[0]);

/// How the platform reaches a web instance: its port, and the keep-alive connections to it.
#[derive(Debug)]
pub struct HttpRoute {
    port: u16,
    /// The `X-Scf-*` headers after the request id, the same on every request (the function's): made at its
    /// first request, then only copied (a copy of a value shares its bytes).
    scf_values: OnceLock<Vec<(HeaderName, HeaderValue)>>,
    /// Idle keep-alive connections to the server (at most `max_idle`).
    conns: Mutex<Vec<SendRequest<WebBody>>>,
    /// As many as the requests the instance takes at once.
    max_idle: usize,
    /// How the port was given (the cold start's `Network:` line).
    network: String,
}

/// The instances of a web or image-style function.
pub type HttpPool = Pool<HttpRoute>;

impl Route for HttpRoute {
    fn capacity(config: &FunctionConfig) -> usize {
        config.http.as_ref().map_or(1, |h| h.instance_concurrency)
    }

    async fn start(
        platform: &Platform,
        function: &FunctionConfig,
    ) -> Result<Instance<HttpRoute>, StartFailure> {
        start(platform, function).await
    }

    fn cold_lines(instance: &Instance<HttpRoute>) -> Vec<String> {
        vec![format!("Network: {}", instance.route.network)]
    }
}

async fn start(
    platform: &Platform,
    c: &FunctionConfig,
) -> Result<Instance<HttpRoute>, StartFailure> {
    let fail = StartFailure::early;
    let Some(http) = &c.http else {
        return Err(fail(
            FunctionError::internal(format!("{} is not a web function", c.name)),
            Default::default(),
        ));
    };
    // PullCode: the code, the private directory, the start file, the port.
    // Every web instance listens on port 9000: in a network of its own, where the machine allows one.
    let starting = instance::pull_code(platform, c, Network::Own).await?;
    let cold = starting.cold;
    let command = &http.command;
    if command.components().count() > 1 || command.is_absolute() {
        match instance::executable(command).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(fail(
                    bootstrap_error(format!(
                        "{} is not an executable file (chmod +x it; scripts start with #!/bin/bash and use LF line ends)",
                        command.display()
                    )),
                    cold,
                ));
            }
            Err(e) => {
                return Err(fail(
                    bootstrap_error(format!(
                        "a web function needs an executable scf_bootstrap in its code directory: {}: {e}",
                        command.display()
                    )),
                    cold,
                ));
            }
        }
    }
    let mode = platform.supervisor.net_mode();
    let port = match mode {
        NetMode::Namespace => WEB_PORT,
        NetMode::SharedPort(_) => free_port().await.map_err(|e| {
            fail(
                FunctionError::internal(format!("finding a free port: {e}")),
                cold,
            )
        })?,
    };
    let mut env = vec![
        ("PORT".to_owned(), port.to_string()),
        ("SCF_RUNTIME".to_owned(), "web".to_owned()),
    ];
    env.extend(c.instance_env(&starting.dir.tmp()));
    let spec = SpawnSpec {
        program: command.clone(),
        args: http.args.iter().map(Into::into).collect(),
        cwd: c.code_dir.clone(),
        env,
        visible: platform.runtime_paths.clone(),
        hidden: platform.hidden_for(&c.code_dir),
    };
    let (init_timeout, memory_mb) = (c.init_timeout, c.memory_mb);
    let errors = StartErrors {
        spawn: |e| bootstrap_error(e.to_string()),
        exited: Box::new(move |exit| {
            if exit.memory_exceeded {
                FunctionError::memory_limit(memory_mb)
            } else {
                bootstrap_error(format!(
                    "the instance exited before it listened on port {port} ({})",
                    exit.describe()
                ))
            }
        }),
        timeout: Box::new(move || port_binding_failed(port, init_timeout)),
    };
    let route = HttpRoute {
        port,
        conns: Mutex::new(Vec::new()),
        scf_values: OnceLock::new(),
        max_idle: HttpRoute::capacity(c).max(1),
        network: mode.describe(),
    };
    let (instance, ()) = instance::spawn_and_wait(
        platform,
        c,
        starting,
        spec,
        errors,
        |_| route,
        async |process, route: &HttpRoute| {
            // InitRuntime ended when the process ran; InitFunction lasts until its port accepts.
            let ran = Instant::now();
            loop {
                match process.connect(route.port).await {
                    Ok(stream) => {
                        let sender = handshake(stream).await.map_err(FunctionError::internal)?;
                        if let Ok(mut conns) = route.conns.lock() {
                            conns.push(sender);
                        }
                        return Ok((
                            (),
                            Readiness {
                                at: Instant::now(),
                                init_function: None,
                                runtime_ended: Some(ran),
                            },
                        ));
                    }
                    Err(_) => tokio::time::sleep(PORT_POLL).await,
                }
            }
        },
    )
    .await?;
    Ok(instance)
}

/// The largest response head read from an instance: past the 4 KB the platform allows, enough to say so,
/// and a bound on what one connection buffers.
const MAX_UPSTREAM_HEAD_BYTES: usize = 64 * 1024;

async fn handshake(stream: tokio::net::TcpStream) -> Result<SendRequest<WebBody>, String> {
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_UPSTREAM_HEAD_BYTES)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with the instance: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Ports given to instances when they share the machine's network: below the kernel's usual ephemeral range
/// (32768–60999), so that the connections every process opens do not take a port between the platform's
/// check and the instance's bind.
const SHARED_PORTS: std::ops::Range<u16> = 20000..32000;

/// A port for an instance on the machine's network: a random one of [`SHARED_PORTS`] that is free now.
async fn free_port() -> std::io::Result<u16> {
    for _ in 0..64 {
        let span = u128::from(SHARED_PORTS.end - SHARED_PORTS.start);
        let offset = u16::try_from(uuid::Uuid::new_v4().as_u128() % span).unwrap_or(0);
        let port = SHARED_PORTS.start + offset;
        if tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(port);
        }
    }
    let l = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    Ok(l.local_addr()?.port())
}

impl Instance<HttpRoute> {
    /// An idle keep-alive connection, or a new one.
    async fn sender(&self) -> Result<SendRequest<WebBody>, String> {
        while let Some(s) = self.route.conns.lock().ok().and_then(|mut c| c.pop()) {
            if s.is_ready() {
                return Ok(s);
            }
        }
        let stream =
            self.process.connect(self.route.port).await.map_err(|e| {
                format!("connecting to the instance's port {}: {e}", self.route.port)
            })?;
        handshake(stream).await
    }

    fn put_back(&self, sender: SendRequest<WebBody>) {
        if sender.is_ready()
            && let Ok(mut c) = self.route.conns.lock()
            && c.len() < self.route.max_idle
        {
            c.push(sender);
        }
    }

    /// Waits until the instance is gone; the error of the requests on it.
    async fn gone(&self) -> FunctionError {
        let exit = self.process.exited().await;
        self.died(&exit)
    }

    /// Sends `req` and waits for the response head, before `deadline` (the request's own timer, which
    /// then bounds its answer's body too: one timer a request).
    async fn exchange(
        &self,
        req: Request<WebBody>,
        deadline: Pin<&mut tokio::time::Sleep>,
        capacity: usize,
    ) -> Result<(Response<Incoming>, SendRequest<WebBody>), FunctionError> {
        enum Failed {
            /// The caller's body passed the request limit.
            RequestTooLarge,
            /// The instance's response head passed what the platform reads.
            HeadTooLarge,
            Connection(String),
        }
        let work = async {
            let mut sender = self.sender().await.map_err(Failed::Connection)?;
            match sender.send_request(req).await {
                Ok(r) => Ok((r, sender)),
                Err(e) if over_the_limit(&e) => Err(Failed::RequestTooLarge),
                Err(e) if e.is_parse_too_large() => Err(Failed::HeadTooLarge),
                Err(e) => Err(Failed::Connection(format!("{e}"))),
            }
        };
        tokio::select! {
            biased;
            r = work => match r {
                Ok(ok) => Ok(ok),
                Err(Failed::RequestTooLarge) => Err(request_too_large(MAX_SYNC_EVENT_BYTES as u64 + 1)),
                Err(Failed::HeadTooLarge) => Err(response_head_too_large(format!(
                    "more than {MAX_UPSTREAM_HEAD_BYTES} bytes of headers"
                ))),
                Err(Failed::Connection(why)) => {
                    // The connection failed: if the instance died, that is the error.
                    match tokio::time::timeout(DEATH_GRACE, self.gone()).await {
                        Ok(e) => Err(e),
                        Err(_) => Err(FunctionError::new(
                            ErrorKind::UnhandledError,
                            "the function's server closed the connection without an answer",
                            why,
                        )),
                    }
                }
            },
            _ = deadline => Err(self.timed_out(capacity)),
            e = self.gone() => Err(e),
        }
    }

    /// The 433 of a request past the timeout; an instance that takes one request at a time is killed.
    fn timed_out(&self, capacity: usize) -> FunctionError {
        if capacity == 1 {
            self.retire();
        }
        FunctionError::timeout(self.timeout.as_secs_f64(), false)
    }
}

impl Pool<HttpRoute> {
    /// Whether it is a web function (else an image-style event function).
    pub fn is_web(&self) -> bool {
        self.config
            .http
            .as_ref()
            .is_some_and(|h| h.kind == HttpKind::Web)
    }

    /// Sets the `X-Scf-*` headers of a request to the instance on `instance` (`request_id` is the request id
    /// as a header value, [`request_id_value`]; none when it is not one).
    fn set_scf_headers(
        &self,
        instance: &Instance<HttpRoute>,
        request_id: Option<&HeaderValue>,
        h: &mut HeaderMap,
    ) {
        let fixed = instance.route.scf_values.get_or_init(|| self.scf_values());
        h.reserve(fixed.len() + 1);
        if let Some(v) = request_id {
            h.insert(REQUEST_ID, v.clone());
        }
        for (k, v) in fixed {
            h.insert(k.clone(), v.clone());
        }
    }

    /// The `X-Scf-*` headers after the request id: the function's, fixed (numbers and fixed words without a
    /// text round trip).
    fn scf_values(&self) -> Vec<(HeaderName, HeaderValue)> {
        let c = &self.config;
        let text = |s: &str| HeaderValue::from_str(s).ok();
        let timeout_ms = u64::try_from(c.timeout.as_millis()).unwrap_or(u64::MAX);
        let values: [Option<HeaderValue>; 8] = [
            Some(HeaderValue::from(c.memory_mb)),
            Some(HeaderValue::from(timeout_ms)),
            Some(HeaderValue::from_static("$LATEST")),
            text(&c.name),
            text(&c.namespace),
            text(&c.region),
            Some(HeaderValue::from_static("1250000000")),
            Some(HeaderValue::from_static("100000000001")),
        ];
        SCF_HEADER_NAMES[1..]
            .iter()
            .zip(values)
            .filter_map(|(k, v)| Some((k.clone(), v?)))
            .collect()
    }

    /// A place on an instance for a sync request, or the request's refusal (432, or its instance's failed
    /// start).
    async fn place(
        self: &Arc<Self>,
        request_id: &str,
        start_ms: i64,
    ) -> Result<Lease<HttpRoute>, Finished> {
        let Some(permit) = self.try_permit() else {
            return Err(self
                .refuse(request_id, start_ms, self.throttled(), None, Source::SYNC)
                .await);
        };
        match self.acquire(permit, true).await {
            Ok(lease) => Ok(lease),
            Err(f) => {
                let e = f.error.clone();
                Err(self
                    .refuse(request_id, start_ms, e, Some(f), Source::SYNC)
                    .await)
            }
        }
    }
}

/// A request id as a header value, made once for the request to the instance and the answer to the caller
/// (none when it is not one).
fn request_id_value(request_id: &str) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(Bytes::copy_from_slice(request_id.as_bytes())).ok()
}

/// A request on its instance: what closes it (its log, its record, its place) once it is over.
struct Done {
    pool: Arc<HttpPool>,
    request_id: String,
    start_ms: i64,
    started: Instant,
    log: RequestLog,
    lease: Lease<HttpRoute>,
    work: Work,
}

impl Done {
    /// Closes the request with `result`: its instance's output so far (after its last words when it is
    /// gone), the closing lines, the record.
    async fn close(self, result: Result<Bytes, (ErrorKind, Bytes)>) -> Finished {
        if !self.lease.instance.is_usable() {
            self.lease
                .instance
                .process
                .output()
                .closed(LAST_WORDS)
                .await;
        }
        self.close_now(result)
    }

    /// [`Done::close`] without waiting for last words: the record is queued before this returns.
    fn close_now(self, result: Result<Bytes, (ErrorKind, Bytes)>) -> Finished {
        let Done {
            pool,
            request_id,
            start_ms,
            started,
            mut log,
            lease,
            work,
        } = self;
        drop(work);
        let output = lease.instance.process.output();
        log.user_lines(output.take_lines(!lease.instance.is_usable()));
        let mem_usage = lease.instance.memory_for_log();
        pool.finish_now(Closing {
            request_id,
            start_ms,
            log,
            result,
            duration: started.elapsed(),
            mem_usage,
            source: Source::SYNC,
        })
    }

    /// Closes the request now when its instance lives on (so a read of the logs after the answer sees it),
    /// else once the gone instance's last words are in.
    fn end(self, result: Result<Bytes, (ErrorKind, Bytes)>) {
        if self.lease.instance.is_usable() {
            self.close_now(result);
        } else {
            tokio::spawn(self.close(result));
        }
    }

    /// Fails the request with `e`: closes it and answers the caller with the error.
    fn fail(self, e: FunctionError) -> Response<WebBody> {
        let response = error_response(&self.request_id, &e);
        let body = Bytes::from(e.to_body(&self.request_id));
        self.end(Err((e.kind, body)));
        response
    }
}

/// Whether sending failed because the caller's body passed the request limit.
fn over_the_limit(e: &hyper::Error) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A response head over the limit.
fn response_head_too_large(detail: impl Into<String>) -> FunctionError {
    FunctionError::new(
        ErrorKind::ResponseTooLarge,
        "The size of response headers exceeds the upper limit (4KB)",
        detail.into(),
    )
}

/// A failure of the start file: not there, not executable, or it exited before listening.
fn bootstrap_error(detail: String) -> FunctionError {
    FunctionError::new(
        ErrorKind::BootstrapError,
        "scf_bootstrap failed: the web server did not start",
        detail,
    )
}

/// The server never listened within the init timeout.
fn port_binding_failed(port: u16, init_timeout: Duration) -> FunctionError {
    FunctionError::new(
        ErrorKind::PortBindingFailed,
        format!(
            "PortBindingFailed: the web server did not listen on port {port} within {} seconds",
            init_timeout.as_secs_f64()
        ),
        "",
    )
}

pub(crate) fn request_too_large(len: u64) -> FunctionError {
    FunctionError::new(
        ErrorKind::RequestTooLarge,
        "The size of request exceeds the upper limit (6MB)",
        format!("{len} bytes"),
    )
}

fn empty() -> WebBody {
    Full::new(Bytes::new()).map_err(|e| match e {}).boxed()
}

/// The HTTP status the caller of a web function sees for an error of `kind`.
pub(crate) fn http_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::FunctionNotFound => StatusCode::NOT_FOUND,
        ErrorKind::ConcurrencyLimit => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::InvalidParameter => StatusCode::BAD_REQUEST,
        ErrorKind::Timeout | ErrorKind::InitTimeout | ErrorKind::PortBindingFailed => {
            StatusCode::GATEWAY_TIMEOUT
        }
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// The answer to a web request that failed: the error body (`docs/errors.md`) as JSON.
pub(crate) fn error_response(request_id: &str, e: &FunctionError) -> Response<WebBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(e.to_body(request_id)))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = http_status(e.kind);
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(HeaderName::from_static("x-scf-request-id"), v);
    }
    if let Ok(v) = HeaderValue::from_str(&e.kind.status_code().to_string()) {
        h.insert(HeaderName::from_static("x-scf-error-code"), v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_statuses() {
        assert_eq!(http_status(ErrorKind::Timeout), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            http_status(ErrorKind::ConcurrencyLimit),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(http_status(ErrorKind::ProcessExit), StatusCode::BAD_GATEWAY);
    }
}
