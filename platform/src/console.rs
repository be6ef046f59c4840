//! The web console at `/console` on `scf-local serve`: the functions with their configuration and triggers,
//! the instances live, the recent invocations live (each opening its log), the async queues and dead
//! letters, and an invoke form. One page served from the binary (`platform/console/`), nothing fetched from
//! anywhere else.
//!
//! - **Loopback only**: the platform listens on `127.0.0.1`, and the console answers only requests whose
//!   `Host` is a loopback name (a page elsewhere that rebinds its name to 127.0.0.1 gets 403), and takes
//!   `POST`s only from its own origin.
//! - **Behind the signature key** when one is set: a login token, made at start and printed in the banner
//!   as a link (`/console/login?token=…`), sets a cookie; without it the console answers 401. Without a key
//!   the front door checks no signatures, and the console asks for no login either.
//! - **Live**: `GET /console/api/events` is a stream of server-sent events, the platform's [`Events`] as
//!   JSON (a reader that falls behind gets `event: resync` and reloads the snapshot,
//!   `GET /console/api/state`). At most [`MAX_STREAMS`] streams at once.
//! - **Invoking and logs** go through the front door itself (`POST /console/api/call` with the action in
//!   `X-TC-Action`, as any TencentCloud API call, its signature taken as checked by the login).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use scf_store::{LogQuery, now_ms};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::activity::{Events, InstanceView, Invocation};
use crate::config::{FunctionConfig, HttpKind};
use crate::frontdoor::FrontDoor;
use crate::functions::Function;
use crate::http::WebBody;

/// Live event streams served at once.
pub const MAX_STREAMS: usize = 16;
/// Recent invocations the snapshot holds.
const RECENT: i64 = 100;
/// Dead letters the console lists (the newest).
const LETTERS: usize = 100;
/// A comment sent on an idle stream, so a closed page is noticed.
const KEEPALIVE: Duration = Duration::from_secs(15);

const PAGE: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/console.js");
const STYLE: &str = include_str!("../console/console.css");

const COOKIE: &str = "scf_console";

type BodyError = <WebBody as Body>::Error;

/// What the console serves.
#[derive(Debug)]
pub(crate) struct Console {
    pub(crate) door: Arc<FrontDoor>,
    pub(crate) events: Events,
    /// The login token, when the platform verifies signatures.
    pub(crate) token: Option<String>,
    /// `--watch` is on.
    pub(crate) watching: bool,
    pub(crate) started_ms: i64,
    streams: Arc<Semaphore>,
}

