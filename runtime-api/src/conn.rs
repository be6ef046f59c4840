//! The bounds every HTTP server of the platform keeps, in one place: the platform's listener (the
//! TencentCloud-API front door and the web functions' proxy behind it) and each instance's runtime API.
//!
//! - **Heads in time**: a request head must be complete within [`Limits::header_timeout`] of the connection's
//!   opening or of the end of its last answer, so a connection that stalls in its headers, or sits idle, is
//!   closed (hyper's header-read timer, which runs from both moments).
//! - **Heads in size**: at most [`Limits::max_head_bytes`] (hyper answers 431 past it).
//! - **Bodies**: [`read_body`] refuses a declared `Content-Length` over the limit before reading a byte,
//!   counts the rest as it arrives, stops at the limit, and gives up after [`Limits::body_timeout`]; a
//!   [`BodyBudget`] bounds the bytes of large bodies held at once across connections.
//! - **Connections in number**: at most [`Limits::max_connections`] at once. A new connection past the cap
//!   closes the one idle the longest (no request in flight); if every one is busy, the new one is closed.
//!   So idle connections cannot keep a caller out, and a connection's answer is never cut to make room.
//! - **Accept errors** (out of descriptors, say) close the longest-idle connection, which frees one, and back
//!   off from 5 ms doubling to 1 s instead of spinning on a listener that stays readable.

use std::collections::HashMap;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The bounds of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// What the server is, for what it says on stderr (`the front door`).
    pub name: &'static str,
    /// From a connection's opening, or the end of its last answer, until its next request head is complete.
    pub header_timeout: Duration,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// Connections held at once.
    pub max_connections: usize,
    /// The largest request head (request line and headers), bytes.
    pub max_head_bytes: usize,
    /// Whether an answer that is ready while the connection's next request is already read waits for that
    /// request's answer and goes out with it (`hold.rs`): the runtime API's result acknowledgements.
    pub hold_answers: bool,
}

impl Limits {
    /// The platform's listener (front door and web proxy): 30 s for a head or between requests, 30 s for a
    /// body, 256 connections (fewer when the descriptor limit is low: [`Limits::fit_descriptors`]), 64 KB
    /// heads.
    pub const FRONT_DOOR: Limits = Limits {
        name: "the front door",
        header_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_secs(30),
        max_connections: 256,
        max_head_bytes: 64 * 1024,
        hold_answers: false,
    };

    /// One instance's runtime API. An instance's connection is silent while its handler runs (up to the
    /// longest execution timeout, 900 s), so the header timer is longer than that: 960 s. 16 connections
    /// (the shim holds one; a `curl` bootstrap one per call), 60 s for a body, 64 KB heads. A result's
    /// answer to a runtime that pipelines its next `next` goes out with the next invocation.
    pub const RUNTIME_API: Limits = Limits {
        name: "a runtime API",
        header_timeout: Duration::from_secs(960),
        body_timeout: Duration::from_secs(60),
        max_connections: 16,
        max_head_bytes: 64 * 1024,
        hold_answers: true,
    };

    /// At most a quarter of the process's descriptor limit (`RLIMIT_NOFILE`) for connections, so the
    /// instances' pipes, sockets and the database keep the rest; at least 8.
    pub fn fit_descriptors(self) -> Limits {
        match open_files_limit() {
            Some(n) => Limits {
                max_connections: self.max_connections.min((n / 4).max(8)),
                ..self
            },
            None => self,
        }
    }

    /// The HTTP/1 server builder with these bounds.
    fn builder(&self) -> hyper::server::conn::http1::Builder {
        let mut b = hyper::server::conn::http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .max_buf_size(self.max_head_bytes.max(8192))
            .pipeline_flush(self.hold_answers)
            .keep_alive(true);
        b
    }
}

/// The soft limit of open descriptors.
fn open_files_limit() -> Option<usize> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for getrlimit to fill in.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    usize::try_from(lim.rlim_cur).ok()
}

/// A listener whose connections [`serve`] takes.
pub trait Accept: Send + Sync + 'static {
    /// A connection.
    type Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    /// The next connection.
    fn accept_one(&self) -> impl Future<Output = std::io::Result<Self::Stream>> + Send;
}

impl Accept for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept_one(&self) -> std::io::Result<tokio::net::TcpStream> {
        let (stream, _) = self.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

impl Accept for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept_one(&self) -> std::io::Result<tokio::net::UnixStream> {
        Ok(self.accept().await?.0)
    }
}

