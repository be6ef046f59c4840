//! The runtime API server of one instance (`docs/protocol.md`).
//!
//! The platform hands invocations to the server ([`ApiHandle::dispatch`]); the instance pulls them with
//! `next` and answers with `response` or `error`. Rules: a repeated `next` during an invocation returns the
//! same invocation; the first result wins and later ones are refused; a result with no invocation in flight
//! is refused with a 400 that says so.

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use scf_protocol::api::{
    Call, Dialect, InvocationMeta, LambdaIdentity, headers, lambda_error_to_function_error,
};
use scf_protocol::{ErrorKind, FunctionError};
use tokio::sync::{mpsc, oneshot};

use crate::PlatformError;

/// What the instance answered for one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `response`: the result bytes, verbatim.
    Response(Bytes),
    /// `error`: the error body the instance posted.
    Error(Bytes),
}

/// The end of the instance's initialisation: its `init/ready` call (SCF), its first `next` (Lambda), or
/// its `init/error` (Lambda).
#[derive(Debug, Clone)]
pub struct Ready {
    /// When it arrived.
    pub at: Instant,
    /// The instance's own InitRuntime figure, if it reported one.
    pub init_runtime: Option<Duration>,
    /// The instance's own InitFunction figure, if it reported one.
    pub init_function: Option<Duration>,
    /// The error of a failed initialisation (Lambda's `init/error`).
    pub init_error: Option<scf_protocol::FunctionError>,
}

struct Dispatch {
    meta: InvocationMeta,
    event: Bytes,
    reply: oneshot::Sender<Answer>,
}

struct InFlight {
    meta: InvocationMeta,
    event: Bytes,
    reply: Option<oneshot::Sender<Answer>>,
}

struct Shared {
    dialect: Dialect,
    who: LambdaIdentity,
    queue: tokio::sync::Mutex<mpsc::Receiver<Dispatch>>,
    in_flight: Mutex<Option<InFlight>>,
    ready: Mutex<Option<oneshot::Sender<Ready>>>,
}

/// The platform's side of one instance's runtime API.
#[derive(Debug)]
pub struct ApiHandle {
    queue: mpsc::Sender<Dispatch>,
    ready: Option<oneshot::Receiver<Ready>>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch")
            .field("request_id", &self.meta.request_id)
            .finish_non_exhaustive()
    }
}

/// A listener the server can accept instance connections on.
#[derive(Debug)]
pub enum Listener {
    /// A Unix socket (the default: private, fast).
    Unix(tokio::net::UnixListener),
    /// A loopback TCP port (custom runtimes, whose `bootstrap` may be a shell script using `curl`).
    Tcp(tokio::net::TcpListener),
}

impl Listener {
    /// Binds a Unix socket at `path` with mode 0600 (its directory should be private too).
    pub fn unix(path: &Path) -> Result<Listener, PlatformError> {
        let l = tokio::net::UnixListener::bind(path)
            .map_err(PlatformError::io(format!("binding {}", path.display())))?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(PlatformError::io(format!("chmod {}", path.display())))?;
        Ok(Listener::Unix(l))
    }

    /// Binds a free loopback TCP port.
    pub async fn tcp_loopback() -> Result<Listener, PlatformError> {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(PlatformError::io("binding 127.0.0.1:0"))?;
        Ok(Listener::Tcp(l))
    }

    /// The port, for a TCP listener.
    pub fn port(&self) -> Option<u16> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Listener::Unix(_) => None,
        }
    }
}

impl ApiHandle {
    /// Starts serving the runtime API on `listener`.
    pub fn serve(listener: Listener, dialect: Dialect, who: LambdaIdentity) -> ApiHandle {
        let (queue, rx) = mpsc::channel(1);
        let (ready_tx, ready_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            dialect,
            who,
            queue: tokio::sync::Mutex::new(rx),
            in_flight: Mutex::new(None),
            ready: Mutex::new(Some(ready_tx)),
        });
        let server = tokio::spawn(accept_loop(listener, shared));
        ApiHandle {
            queue,
            ready: Some(ready_rx),
            server,
        }
    }

    /// Waits for the instance's `init/ready`. `None` if it can never come (the server stopped).
    pub async fn ready(&mut self) -> Option<Ready> {
        let rx = self.ready.take()?;
        rx.await.ok()
    }

    /// Hands an invocation to the instance; the receiver resolves with its answer.
    pub async fn dispatch(
        &self,
        meta: InvocationMeta,
        event: Bytes,
    ) -> Option<oneshot::Receiver<Answer>> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .send(Dispatch { meta, event, reply })
            .await
            .ok()?;
        Some(rx)
    }
}