impl Console {
    pub(crate) fn new(door: Arc<FrontDoor>, events: Events, watching: bool) -> Console {
        let token = door.credentials.as_ref().map(|_| {
            format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            )
        });
        Console {
            door,
            events,
            token,
            watching,
            started_ms: now_ms(),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        }
    }

    /// The path that opens the console: with the login token when there is one.
    pub(crate) fn entry(&self) -> String {
        match &self.token {
            Some(t) => format!("/console/login?token={t}"),
            None => "/console".into(),
        }
    }

    /// Answers one request under `/console`.
    pub(crate) async fn handle(
        &self,
        req: Request<Incoming>,
        body_timeout: Duration,
    ) -> Response<WebBody> {
        if !loopback_host(&req) {
            return text(
                StatusCode::FORBIDDEN,
                "the console answers requests to 127.0.0.1 or localhost only",
            );
        }
        let path = req.uri().path().to_owned();
        if path == "/console/login" {
            return self.login(&req);
        }
        if !self.logged_in(&req) {
            return html(
                StatusCode::UNAUTHORIZED,
                "<!doctype html><meta charset=utf-8><title>scf-local console</title><p>This console is behind the \
                 platform's signature key: open the login link <code>scf-local serve</code> printed when it started \
                 (<code>…/console/login?token=…</code>).",
            );
        }
        match (req.method(), path.as_str()) {
            (&Method::GET, "/console" | "/console/") => html(StatusCode::OK, PAGE),
            (&Method::GET, "/console/console.js") => {
                asset("text/javascript; charset=utf-8", SCRIPT)
            }
            (&Method::GET, "/console/console.css") => asset("text/css; charset=utf-8", STYLE),
            (&Method::GET, "/console/api/state") => json_response(&self.state().await),
            (&Method::GET, "/console/api/events") => self.stream(),
            (&Method::GET, "/console/api/dlq") => {
                let function = query_param(req.uri().query(), "function").unwrap_or_default();
                self.letters(&function).await
            }
            (&Method::POST, "/console/api/call") => {
                if !same_origin(&req) {
                    return text(StatusCode::FORBIDDEN, "cross-origin calls are refused");
                }
                self.door
                    .handle_trusted(req, body_timeout)
                    .await
                    .map(|b| b.map_err(|e| match e {}).boxed())
            }
            _ => text(StatusCode::NOT_FOUND, "no such page in the console"),
        }
    }

    fn logged_in(&self, req: &Request<Incoming>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        req.headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .any(|(k, v)| k == COOKIE && same(v.as_bytes(), token.as_bytes()))
    }

    fn login(&self, req: &Request<Incoming>) -> Response<WebBody> {
        let given = query_param(req.uri().query(), "token").unwrap_or_default();
        match &self.token {
            Some(t) if !same(given.as_bytes(), t.as_bytes()) => text(
                StatusCode::FORBIDDEN,
                "this login token is not the one scf-local printed",
            ),
            token => {
                let mut r = Response::new(empty());
                *r.status_mut() = StatusCode::SEE_OTHER;
                r.headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_static("/console"));
                if let Some(t) = token
                    && let Ok(v) = HeaderValue::from_str(&format!(
                        "{COOKIE}={t}; Path=/console; HttpOnly; SameSite=Strict"
                    ))
                {
                    r.headers_mut().insert(header::SET_COOKIE, v);
                }
                r
            }
        }
    }

    /// The snapshot the page starts from (and reloads after a `resync`).
    async fn state(&self) -> Value {
        let functions = &self.door.functions;
        let names = functions.names();
        let store = &self.door.store;
        let mut rows = Vec::new();
        let mut instances: Vec<InstanceView> = Vec::new();
        let mut recent: Vec<Invocation> = Vec::new();
        for name in names {
            let Some(function) = functions.get(name) else {
                continue;
            };
            let (config, (views, starting)) = match &function {
                Function::Event(p) => (p.current(), p.snapshot()),
                Function::Http(p) => (p.current(), p.snapshot()),
            };
            instances.extend(views);
            let (queue, letters) = match function {
                Function::Event(_) => (
                    store.queue_len(name).await.unwrap_or(0),
                    store.dead_letters(name).await.map(|l| l.len()).unwrap_or(0),
                ),
                Function::Http(_) => (0, 0),
            };
            let mut q = LogQuery::all(name);
            q.newest_first = true;
            q.limit = RECENT;
            if let Ok(records) = store.logs(q).await {
                recent.extend(records.iter().map(|(_, r)| Invocation::of(r)));
            }
            rows.push(function_json(&config, queue, letters, starting));
        }
        recent.sort_by_key(|i| std::cmp::Reverse(i.start_ms));
        recent.truncate(usize::try_from(RECENT).unwrap_or(100));
        json!({
            "platform": {
                "started_ms": self.started_ms,
                "now_ms": now_ms(),
                "signatures": self.door.credentials.is_some(),
                "watching": self.watching,
            },
            "functions": rows,
            "instances": instances,
            "invocations": recent,
        })
    }

    async fn letters(&self, function: &str) -> Response<WebBody> {
        match self.door.store.dead_letters(function).await {
            Ok(mut letters) => {
                let total = letters.len();
                let skip = total.saturating_sub(LETTERS);
                letters.drain(..skip);
                letters.reverse();
                json_response(&json!({ "total": total, "letters": letters }))
            }
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    }

    /// The live stream: the platform's events as server-sent events.
    fn stream(&self) -> Response<WebBody> {
        let Ok(permit) = self.streams.clone().try_acquire_owned() else {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many console pages are open; close one",
            );
        };
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let mut events = self.events.subscribe();
        tokio::spawn(async move {
            if tx
                .send(Bytes::from_static(
                    b"retry: 2000\nevent: hello\ndata: {}\n\n",
                ))
                .await
                .is_err()
            {
                return;
            }
            loop {
                let frame = tokio::select! {
                    e = events.recv() => match e {
                        Ok(event) => match serde_json::to_string(&*event) {
                            Ok(data) => Bytes::from(format!("data: {data}\n\n")),
                            Err(_) => continue,
                        },
                        Err(RecvError::Lagged(_)) => Bytes::from_static(b"event: resync\ndata: {}\n\n"),
                        Err(RecvError::Closed) => return,
                    },
                    _ = tokio::time::sleep(KEEPALIVE) => Bytes::from_static(b": keepalive\n\n"),
                    _ = tx.closed() => return,
                };
                if tx.send(frame).await.is_err() {
                    return;
                }
            }
        });
        let mut r = Response::new(
            Stream {
                rx,
                _permit: permit,
            }
            .boxed(),
        );
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        r
    }
}