/// One connection as the registry sees it.
#[derive(Debug)]
struct Conn {
    /// Requests in flight (from the service's call until the answer's body is done).
    busy: AtomicUsize,
    /// When it last became idle, ms since the registry began.
    idle_since: AtomicU64,
    /// Closes it.
    close: Notify,
}

/// The connections a server holds.
#[derive(Debug)]
struct Registry {
    began: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.began.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Room for one more connection: at the cap, the longest-idle one is told to close (and forgotten).
    /// `false` when every connection is busy.
    fn make_room(&self, cap: usize) -> bool {
        let mut conns = self.lock();
        if conns.len() < cap {
            return true;
        }
        self.evict(&mut conns)
    }

    /// Closes the longest-idle connection; `false` if none is idle.
    fn evict(&self, conns: &mut HashMap<u64, Arc<Conn>>) -> bool {
        let victim = conns
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
            // The oldest first among those idle since the same millisecond.
            .min_by_key(|(id, c)| (c.idle_since.load(Ordering::Acquire), **id))
            .map(|(id, _)| *id);
        match victim.and_then(|id| conns.remove(&id)) {
            Some(c) => {
                c.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn register(&self) -> (u64, Arc<Conn>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            close: Notify::new(),
        });
        self.lock().insert(id, conn.clone());
        (id, conn)
    }
}

/// Marks its connection busy while it lives: from the service's call until the answer's body is done.
struct Busy {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Busy {
    fn new(conn: Arc<Conn>, registry: Arc<Registry>) -> Busy {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Busy { conn, registry }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn
            .idle_since
            .store(self.registry.now_ms(), Ordering::Release);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body that keeps its connection busy until it is done (a streamed web answer included).
pub struct Tracked<B> {
    inner: B,
    _busy: Busy,
}

impl<B> std::fmt::Debug for Tracked<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked").finish_non_exhaustive()
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves HTTP/1.1 on `listener` within `limits` until the task is dropped; `handle` answers each request.
pub async fn serve<L, F, Fut, B>(listener: L, limits: Limits, handle: F)
where
    L: Accept,
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let registry = Arc::new(Registry {
        began: Instant::now(),
        next_id: AtomicU64::new(0),
        conns: Mutex::new(HashMap::new()),
    });
    let handle = Arc::new(handle);
    let keep_alive = HeaderValue::from_str(&format!(
        "timeout={}",
        limits.header_timeout.as_secs().max(1)
    ))
    .ok();
    let mut backoff = AcceptBackoff::default();
    loop {
        let stream = match listener.accept_one().await {
            Ok(s) => {
                backoff.recovered(limits.name);
                s
            }
            Err(e) => {
                // Free a descriptor if an idle connection holds one, then wait before trying again.
                registry.evict(&mut registry.lock());
                backoff.failed(limits.name, &e).await;
                continue;
            }
        };
        if !registry.make_room(limits.max_connections) {
            // Every connection is in the middle of a request: this one is refused (closed).
            drop(stream);
            continue;
        }
        let (id, conn) = registry.register();
        let (registry, handle, keep_alive) = (registry.clone(), handle.clone(), keep_alive.clone());
        let builder = limits.builder();
        let answering = crate::hold::Answering::default();
        let hold = limits.hold_answers.then(|| answering.clone());
        tokio::spawn(async move {
            let service = {
                let (conn, registry) = (conn.clone(), registry.clone());
                hyper::service::service_fn(move |req| {
                    let busy = Busy::new(conn.clone(), registry.clone());
                    let (handle, keep_alive) = (handle.clone(), keep_alive.clone());
                    let hold = hold.clone();
                    async move {
                        if let Some(h) = &hold {
                            h.begin();
                        }
                        let mut resp = handle(req).await;
                        if let Some(h) = &hold {
                            h.end(resp.status().is_success());
                        }
                        if let Some(v) = keep_alive {
                            resp.headers_mut()
                                .insert(hyper::header::HeaderName::from_static("keep-alive"), v);
                        }
                        Ok::<_, std::convert::Infallible>(
                            resp.map(|inner| Tracked { inner, _busy: busy }),
                        )
                    }
                })
            };
            let stream = crate::hold::Held::new(stream, answering);
            let served = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = served => {}
                // Evicted to make room: dropping the connection closes it.
                _ = conn.close.notified() => {}
            }
            registry.lock().remove(&id);
        });
    }
}

/// Waits longer after each failed accept (5 ms doubling to 1 s) and says so on stderr once per episode.
#[derive(Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    async fn failed(&mut self, name: &str, e: &std::io::Error) {
        if self.failures == 0 {
            let _ = writeln!(
                std::io::stderr(),
                "scf-local: {name} cannot accept connections ({e}); backing off until it can"
            );
        }
        self.failures = self.failures.saturating_add(1);
        let wait = Duration::from_millis(5u64 << self.failures.min(8)).min(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
    }

