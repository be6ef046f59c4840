//! `scf-runtime-api`: the platform's side of the runtime API one instance talks to (`docs/protocol.md`),
//! in both dialects (SCF's, and AWS Lambda's). It is the mirror of the shim's client.
//!
//! The platform hands an invocation to the server ([`ApiHandle::dispatch`]); the instance pulls it with
//! `next` and answers with `response` or `error`. Rules:
//! - a repeated `next` during an invocation returns the same invocation;
//! - the first result wins and later ones are refused; a result with no invocation in flight is refused with
//!   a 400 that says so;
//! - an invocation that no `next` has taken yet can be taken back ([`ApiHandle::reclaim`]): it was never
//!   delivered, so the platform may run it elsewhere (on an instance that died before pulling it);
//! - bodies the instance posts are read up to the response limit (6 MB) and no further, and a result is read
//!   only while its invocation is waiting for one (a second post at the same time is refused unread);
//! - connections are bounded in time and number as every server of the platform is ([`conn`]:
//!   [`conn::Limits::RUNTIME_API`]).

pub mod conn;
mod hold;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use scf_protocol::api::{
    Call, Dialect, InvocationMeta, LambdaIdentity, headers, lambda_error_to_function_error,
};
use scf_protocol::{ErrorKind, FunctionError, MAX_RESPONSE_BYTES};
use tokio::sync::{Notify, oneshot};

/// What the instance answered for one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `response`: the result bytes, verbatim.
    Response(Bytes),
    /// `error`: the error body the instance posted (Lambda's errors already in SCF's shape).
    Error(Bytes),
    /// A result over the response limit; it was not read past the limit. The size is at least this.
    TooLarge(usize),
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
    pub init_error: Option<FunctionError>,
}

/// Failures of the server itself.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The listener could not be made.
    #[error("{what}: {source}")]
    Listen {
        /// What was being done.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
    /// An invocation was handed over while another one was still waiting to be pulled.
    #[error("an invocation is already waiting for the instance")]
    Busy,
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
    /// A result's body is being read.
    answering: bool,
}

#[derive(Default)]
struct State {
    /// Handed over, not pulled yet.
    pending: Option<Dispatch>,
    /// Pulled by `next`, not answered yet.
    in_flight: Option<InFlight>,
    /// The platform is done with this instance: `next` is answered 410.
    closed: bool,
}

struct Shared {
    dialect: Dialect,
    who: LambdaIdentity,
    state: Mutex<State>,
    /// An invocation was handed over (or the API closed).
    arrived: Notify,
    ready: Mutex<Option<oneshot::Sender<Ready>>>,
}

/// The platform's side of one instance's runtime API. Dropping it closes the API (a waiting `next` gets
/// 410) and stops accepting connections.
pub struct ApiHandle {
    shared: Arc<Shared>,
    ready: Mutex<Option<oneshot::Receiver<Ready>>>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ApiHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiHandle")
            .field("dialect", &self.shared.dialect)
            .finish_non_exhaustive()
    }
}

/// A listener the server accepts instance connections on.
#[derive(Debug)]
pub enum Listener {
    /// A Unix socket (the default: fast; made inside the instance's network namespace where it has one).
    Unix(tokio::net::UnixListener),
    /// A loopback TCP port (custom runtimes, whose `bootstrap` may be a shell script using `curl`).
    Tcp(tokio::net::TcpListener),
}

impl Listener {
    /// Serves on a Unix listener made elsewhere (the instance's init makes it inside the instance's network).
    pub fn from_unix(l: std::os::unix::net::UnixListener) -> Result<Listener, ApiError> {
        let listen = |source| ApiError::Listen {
            what: "serving a Unix listener".into(),
            source,
        };
        l.set_nonblocking(true).map_err(listen)?;
        Ok(Listener::Unix(
            tokio::net::UnixListener::from_std(l).map_err(listen)?,
        ))
    }

    /// Serves on a TCP listener made elsewhere.
    pub fn from_tcp(l: std::net::TcpListener) -> Result<Listener, ApiError> {
        let listen = |source| ApiError::Listen {
            what: "serving a TCP listener".into(),
            source,
        };
        l.set_nonblocking(true).map_err(listen)?;
        Ok(Listener::Tcp(
            tokio::net::TcpListener::from_std(l).map_err(listen)?,
        ))
    }

    /// Binds a Unix socket at `path` with mode 0600 (its directory should be private too), for a server
    /// outside an instance's init (tests, tools).
    pub fn unix(path: &std::path::Path) -> Result<Listener, ApiError> {
        let l = tokio::net::UnixListener::bind(path).map_err(|source| ApiError::Listen {
            what: format!("binding {}", path.display()),
            source,
        })?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| ApiError::Listen {
                what: format!("chmod {}", path.display()),
                source,
            },
        )?;
        Ok(Listener::Unix(l))
    }

    /// Binds a free loopback TCP port.
    pub async fn tcp_loopback() -> Result<Listener, ApiError> {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|source| ApiError::Listen {
                what: "binding 127.0.0.1:0".into(),
                source,
            })?;
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