/// A function as the console lists it.
fn function_json(c: &FunctionConfig, queue: usize, letters: usize, starting: usize) -> Value {
    let kind = match c.http.as_ref().map(|h| h.kind) {
        Some(HttpKind::Web) => "web",
        Some(HttpKind::Event) => "image-style event",
        None => "event",
    };
    let triggers: Vec<String> = match c.http.as_ref().map(|h| h.kind) {
        Some(HttpKind::Web) => vec![format!("HTTP /web/{}/", c.name)],
        Some(HttpKind::Event) => vec!["Invoke (sync)".into()],
        None => vec!["Invoke (sync)".into(), "Invoke (async queue)".into()],
    };
    json!({
        "name": c.name,
        "kind": kind,
        "runtime": match c.runtime.env_name() { "" => "auto", r => r },
        "handler": c.handler,
        "memory_mb": c.memory_mb,
        "timeout_s": c.timeout.as_secs_f64(),
        "init_timeout_s": c.init_timeout.as_secs_f64(),
        "namespace": c.namespace,
        "region": c.region,
        "code_dir": c.code_dir.display().to_string(),
        "env_keys": c.env.keys().collect::<Vec<_>>(),
        "concurrency": c.serve.concurrency,
        "provisioned": c.serve.provisioned,
        "idle_timeout_s": c.serve.idle_timeout.as_secs_f64(),
        "retry_num": c.serve.retry_num,
        "msg_ttl_s": c.serve.msg_ttl.as_secs_f64(),
        "instance_concurrency": c.http.as_ref().map_or(1, |h| h.instance_concurrency),
        "triggers": triggers,
        "debug": c.debug.as_ref().map(|d| d.describe(&c.name)),
        "queue": queue,
        "dead_letters": letters,
        "starting": starting,
    })
}

/// A live stream's body: what the forwarding task sends; it ends when the task does.
struct Stream {
    rx: mpsc::Receiver<Bytes>,
    _permit: OwnedSemaphorePermit,
}

impl Body for Stream {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// Whether the request names the platform by a loopback name (`127.0.0.1`, `localhost`, `[::1]`).
fn loopback_host(req: &Request<Incoming>) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    matches!(name, "127.0.0.1" | "localhost" | "::1")
}

/// Whether a `POST` comes from the console's own page: its `Origin` (browsers send one) names the host the
/// request was sent to.
fn same_origin(req: &Request<Incoming>) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    match (req.headers().get(header::ORIGIN).map(|o| o.to_str()), host) {
        (None, _) => true,
        (Some(Ok(origin)), Some(host)) => origin == format!("http://{host}"),
        _ => false,
    }
}

/// Compares two secrets in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn empty() -> WebBody {
    Full::new(Bytes::new()).map_err(|e| match e {}).boxed()
}

fn with_type(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<WebBody> {
    let mut r = Response::new(Full::new(body).map_err(|e: Infallible| match e {}).boxed());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    r
}

fn html(status: StatusCode, page: &'static str) -> Response<WebBody> {
    with_type(
        status,
        "text/html; charset=utf-8",
        Bytes::from_static(page.as_bytes()),
    )
}

fn asset(content_type: &'static str, text: &'static str) -> Response<WebBody> {
    with_type(
        StatusCode::OK,
        content_type,
        Bytes::from_static(text.as_bytes()),
    )
}

fn text(status: StatusCode, message: &str) -> Response<WebBody> {
    with_type(
        status,
        "text/plain; charset=utf-8",
        Bytes::from(format!("{message}\n")),
    )
}

fn json_response(v: &Value) -> Response<WebBody> {
    with_type(
        StatusCode::OK,
        "application/json",
        Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_and_secrets() {
        assert_eq!(
            query_param(Some("a=1&function=hello%2Dpy&b"), "function").as_deref(),
            Some("hello-py")
        );
        assert_eq!(query_param(Some("x=%zz"), "x").as_deref(), Some("%zz"));
        assert_eq!(query_param(None, "x"), None);
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }

    #[test]
    fn the_page_is_whole_and_fetches_nothing_from_elsewhere() {
        for text in [PAGE, SCRIPT, STYLE] {
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "no outside URL"
            );
        }
        assert!(PAGE.contains("console.js") && PAGE.contains("console.css"));
    }
}