    fn recovered(&mut self, name: &str) {
        if self.failures > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "scf-local: {name} accepts connections again after {} failed tries",
                self.failures
            );
        }
        self.failures = 0;
    }
}

/// Bytes of large request bodies the server may hold at once, across connections. The first
/// [`BodyBudget::FREE`] bytes of each body are not counted (the connection cap bounds them).
#[derive(Debug, Clone)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    bytes: usize,
}

impl BodyBudget {
    /// What each body may hold without taking from the budget.
    pub const FREE: usize = 64 * 1024;

    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> BodyBudget {
        BodyBudget {
            permits: Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))),
            bytes,
        }
    }

    /// The budget's size.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    async fn take(&self, n: usize, held: &mut Option<OwnedSemaphorePermit>) -> bool {
        let n = u32::try_from(n.min(self.bytes)).unwrap_or(u32::MAX);
        match self.permits.clone().acquire_many_owned(n).await {
            Ok(p) => {
                match held {
                    Some(h) => h.merge(p),
                    None => *held = Some(p),
                }
                true
            }
            Err(_) => false,
        }
    }
}

/// A request body read whole; the part of the budget it holds is given back when it is dropped.
#[derive(Debug)]
pub struct ReadBody {
    /// The bytes.
    pub bytes: Bytes,
    _held: Option<OwnedSemaphorePermit>,
}

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Over the limit: declared so (nothing was read), or found so while reading (reading stopped there).
    #[error("the body is {} bytes; the limit is {limit} bytes", match .declared { Some(n) => n.to_string(), None => format!("more than {limit}") })]
    TooLarge {
        /// The declared `Content-Length`, if it was over the limit.
        declared: Option<u64>,
        /// The limit.
        limit: usize,
    },
    /// The body did not arrive within the timeout (or the budget had no room for it in that time).
    #[error("the body did not arrive within {} s", .0.as_secs_f64())]
    TimedOut(Duration),
    /// The connection failed while the body was read.
    #[error("reading the body: {0}")]
    Broken(String),
}

/// The declared `Content-Length` of a request.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(hyper::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads a request's body (its `headers` and `body`) up to `limit` bytes within `timeout`: a declared length over the limit is refused
/// before reading; otherwise bytes are counted as they arrive and reading stops at the limit. With a
/// `budget`, a body past [`BodyBudget::FREE`] bytes takes its size from it first (waiting, within the
/// timeout, for room).
pub async fn read_body(
    headers: &HeaderMap,
    mut body: Incoming,
    limit: usize,
    timeout: Duration,
    budget: Option<&BodyBudget>,
) -> Result<ReadBody, BodyError> {
    let declared = content_length(headers);
    if let Some(n) = declared
        && n > limit as u64
    {
        return Err(BodyError::TooLarge {
            declared: Some(n),
            limit,
        });
    }
    let read = async {
        let mut held = None;
        let declared = declared.and_then(|n| usize::try_from(n).ok());
        if let (Some(b), Some(n)) = (budget, declared)
            && n > BodyBudget::FREE
            && !b.take(n - BodyBudget::FREE, &mut held).await
        {
            return Err(BodyError::Broken("the body budget is closed".into()));
        }
        let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let before = buf.len();
            if before + data.len() > limit {
                return Err(BodyError::TooLarge {
                    declared: None,
                    limit,
                });
            }
            // A body without a declared length takes from the budget as it grows past the free part.
            if declared.is_none()
                && let Some(b) = budget
            {
                let counted = (before + data.len()).saturating_sub(BodyBudget::FREE);
                let already = before.saturating_sub(BodyBudget::FREE);
                if counted > already && !b.take(counted - already, &mut held).await {
                    return Err(BodyError::Broken("the body budget is closed".into()));
                }
            }
            buf.extend_from_slice(&data);
        }
        Ok(ReadBody {
            bytes: buf.freeze(),
            _held: held,
        })
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(BodyError::TimedOut(timeout)),
    }
}