/// Who connected to a runtime API, as the server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A Unix connection: the connecting process's pid as the platform sees it (`SO_PEERCRED`).
    Unix {
        /// The pid.
        pid: u32,
    },
    /// A TCP connection: the server's own address and the client's.
    Tcp {
        /// The server's end (the listener's address).
        local: std::net::SocketAddr,
        /// The client's end.
        peer: std::net::SocketAddr,
    },
}

/// Decides whether the process at the other end of a connection is the instance's, and so may use its
/// API. It may block (it reads `/proc`): the server runs it on the blocking pool, once per connection; a
/// connection it refuses is closed unanswered, and the server goes on accepting others.
pub type Admit = Arc<dyn Fn(Peer) -> bool + Send + Sync>;

impl ApiHandle {
    /// Starts serving the runtime API on `listener`, to whoever connects.
    pub fn serve(listener: Listener, dialect: Dialect, who: LambdaIdentity) -> ApiHandle {
        Self::serve_admitting(listener, dialect, who, None)
    }

    /// Starts serving the runtime API on `listener`, only to the processes `admit` accepts (to whoever
    /// connects without one).
    pub fn serve_admitting(
        listener: Listener,
        dialect: Dialect,
        who: LambdaIdentity,
        admit: Option<Admit>,
    ) -> ApiHandle {
        let (ready_tx, ready_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            dialect,
            who,
            state: Mutex::new(State::default()),
            arrived: Notify::new(),
            ready: Mutex::new(Some(ready_tx)),
        });
        let server = tokio::spawn(accept_loop(listener, shared.clone(), admit));
        ApiHandle {
            shared,
            ready: Mutex::new(Some(ready_rx)),
            server,
        }
    }

    /// Waits for the instance's `init/ready`. `None` if it can never come (it was taken already, or the
    /// server stopped).
    pub async fn ready(&self) -> Option<Ready> {
        let rx = self.ready.lock().ok()?.take()?;
        rx.await.ok()
    }

    /// Hands an invocation to the instance (its next `next` takes it); the receiver resolves with its answer.
    pub fn dispatch(
        &self,
        meta: InvocationMeta,
        event: Bytes,
    ) -> Result<oneshot::Receiver<Answer>, ApiError> {
        let (reply, rx) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            if state.pending.is_some() {
                return Err(ApiError::Busy);
            }
            state.pending = Some(Dispatch { meta, event, reply });
        }
        self.shared.arrived.notify_one();
        Ok(rx)
    }

    /// Takes back the invocation handed over if no `next` has taken it yet: `true` when it was never
    /// delivered. Afterwards the instance's `next` waits (or, once the API is dropped, gets 410).
    pub fn reclaim(&self) -> bool {
        self.shared.lock().pending.take().is_some()
    }
}