impl Drop for ApiHandle {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn accept_loop(listener: Listener, shared: Arc<Shared>) {
    loop {
        match &listener {
            Listener::Unix(l) => match l.accept().await {
                Ok((stream, _)) => spawn_connection(stream, shared.clone()),
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Listener::Tcp(l) => match l.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    spawn_connection(stream, shared.clone())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

fn spawn_connection<S>(stream: S, shared: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(handle(req, &shared).await) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

fn refusal(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "{{\"errorMessage\":{}}}",
        scf_protocol::json::go_string(message)
    );
    let mut r = reply(status, body);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn micros(req: &Request<Incoming>, name: &str) -> Option<Duration> {
    let v = req
        .headers()
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_micros(v))
}

fn next_answer(shared: &Shared, meta: &InvocationMeta, event: Bytes) -> Response<Full<Bytes>> {
    let mut r = reply(StatusCode::OK, event);
    let now_ms = u64::try_from(crate::store::now_ms()).unwrap_or(0);
    for (k, v) in meta.to_headers(shared.dialect, now_ms, &shared.who) {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn signal_ready(shared: &Shared, ready: Ready) -> bool {
    match shared.ready.lock().ok().and_then(|mut r| r.take()) {
        Some(tx) => {
            let _ = tx.send(ready);
            true
        }
        None => false,
    }
}

fn header_str<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let Some((call, path_id)) = shared.dialect.parse(&method, &path) else {
        return refusal(
            StatusCode::NOT_FOUND,
            &format!("no runtime API call is {method} {path}"),
        );
    };
    let accepted = StatusCode::from_u16(shared.dialect.accepted_status()).unwrap_or(StatusCode::OK);
    match call {
        Call::InitReady => {
            let at = Instant::now();
            let (init_runtime, init_function) = (
                micros(&req, headers::INIT_RUNTIME_US),
                micros(&req, headers::INIT_FUNCTION_US),
            );
            // Read the body (one space) before answering: a client that keeps its connection must find it
            // clean for its next call.
            let _ = req.into_body().collect().await;
            let ready = Ready {
                at,
                init_runtime,
                init_function,
                init_error: None,
            };
            if signal_ready(shared, ready) {
                reply(StatusCode::OK, Bytes::new())
            } else {
                refusal(
                    StatusCode::BAD_REQUEST,
                    "init/ready was already called; only the first call counts",
                )
            }
        }
        Call::InitError => {
            let error_type = header_str(&req, headers::LAMBDA_ERROR_TYPE).map(str::to_owned);
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let reported = lambda_error_to_function_error(&body, error_type.as_deref());
            // An init failure is a load failure whatever the runtime calls it.
            let error = if reported.kind.is_load_error() {
                reported
            } else {
                let message = error_type.unwrap_or_else(|| "Runtime.InitError".to_owned());
                FunctionError::new(ErrorKind::InitError, message, reported.stack_trace)
            };
            let ready = Ready {
                at: Instant::now(),
                init_runtime: None,
                init_function: None,
                init_error: Some(error),
            };
            if signal_ready(shared, ready) {
                reply(accepted, Bytes::new())
            } else {
                refusal(
                    StatusCode::FORBIDDEN,
                    "init/error after initialisation ended",
                )
            }
        }
        Call::Next => {
            if shared.dialect == Dialect::Lambda {
                // Lambda has no ready call: the first `next` says the runtime is ready.
                signal_ready(
                    shared,
                    Ready {
                        at: Instant::now(),
                        init_runtime: None,
                        init_function: None,
                        init_error: None,
                    },
                );
            }
            // A repeated `next` during an invocation returns the same invocation.
            let again = shared
                .in_flight
                .lock()
                .ok()
                .and_then(|g| g.as_ref().map(|f| (f.meta.clone(), f.event.clone())));
            if let Some((meta, event)) = again {
                return next_answer(shared, &meta, event);
            }
            let dispatch = shared.queue.lock().await.recv().await;
            let Some(d) = dispatch else {
                return refusal(StatusCode::GONE, "the platform is stopping this instance");
            };
            let answer = next_answer(shared, &d.meta, d.event.clone());
            if let Ok(mut g) = shared.in_flight.lock() {
                *g = Some(InFlight {
                    meta: d.meta,
                    event: d.event,
                    reply: Some(d.reply),
                });
            }
            answer
        }
        Call::Response | Call::Error => {
            let error_type = header_str(&req, headers::LAMBDA_ERROR_TYPE).map(str::to_owned);
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return refusal(StatusCode::BAD_REQUEST, &format!("reading the body: {e}"));
                }
            };
            let taken = shared.in_flight.lock().ok().and_then(|mut g| {
                // Lambda names the invocation in the path: a result for another one is refused.
                match (&path_id, g.as_ref()) {
                    (Some(id), Some(f)) if *id != f.meta.request_id => None,
                    _ => g.take(),
                }
            });
            let Some(mut flight) = taken else {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    "no invocation is in flight: call next first (a result is accepted once per invocation)",
                );
            };
            let answer = match (call, shared.dialect) {
                (Call::Response, _) => Answer::Response(body),
                (_, Dialect::Scf) => Answer::Error(body),
                (_, Dialect::Lambda) => {
                    let e = lambda_error_to_function_error(&body, error_type.as_deref());
                    Answer::Error(Bytes::from(e.to_body(&flight.meta.request_id)))
                }
            };
            if let Some(tx) = flight.reply.take() {
                let _ = tx.send(answer);
            }
            reply(accepted, Bytes::new())
        }
    }
}