impl Drop for ApiHandle {
    fn drop(&mut self) {
        self.server.abort();
        {
            let mut state = self.shared.lock();
            state.closed = true;
            state.pending = None;
        }
        self.shared.arrived.notify_waiters();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere while holding it; the state itself stays consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn accept_loop(listener: Listener, shared: Arc<Shared>, admit: Option<Admit>) {
    let handle = move |req| {
        let shared = shared.clone();
        async move { handle(req, &shared).await }
    };
    match (listener, admit) {
        (Listener::Unix(listener), Some(admit)) => {
            let l = Admitting { listener, admit };
            conn::serve(l, conn::Limits::RUNTIME_API, handle).await
        }
        (Listener::Tcp(listener), Some(admit)) => {
            let l = Admitting { listener, admit };
            conn::serve(l, conn::Limits::RUNTIME_API, handle).await
        }
        (Listener::Unix(l), None) => conn::serve(l, conn::Limits::RUNTIME_API, handle).await,
        (Listener::Tcp(l), None) => conn::serve(l, conn::Limits::RUNTIME_API, handle).await,
    }
}

/// A listener that hands on only the connections of processes its [`Admit`] accepts; the others are
/// closed unanswered.
struct Admitting<L> {
    listener: L,
    admit: Admit,
}

impl<L> Admitting<L> {
    /// Runs the check on the blocking pool (it reads `/proc`).
    async fn admits(&self, who: Peer) -> bool {
        let admit = self.admit.clone();
        tokio::task::spawn_blocking(move || admit(who))
            .await
            .unwrap_or(false)
    }
}

impl conn::Accept for Admitting<tokio::net::UnixListener> {
    type Stream = tokio::net::UnixStream;
    async fn accept_one(&self) -> std::io::Result<tokio::net::UnixStream> {
        loop {
            let (stream, _) = self.listener.accept().await?;
            let Some(pid) = stream
                .peer_cred()
                .ok()
                .and_then(|c| c.pid())
                .and_then(|p| u32::try_from(p).ok())
            else {
                continue;
            };
            if self.admits(Peer::Unix { pid }).await {
                return Ok(stream);
            }
        }
    }
}

impl conn::Accept for Admitting<tokio::net::TcpListener> {
    type Stream = tokio::net::TcpStream;
    async fn accept_one(&self) -> std::io::Result<tokio::net::TcpStream> {
        loop {
            let (stream, peer) = self.listener.accept().await?;
            let Ok(local) = stream.local_addr() else {
                continue;
            };
            if self.admits(Peer::Tcp { local, peer }).await {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
        }
    }
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
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
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

/// A posted body, read up to the response limit.
enum Posted {
    Body(Bytes),
    TooLarge(usize),
    Broken(String),
}

/// The largest body of an `init/ready` (one space) or `init/error` (an error) call.
const MAX_INIT_BODY_BYTES: usize = 1024 * 1024;

async fn read_posted(req: Request<Incoming>, limit: usize) -> Posted {
    let limits = conn::Limits::RUNTIME_API;
    let (head, body) = req.into_parts();
    match conn::read_body(&head.headers, body, limit, limits.body_timeout, None).await {
        Ok(b) => Posted::Body(b.bytes),
        Err(conn::BodyError::TooLarge { declared, limit }) => Posted::TooLarge(
            declared
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(limit + 1),
        ),
        Err(e) => Posted::Broken(e.to_string()),
    }
}

/// Waits for an invocation to hand to `next`: the one in flight again, or the next one handed over.
async fn next_invocation(shared: &Shared) -> Option<(InvocationMeta, Bytes)> {
    loop {
        {
            let mut state = shared.lock();
            if let Some(f) = &state.in_flight {
                return Some((f.meta.clone(), f.event.clone()));
            }
            if let Some(d) = state.pending.take() {
                let got = (d.meta.clone(), d.event.clone());
                state.in_flight = Some(InFlight {
                    meta: d.meta,
                    event: d.event,
                    reply: Some(d.reply),
                    answering: false,
                });
                return Some(got);
            }
            if state.closed {
                return None;
            }
        }
        // `notify_one` keeps a permit when no one waits yet, so a hand-over between the check and here is
        // not missed.
        shared.arrived.notified().await;
    }
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
            let _ = read_posted(req, MAX_INIT_BODY_BYTES).await;
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
            let body = match read_posted(req, MAX_INIT_BODY_BYTES).await {
                Posted::Body(b) => b,
                _ => Bytes::new(),
            };
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
            match next_invocation(shared).await {
                Some((meta, event)) => next_answer(shared, &meta, event),
                None => refusal(StatusCode::GONE, "the platform is stopping this instance"),
            }
        }
        Call::Response | Call::Error => {
            let error_type = header_str(&req, headers::LAMBDA_ERROR_TYPE).map(str::to_owned);
            // The invocation is claimed before its body is read: a second result posted meanwhile is refused
            // unread, so an instance holds at most one result's bytes in the platform.
            let claimed = {
                let mut state = shared.lock();
                match state.in_flight.as_mut() {
                    // Lambda names the invocation in the path: a result for another one is refused.
                    Some(f) if path_id.as_ref().is_some_and(|id| *id != f.meta.request_id) => None,
                    Some(f) if f.answering => {
                        return refusal(
                            StatusCode::BAD_REQUEST,
                            "a result for this invocation is being read already; the first result wins",
                        );
                    }
                    Some(f) => {
                        f.answering = true;
                        Some(f.meta.request_id.clone())
                    }
                    None => None,
                }
            };
            let Some(request_id) = claimed else {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    "no invocation is in flight: call next first (a result is accepted once per invocation)",
                );
            };
            let posted = read_posted(req, MAX_RESPONSE_BYTES).await;
            let (mut flight, body) = {
                let mut state = shared.lock();
                let body = match posted {
                    Posted::Body(b) => Ok(b),
                    Posted::TooLarge(n) => Err(n),
                    Posted::Broken(e) => {
                        // Nothing was answered: the invocation waits for a result again.
                        if let Some(f) = state.in_flight.as_mut() {
                            f.answering = false;
                        }
                        return refusal(StatusCode::BAD_REQUEST, &e);
                    }
                };
                match state.in_flight.take() {
                    Some(f) => (f, body),
                    // The platform closed the API meanwhile.
                    None => {
                        return refusal(StatusCode::GONE, "the platform is stopping this instance");
                    }
                }
            };
            let answer = match (body, call, shared.dialect) {
                (Err(n), _, _) => Answer::TooLarge(n),
                (Ok(body), Call::Response, _) => Answer::Response(body),
                (Ok(body), _, Dialect::Scf) => Answer::Error(body),
                (Ok(body), _, Dialect::Lambda) => {
                    let e = lambda_error_to_function_error(&body, error_type.as_deref());
                    Answer::Error(Bytes::from(e.to_body(&request_id)))
                }
            };
            let too_large = matches!(answer, Answer::TooLarge(_));
            if let Some(tx) = flight.reply.take() {
                let _ = tx.send(answer);
            }
            if too_large {
                refusal(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the result is over the 6 MB limit",
                )
            } else {
                reply(accepted, Bytes::new())
            }
        }
    }
}
