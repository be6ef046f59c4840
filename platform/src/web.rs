//! Web functions and image-style event functions (`docs/web.md`, `docs/scf-platform.md` §7).
//!
//! The instance is the function's own HTTP server: the code directory's executable `scf_bootstrap` (or
//! `inputs.image.command`), listening on port 9000. InitFunction ends when the port accepts a connection.
//!
//! - A web function's requests arrive at the front door as `/web/<function>/<path>` and are proxied to the
//!   instance as `/<path>` with hyper, streaming both ways, with the `X-Scf-*` headers added.
//! - An image-style event function gets each `Invoke` as `POST /event-invoke` (the event is the body, the
//!   context is in the `X-Scf-*` headers); the answer's status says success (2xx) or an error.
//!
//! One instance takes up to `instanceConcurrencyConfig.maxConcurrency` requests at once (1 by default). A
//! timeout fails only its own request (with a single-request instance the instance is killed, as for event
//! functions); a memory overrun or an exit fails every request on the instance.

mod netns;

use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use scf_protocol::limits::MAX_SYNC_EVENT_BYTES;
use scf_protocol::{ErrorKind, FunctionError, MAX_RESPONSE_BYTES};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

pub use netns::NetMode;

use crate::config::{FunctionConfig, HttpFunction, HttpKind};
use crate::frontdoor::{ApiError, FrontDoor, api_error, result_json};
use crate::instance::{InstanceDir, Platform, StartFailure};
use crate::logs::{self, Capture, ColdStart, RequestLog};
use crate::scheduler::Finished;
use crate::store::{LogRecord, Store, now_ms};

/// The port every instance listens on, as on the cloud.
pub const WEB_PORT: u16 = 9000;
/// Largest response head (status line and headers) a web function may send.
pub const MAX_RESPONSE_HEADER_BYTES: usize = 4 * 1024;
/// How often an instance's memory is sampled (its whole process group).
const MEMORY_SAMPLE: Duration = Duration::from_millis(50);
/// How often the platform tries the port during InitFunction.
const PORT_POLL: Duration = Duration::from_millis(2);
/// How long a failed exchange waits to learn whether the instance died.
const DEATH_GRACE: Duration = Duration::from_millis(300);

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of the front door's answers.
pub type WebBody = BoxBody<Bytes, BoxError>;

/// How instances get their port in this platform (probed once).
pub fn net_mode() -> &'static NetMode {
    netns::mode()
}

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

/// Hop-by-hop headers: they belong to one connection and are not forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// How the platform reaches an instance's port.
#[derive(Debug)]
enum Reach {
    /// From inside the instance's network namespace.
    Namespace(netns::Connector),
    /// On the machine's loopback.
    Loopback,
}

/// One running instance: its server process (watched by a monitor task), its port and its connections.
#[derive(Debug)]
struct WebInstance {
    pgid: i32,
    port: u16,
    reach: Reach,
    /// Idle keep-alive connections to the server.
    conns: Mutex<Vec<SendRequest<WebBody>>>,
    capture: Capture,
    /// Set once, when the instance is gone: why.
    dead: watch::Receiver<Option<FunctionError>>,
    /// Why the platform killed it (read by the monitor when the process ends).
    killed: Arc<Mutex<Option<FunctionError>>>,
    /// No request has used it yet: the next one gets the Init Report.
    fresh: AtomicBool,
    /// The platform killed it: it takes no more requests (even before its exit is noticed).
    retired: AtomicBool,
    /// The process group's resident memory at the monitor's last sample, bytes.
    mem: Arc<AtomicU64>,
    cold: ColdStart,
    ready_mem: u64,
    _dir: InstanceDir,
}

impl Drop for WebInstance {
    fn drop(&mut self) {
        kill_group(self.pgid);
    }
}

fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) on the process group of an instance this platform started; no memory involved.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

impl WebInstance {
    fn is_dead(&self) -> bool {
        self.retired.load(Ordering::SeqCst) || self.dead.borrow().is_some()
    }

    /// Kills the instance for `why`; every request on it fails with that error.
    fn kill(&self, why: FunctionError) {
        self.retired.store(true, Ordering::SeqCst);
        if let Ok(mut k) = self.killed.lock() {
            k.get_or_insert(why);
        }
        kill_group(self.pgid);
    }

    async fn connect(&self) -> std::io::Result<tokio::net::TcpStream> {
        let stream = match &self.reach {
            Reach::Namespace(c) => c.connect(self.port).await?,
            Reach::Loopback => {
                tokio::net::TcpStream::connect(std::net::SocketAddr::from((
                    [127, 0, 0, 1],
                    self.port,
                )))
                .await?
            }
        };
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// An idle keep-alive connection, or a new one.
    async fn sender(&self) -> Result<SendRequest<WebBody>, String> {
        while let Some(s) = self.conns.lock().ok().and_then(|mut c| c.pop()) {
            if s.is_ready() {
                return Ok(s);
            }
        }
        let stream = self
            .connect()
            .await
            .map_err(|e| format!("connecting to the instance's port {}: {e}", self.port))?;
        handshake(stream).await
    }

    fn put_back(&self, sender: SendRequest<WebBody>) {
        if sender.is_ready()
            && let Ok(mut c) = self.conns.lock()
        {
            c.push(sender);
        }
    }

    /// Waits until the instance is gone; returns why.
    async fn died(&self) -> FunctionError {
        let mut dead = self.dead.clone();
        match dead.wait_for(Option::is_some).await {
            Ok(d) => d
                .clone()
                .unwrap_or_else(|| FunctionError::internal("the instance is gone")),
            Err(_) => FunctionError::internal("the instance is gone"),
        }
    }
}

async fn handshake(stream: tokio::net::TcpStream) -> Result<SendRequest<WebBody>, String> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with the instance: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

struct Slots {
    instance: Arc<WebInstance>,
    busy: usize,
    since: Instant,
}

/// The instances of one web or image-style function.
pub struct WebPool {
    /// The function's definition.
    pub config: FunctionConfig,
    http: HttpFunction,
    work_dir: PathBuf,
    store: Arc<Store>,
    permits: Arc<Semaphore>,
    instances: Mutex<Vec<Slots>>,
}

impl std::fmt::Debug for WebPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebPool")
            .field("function", &self.config.name)
            .finish_non_exhaustive()
    }
}

/// One request's hold on an instance and on the function's concurrency; released when dropped.
struct Slot {
    pool: Arc<WebPool>,
    instance: Arc<WebInstance>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut all) = self.pool.instances.lock() {
            let dead = self.instance.is_dead();
            all.retain_mut(|s| {
                if Arc::ptr_eq(&s.instance, &self.instance) {
                    s.busy = s.busy.saturating_sub(1);
                    s.since = Instant::now();
                    !dead
                } else {
                    true
                }
            });
        }
    }
}

impl WebPool {
    /// A pool for `config` (which must have `http` settings), with no instances yet.
    pub fn new(
        config: FunctionConfig,
        platform: &Platform,
        store: Arc<Store>,
    ) -> Option<Arc<WebPool>> {
        let http = config.http.clone()?;
        Some(Arc::new(WebPool {
            permits: Arc::new(Semaphore::new(config.serve.concurrency)),
            config,
            http,
            work_dir: platform.work_dir.clone(),
            store,
            instances: Mutex::new(Vec::new()),
        }))
    }

    /// Whether it is a web function (else an image-style event function).
    pub fn is_web(&self) -> bool {
        self.http.kind == HttpKind::Web
    }

    /// Requests one instance takes at once.
    pub fn instance_concurrency(&self) -> usize {
        self.http.instance_concurrency
    }

    /// Instances running now.
    pub fn instance_count(&self) -> usize {
        self.instances.lock().map(|i| i.len()).unwrap_or(0)
    }

    /// Stops instances idle for longer than the idle timeout, and forgets dead ones.
    pub fn reap_idle(&self) {
        let timeout = self.config.serve.idle_timeout;
        let gone: Vec<Slots> = match self.instances.lock() {
            Ok(mut all) => {
                let (old, keep): (Vec<Slots>, Vec<Slots>) =
                    std::mem::take(&mut *all).into_iter().partition(|s| {
                        s.busy == 0 && (s.instance.is_dead() || s.since.elapsed() >= timeout)
                    });
                *all = keep;
                old
            }
            Err(_) => Vec::new(),
        };
        for s in gone {
            kill_group(s.instance.pgid);
        }
    }

    /// Kills every instance (shutdown).
    pub fn kill_all(&self) {
        if let Ok(mut all) = self.instances.lock() {
            for s in all.drain(..) {
                kill_group(s.instance.pgid);
            }
        }
    }

    /// An instance with a free request slot (a running one, else a new one), and whether it is fresh.
    async fn acquire(
        self: &Arc<Self>,
        permit: OwnedSemaphorePermit,
    ) -> Result<(Slot, bool), StartFailure> {
        let found = self.instances.lock().ok().and_then(|mut all| {
            all.iter_mut()
                .filter(|s| !s.instance.is_dead() && s.busy < self.http.instance_concurrency)
                .max_by_key(|s| s.busy)
                .map(|s| {
                    s.busy += 1;
                    s.instance.clone()
                })
        });
        let instance = match found {
            Some(i) => i,
            None => {
                let i = Arc::new(self.start().await?);
                if let Ok(mut all) = self.instances.lock() {
                    all.push(Slots {
                        instance: i.clone(),
                        busy: 1,
                        since: Instant::now(),
                    });
                }
                i
            }
        };
        let fresh = instance.fresh.swap(false, Ordering::SeqCst);
        Ok((
            Slot {
                pool: self.clone(),
                instance,
                _permit: permit,
            },
            fresh,
        ))
    }

    /// Starts an instance and waits until its port accepts a connection.
    async fn start(&self) -> Result<WebInstance, StartFailure> {
        let mut cold = ColdStart::default();
        let fail = StartFailure::early;
        let t0 = Instant::now();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let c = &self.config;
        let command = &self.http.command;

        // PullCode: the code, the start file, the private directory, the port.
        if command.components().count() > 1 || command.is_absolute() {
            let meta = std::fs::metadata(command);
            let executable = meta
                .as_ref()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            match executable {
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
        let dir = InstanceDir::create(&self.work_dir, &id).map_err(|e| {
            fail(
                FunctionError::internal(format!("creating the instance directory: {e}")),
                cold,
            )
        })?;
        let mode = net_mode();
        let port = match mode {
            NetMode::Namespace => WEB_PORT,
            NetMode::SharedPort(_) => free_port().map_err(|e| {
                fail(
                    FunctionError::internal(format!("finding a free port: {e}")),
                    cold,
                )
            })?,
        };
        let (log_write, capture) =
            logs::pipe().map_err(|e| fail(FunctionError::internal(e.to_string()), cold))?;
        cold.pull_code = t0.elapsed();

        // InitRuntime: the process starts. InitFunction: until its port accepts a connection.
        let mut cmd = Command::new(command);
        cmd.args(&self.http.args)
            .current_dir(&c.code_dir)
            .env("PORT", port.to_string())
            .env("SCF_RUNTIME", "web")
            .envs(c.instance_env(&dir.0.join("tmp")))
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        if *mode == NetMode::Namespace {
            // SAFETY: the closure runs in the forked child before exec and makes only system calls.
            unsafe { cmd.pre_exec(netns::enter_new) };
        }
        logs::attach(&mut cmd, log_write)
            .map_err(|e| fail(FunctionError::internal(format!("log pipe: {e}")), cold))?;
        let spawned = Instant::now();
        let mut child = cmd.spawn().map_err(|e| {
            fail(
                bootstrap_error(format!("cannot start {}: {e}", command.display())),
                cold,
            )
        })?;
        drop(cmd); // closes our copies of the pipe's write end
        cold.init_runtime = spawned.elapsed();
        let pid = child.id().unwrap_or(0);
        let pgid = i32::try_from(pid).unwrap_or(0);
        let reach = match mode {
            NetMode::Namespace => match netns::Connector::new(pid) {
                Ok(c) => Reach::Namespace(c),
                Err(e) => {
                    // A server that exited at once leaves no namespace to join.
                    let error = match tokio::time::timeout(DEATH_GRACE, child.wait()).await {
                        Ok(status) => bootstrap_error(format!(
                            "the instance exited before it listened on port {port} ({})",
                            describe_exit(status.ok())
                        )),
                        Err(_) => FunctionError::internal(format!(
                            "joining the instance's network namespace: {e}"
                        )),
                    };
                    kill_group(pgid);
                    let _ = child.wait().await;
                    capture.wait_closed(Duration::from_millis(200)).await;
                    return Err(StartFailure {
                        error,
                        lines: capture.take_lines(true),
                        cold,
                    });
                }
            },
            NetMode::SharedPort(_) => Reach::Loopback,
        };
        let (dead_tx, dead_rx) = watch::channel(None);
        let mut instance = WebInstance {
            pgid,
            port,
            reach,
            conns: Mutex::new(Vec::new()),
            capture,
            dead: dead_rx,
            killed: Arc::new(Mutex::new(None)),
            fresh: AtomicBool::new(true),
            retired: AtomicBool::new(false),
            mem: Arc::new(AtomicU64::new(0)),
            cold,
            ready_mem: 0,
            _dir: dir,
        };
        let listening = Instant::now();
        let deadline = tokio::time::sleep(c.init_timeout);
        tokio::pin!(deadline);
        let failure = loop {
            tokio::select! {
                biased;
                status = child.wait() => break bootstrap_error(format!(
                    "the instance exited before it listened on port {port} ({})",
                    describe_exit(status.ok())
                )),
                _ = &mut deadline => break port_binding_failed(port, c.init_timeout),
                conn = instance.connect() => match conn {
                    Ok(stream) => match handshake(stream).await {
                        Ok(sender) => {
                            if let Ok(mut conns) = instance.conns.lock() {
                                conns.push(sender);
                            }
                            instance.cold.init_function = listening.elapsed();
                            instance.ready_mem = group_rss(pgid);
                            instance.mem.store(instance.ready_mem, Ordering::Relaxed);
                            let limit = u64::from(c.memory_mb) * 1024 * 1024;
                            tokio::spawn(monitor(child, pgid, limit, c.memory_mb, dead_tx, instance.killed.clone(), instance.mem.clone()));
                            return Ok(instance);
                        }
                        Err(e) => break FunctionError::internal(e),
                    },
                    Err(_) => tokio::time::sleep(PORT_POLL).await,
                },
            }
        };
        kill_group(pgid);
        let _ = child.wait().await;
        instance
            .capture
            .wait_closed(Duration::from_millis(200))
            .await;
        let mut cold = instance.cold;
        cold.init_function = listening.elapsed();
        Err(StartFailure {
            error: failure,
            lines: instance.capture.take_lines(true),
            cold,
        })
    }

    fn scf_headers(&self, request_id: &str) -> Vec<(&'static str, String)> {
        let c = &self.config;
        vec![
            ("x-scf-request-id", request_id.to_owned()),
            ("x-scf-memory", c.memory_mb.to_string()),
            ("x-scf-timeout", c.timeout.as_millis().to_string()),
            ("x-scf-version", "$LATEST".to_owned()),
            ("x-scf-name", c.name.clone()),
            ("x-scf-namespace", c.namespace.clone()),
            ("x-scf-region", c.region.clone()),
            ("x-scf-appid", "1250000000".to_owned()),
            ("x-scf-uin", "100000000001".to_owned()),
        ]
    }

    /// Sends `req` on the slot's instance and waits for the response head, within `deadline`.
    async fn exchange(
        &self,
        slot: &Slot,
        req: Request<WebBody>,
        deadline: tokio::time::Instant,
        abort: impl Future<Output = FunctionError>,
    ) -> Result<(Response<Incoming>, SendRequest<WebBody>), FunctionError> {
        let instance = &slot.instance;
        let work = async {
            let mut sender = instance.sender().await?;
            match sender.send_request(req).await {
                Ok(r) => Ok((r, sender)),
                Err(e) => Err(format!("{e}")),
            }
        };
        tokio::select! {
            biased;
            e = abort => Err(e),
            r = work => match r {
                Ok(ok) => Ok(ok),
                Err(why) => {
                    // The connection failed: if the instance died, that is the error.
                    match tokio::time::timeout(DEATH_GRACE, instance.died()).await {
                        Ok(e) => Err(e),
                        Err(_) => Err(FunctionError::new(
                            ErrorKind::UnhandledError,
                            "the function's server closed the connection without an answer",
                            why,
                        )),
                    }
                }
            },
            _ = tokio::time::sleep_until(deadline) => Err(self.timed_out(instance)),
            e = instance.died() => Err(e),
        }
    }

    /// The 433 of a request past the timeout; an instance that takes one request at a time is killed.
    fn timed_out(&self, instance: &WebInstance) -> FunctionError {
        let e = FunctionError::timeout(self.config.timeout.as_secs_f64(), false);
        if self.http.instance_concurrency == 1 {
            instance.kill(e.clone());
        }
        e
    }

    fn record(&self, request_id: &str, start_ms: i64, log: &RequestLog, outcome: &Outcome) {
        let (ret_code, ret_msg) = match &outcome.result {
            Ok(msg) => (0, msg.clone()),
            Err(e) => (i64::from(e.kind.status_code()), e.to_body(request_id)),
        };
        let _ = self.store.insert_log(&LogRecord {
            function: self.config.name.clone(),
            request_id: request_id.to_owned(),
            start_ms,
            duration_ms: outcome.duration.as_secs_f64() * 1000.0,
            mem_usage: i64::try_from(outcome.mem_usage).unwrap_or(i64::MAX),
            ret_code,
            ret_msg,
            log: log.text(),
            invocation_type: "RequestResponse".to_owned(),
            retry_num: 0,
        });
    }

    /// Closes a request's log (its instance's output so far, the closing lines) and stores it.
    fn close(
        &self,
        request_id: &str,
        start_ms: i64,
        mut log: RequestLog,
        instance: Option<&WebInstance>,
        outcome: &Outcome,
    ) -> RequestLog {
        if let Some(i) = instance {
            log.user_lines(i.capture.take_lines(i.is_dead()));
        }
        let shown = match &outcome.result {
            Ok(msg) => Ok(msg.clone().into_bytes()),
            Err(e) => Err(e.to_body(request_id)),
        };
        log.finish(
            request_id,
            &shown,
            outcome.duration,
            self.config.memory_mb,
            outcome.mem_usage,
        );
        self.record(request_id, start_ms, &log, outcome);
        log
    }

    fn open_log(&self, request_id: &str, fresh: bool, instance: &WebInstance) -> RequestLog {
        let mut log = RequestLog::start(request_id);
        if fresh {
            log.init_report(
                request_id,
                &instance.cold,
                self.config.memory_mb,
                instance.ready_mem,
            );
            log.user_lines(vec![format!("Network: {}", net_mode().describe())]);
        }
        log
    }

    /// A request that failed before reaching an instance, or whose instance did not start.
    fn refuse(
        &self,
        request_id: &str,
        start_ms: i64,
        error: FunctionError,
        failure: Option<StartFailure>,
    ) -> (FunctionError, RequestLog) {
        let mut log = RequestLog::start(request_id);
        if let Some(f) = &failure {
            log.init_report(request_id, &f.cold, self.config.memory_mb, 0);
            log.user_lines(f.lines.clone());
        }
        let outcome = Outcome {
            result: Err(error.clone()),
            duration: Duration::ZERO,
            mem_usage: 0,
        };
        let log = self.close(request_id, start_ms, log, None, &outcome);
        (error, log)
    }

    /// Proxies one HTTP request to the function (`path` is what the function sees: `/<path>?<query>`).
    pub async fn handle(self: &Arc<Self>, req: Request<Incoming>, path: &str) -> Response<WebBody> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let start_ms = now_ms();
        if let Some(len) = content_length(req.headers())
            && len > MAX_SYNC_EVENT_BYTES as u64
        {
            let (e, _) = self.refuse(&request_id, start_ms, request_too_large(len), None);
            return error_response(&request_id, &e);
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            let e = FunctionError::new(
                ErrorKind::ConcurrencyLimit,
                format!("Resource limit exceed for function [{}]", self.config.name),
                "",
            );
            let (e, _) = self.refuse(&request_id, start_ms, e, None);
            return error_response(&request_id, &e);
        };
        let (slot, fresh) = match self.acquire(permit).await {
            Ok(s) => s,
            Err(f) => {
                let (e, _) = self.refuse(&request_id, start_ms, f.error.clone(), Some(f));
                return error_response(&request_id, &e);
            }
        };
        let log = self.open_log(&request_id, fresh, &slot.instance);
        let started = Instant::now(); // the duration does not include the cold start

        let (parts, body) = req.into_parts();
        let too_large = Arc::new(tokio::sync::Notify::new());
        let body = Upstream {
            inner: body,
            seen: 0,
            too_large: too_large.clone(),
        };
        let mut up = Request::builder().method(parts.method).uri(path);
        if let Some(h) = up.headers_mut() {
            copy_headers(&parts.headers, h);
            for (k, v) in self.scf_headers(&request_id) {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(HeaderName::from_static(k), v);
                }
            }
        }
        let up = match up.body(body.boxed()) {
            Ok(r) => r,
            Err(e) => {
                return self.fail(
                    &request_id,
                    start_ms,
                    started,
                    log,
                    slot,
                    FunctionError::new(ErrorKind::InvalidParameter, format!("{e}"), ""),
                );
            }
        };
        let deadline = tokio::time::Instant::from_std(started + self.config.timeout);
        let over = async {
            too_large.notified().await;
            request_too_large(MAX_SYNC_EVENT_BYTES as u64 + 1)
        };
        let (resp, sender) = match self.exchange(&slot, up, deadline, over).await {
            Ok(r) => r,
            Err(e) => return self.fail(&request_id, start_ms, started, log, slot, e),
        };
        let (parts, body) = resp.into_parts();
        let head = head_size(&parts.headers);
        if head > MAX_RESPONSE_HEADER_BYTES {
            let e = FunctionError::new(
                ErrorKind::ResponseTooLarge,
                "The size of response headers exceeds the upper limit (4KB)",
                format!("{head} bytes of headers"),
            );
            return self.fail(&request_id, start_ms, started, log, slot, e);
        }
        if let Some(len) = content_length(&parts.headers)
            && len > MAX_RESPONSE_BYTES as u64
        {
            let e = FunctionError::response_too_large(usize::try_from(len).unwrap_or(usize::MAX));
            return self.fail(&request_id, start_ms, started, log, slot, e);
        }
        let status = parts.status;
        let mut out = Response::builder().status(status).version(parts.version);
        if let Some(h) = out.headers_mut() {
            copy_headers(&parts.headers, h);
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                h.insert(HeaderName::from_static("x-scf-request-id"), v);
            }
        }
        let down = Downstream {
            inner: body,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            sent: 0,
            finish: Some(Finish {
                request_id: request_id.clone(),
                start_ms,
                started,
                log,
                slot,
                status,
                sender: Some(sender),
            }),
        };
        out.body(down.boxed())
            .unwrap_or_else(|_| Response::new(empty()))
    }

    fn fail(
        &self,
        request_id: &str,
        start_ms: i64,
        started: Instant,
        log: RequestLog,
        slot: Slot,
        e: FunctionError,
    ) -> Response<WebBody> {
        let outcome = Outcome {
            result: Err(e.clone()),
            duration: started.elapsed(),
            mem_usage: slot.instance.mem.load(Ordering::Relaxed),
        };
        self.close(request_id, start_ms, log, Some(&slot.instance), &outcome);
        drop(slot);
        error_response(request_id, &e)
    }

    /// Runs one event on an image-style event function: `POST /event-invoke`.
    pub async fn invoke_event(self: &Arc<Self>, request_id: &str, event: Bytes) -> Finished {
        let start_ms = now_ms();
        let finished =
            |result: Result<Bytes, FunctionError>, log: &RequestLog, mem: u64, duration| Finished {
                request_id: request_id.to_owned(),
                result: result.map_err(|e| (e.kind, Bytes::from(e.to_body(request_id)))),
                log: log.text(),
                duration,
                mem_usage: mem,
                cold: false,
            };
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            let e = FunctionError::new(
                ErrorKind::ConcurrencyLimit,
                format!("Resource limit exceed for function [{}]", self.config.name),
                "",
            );
            let (e, log) = self.refuse(request_id, start_ms, e, None);
            return finished(Err(e), &log, 0, Duration::ZERO);
        };
        let (slot, fresh) = match self.acquire(permit).await {
            Ok(s) => s,
            Err(f) => {
                let (e, log) = self.refuse(request_id, start_ms, f.error.clone(), Some(f));
                let mut done = finished(Err(e), &log, 0, Duration::ZERO);
                done.cold = true;
                return done;
            }
        };
        let log = self.open_log(request_id, fresh, &slot.instance);
        let started = Instant::now(); // the duration does not include the cold start
        let mut req = Request::post("/event-invoke");
        if let Some(h) = req.headers_mut() {
            h.insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            for (k, v) in self.scf_headers(request_id) {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(HeaderName::from_static(k), v);
                }
            }
        }
        let deadline = tokio::time::Instant::from_std(started + self.config.timeout);
        let result = match req.body(Full::new(event).map_err(|e| match e {}).boxed()) {
            Err(e) => Err(FunctionError::internal(e.to_string())),
            Ok(req) => match self
                .exchange(&slot, req, deadline, std::future::pending())
                .await
            {
                Err(e) => Err(e),
                Ok((resp, sender)) => {
                    let status = resp.status();
                    let body = tokio::select! {
                        b = Limited::collect(resp.into_body()) => b.map_err(|e| e.into_error()),
                        _ = tokio::time::sleep_until(deadline) => Err(self.timed_out(&slot.instance)),
                        e = slot.instance.died() => Err(e),
                    };
                    match body {
                        Ok(body) => {
                            slot.instance.put_back(sender);
                            if status.is_success() {
                                Ok(body)
                            } else {
                                Err(event_error(request_id, status, &body))
                            }
                        }
                        Err(e) => Err(e),
                    }
                }
            },
        };
        let mem = slot.instance.mem.load(Ordering::Relaxed);
        let outcome = Outcome {
            result: result
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .map_err(Clone::clone),
            duration: started.elapsed(),
            mem_usage: mem,
        };
        let log = self.close(request_id, start_ms, log, Some(&slot.instance), &outcome);
        let mut done = finished(result, &log, mem, outcome.duration);
        done.cold = fresh;
        done
    }
}

/// What one request came to, for its log and its record.
struct Outcome {
    /// The log's `RetMsg` (the HTTP status of a web function's answer, the result of an event), or the error.
    result: Result<String, FunctionError>,
    duration: Duration,
    mem_usage: u64,
}

/// The error of an image-style event function that answered with a non-2xx status: the canonical error body
/// it sent, else its text as an unhandled error.
fn event_error(request_id: &str, status: StatusCode, body: &[u8]) -> FunctionError {
    match FunctionError::from_body(body) {
        Some((e, _)) => e,
        None => {
            let _ = request_id;
            FunctionError::new(
                ErrorKind::UnhandledError,
                scf_protocol::error::USER_CODE_EXCEPTION,
                format!("HTTP {status}: {}", String::from_utf8_lossy(body)),
            )
        }
    }
}

/// A body collected up to the response limit.
struct Limited;

enum CollectError {
    TooLarge(usize),
    Broken(String),
}

impl CollectError {
    fn into_error(self) -> FunctionError {
        match self {
            CollectError::TooLarge(n) => FunctionError::response_too_large(n),
            CollectError::Broken(why) => FunctionError::new(
                ErrorKind::UnhandledError,
                "the function's server closed the connection during its answer",
                why,
            ),
        }
    }
}

impl Limited {
    async fn collect(mut body: Incoming) -> Result<Bytes, CollectError> {
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| CollectError::Broken(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                if buf.len() > MAX_RESPONSE_BYTES {
                    return Err(CollectError::TooLarge(buf.len()));
                }
            }
        }
        Ok(buf.freeze())
    }
}

/// The caller's request body on its way to the instance, cut off past 6 MB.
struct Upstream {
    inner: Incoming,
    seen: usize,
    too_large: Arc<tokio::sync::Notify>,
}

impl Body for Upstream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    self.seen += d.len();
                    if self.seen > MAX_SYNC_EVENT_BYTES {
                        self.too_large.notify_one();
                        return Poll::Ready(Some(Err("the request body is over 6 MB".into())));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What closes a proxied request once its response body has been sent (or has failed, or was dropped).
struct Finish {
    request_id: String,
    start_ms: i64,
    started: Instant,
    log: RequestLog,
    slot: Slot,
    status: StatusCode,
    sender: Option<SendRequest<WebBody>>,
}

impl Finish {
    fn done(mut self, error: Option<FunctionError>) {
        let pool = self.slot.pool.clone();
        let instance = self.slot.instance.clone();
        let ok = error.is_none();
        let outcome = Outcome {
            result: match error {
                None => Ok(format!("HTTP {}", self.status.as_u16())),
                Some(e) => Err(e),
            },
            duration: self.started.elapsed(),
            mem_usage: instance.mem.load(Ordering::Relaxed),
        };
        let log = std::mem::take(&mut self.log);
        pool.close(
            &self.request_id,
            self.start_ms,
            log,
            Some(&instance),
            &outcome,
        );
        if ok && let Some(sender) = self.sender.take() {
            instance.put_back(sender);
        }
    }
}

/// The instance's response body on its way to the caller: streamed, cut off past 6 MB or at the timeout.
struct Downstream {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    sent: usize,
    finish: Option<Finish>,
}

impl Downstream {
    fn end(&mut self, error: Option<FunctionError>) {
        if let Some(f) = self.finish.take() {
            f.done(error);
        }
    }
}

impl Body for Downstream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.finish.is_none() {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let e = match &self.finish {
                Some(f) => f.slot.pool.timed_out(&f.slot.instance),
                None => FunctionError::timeout(0.0, false),
            };
            self.end(Some(e));
            return Poll::Ready(Some(Err("the function's execution timeout passed".into())));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    self.sent += d.len();
                    if self.sent > MAX_RESPONSE_BYTES {
                        let n = self.sent;
                        self.end(Some(FunctionError::response_too_large(n)));
                        return Poll::Ready(Some(Err("the response body is over 6 MB".into())));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.end(Some(FunctionError::new(
                    ErrorKind::UnhandledError,
                    "the function's server closed the connection during its answer",
                    e.to_string(),
                )));
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                self.end(None);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finish.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Downstream {
    fn drop(&mut self) {
        if self.finish.is_some() {
            if self.inner.is_end_stream() {
                self.end(None);
            } else {
                self.end(Some(FunctionError::new(
                    ErrorKind::InternalError,
                    "the caller closed the connection before the answer ended",
                    "",
                )));
            }
        }
    }
}

/// The instance's monitor: notices its exit, enforces its memory size (the whole process group's resident
/// memory), and says why it is gone.
async fn monitor(
    mut child: Child,
    pgid: i32,
    limit: u64,
    memory_mb: u32,
    dead: watch::Sender<Option<FunctionError>>,
    killed: Arc<Mutex<Option<FunctionError>>>,
    mem: Arc<AtomicU64>,
) {
    let mut sampler = tokio::time::interval(MEMORY_SAMPLE);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.ok(),
            _ = sampler.tick() => {
                let rss = group_rss(pgid);
                mem.store(rss, Ordering::Relaxed);
                if rss > limit {
                    if let Ok(mut k) = killed.lock() {
                        k.get_or_insert(FunctionError::memory_limit(memory_mb));
                    }
                    kill_group(pgid);
                }
            }
        }
    };
    kill_group(pgid); // what the server left behind
    let why = killed
        .lock()
        .ok()
        .and_then(|mut k| k.take())
        .unwrap_or_else(|| FunctionError::process_exit(&describe_exit(status)));
    let _ = dead.send(Some(why));
}

fn describe_exit(status: Option<std::process::ExitStatus>) -> String {
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => "exited".to_owned(),
        },
        None => "exited".to_owned(),
    }
}

/// Resident memory of every process in the group `pgid`, bytes.
fn group_rss(pgid: i32) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    // SAFETY: sysconf(3) with a constant name; no memory involved.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let mut total = 0;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the command: state, ppid, pgrp, …; rss is field 24 of stat(5).
        if fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid) {
            total += fields
                .get(21)
                .and_then(|r| r.parse::<u64>().ok())
                .unwrap_or(0)
                * page;
        }
    }
    total
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
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

fn request_too_large(len: u64) -> FunctionError {
    FunctionError::new(
        ErrorKind::RequestTooLarge,
        "The size of request exceeds the upper limit (6MB)",
        format!("{len} bytes"),
    )
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(hyper::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn head_size(h: &HeaderMap) -> usize {
    h.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum()
}

/// Copies end-to-end headers: not hop-by-hop ones, not those named in `Connection`, not `X-Scf-*` (the
/// platform's).
fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    let named: Vec<String> = from
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    for (k, v) in from {
        let name = k.as_str();
        if HOP_BY_HOP.contains(&name)
            || SCF_HEADERS.contains(&name)
            || named.iter().any(|n| n == name)
        {
            continue;
        }
        to.append(k.clone(), v.clone());
    }
}

fn empty() -> WebBody {
    Full::new(Bytes::new()).map_err(|e| match e {}).boxed()
}

/// The HTTP status the caller of a web function sees for an error of `kind`.
fn http_status(kind: ErrorKind) -> StatusCode {
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
fn error_response(request_id: &str, e: &FunctionError) -> Response<WebBody> {
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

/// Splits `/web/<function>/<rest>?<query>` into the function's name and what it sees, `/<rest>?<query>`.
pub fn split_web_path(path: &str, query: Option<&str>) -> Option<(String, String)> {
    let rest = path.strip_prefix("/web/")?;
    let (name, inner) = match rest.split_once('/') {
        Some((n, p)) => (n, format!("/{p}")),
        None => (rest, "/".to_owned()),
    };
    if name.is_empty() {
        return None;
    }
    let inner = match query {
        Some(q) => format!("{inner}?{q}"),
        None => inner,
    };
    Some((name.to_owned(), inner))
}

/// Accepts connections on `listener` until the task is dropped: `/web/<function>/…` goes to the web
/// functions, everything else to the TencentCloud-API front door.
pub async fn serve(listener: tokio::net::TcpListener, door: Arc<FrontDoor>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let door = door.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let door = door.clone();
                async move { Ok::<_, Infallible>(route(&door, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(door: &FrontDoor, req: Request<Incoming>) -> Response<WebBody> {
    match split_web_path(req.uri().path(), req.uri().query()) {
        Some((name, path)) => match door.web.get(&name) {
            Some(pool) if pool.is_web() => pool.handle(req, &path).await,
            _ => {
                let request_id = uuid::Uuid::new_v4().to_string();
                error_response(
                    &request_id,
                    &FunctionError::new(
                        ErrorKind::FunctionNotFound,
                        format!("no web function named {name}"),
                        "",
                    ),
                )
            }
        },
        None => door
            .handle(req)
            .await
            .map(|b| b.map_err(|e| match e {}).boxed()),
    }
}

/// `Invoke` of a web or image-style function through the front door (`frontdoor.rs` checked the function,
/// the parameters and the event, and hands it over).
pub(crate) async fn invoke_api(
    pool: &Arc<WebPool>,
    event: String,
    asynchronous: bool,
    tail: bool,
) -> Result<Value, ApiError> {
    let name = &pool.config.name;
    if pool.is_web() {
        return Err(api_error(
            "InvalidParameterValue",
            format!("{name} is a web function: send HTTP requests to /web/{name}/ instead"),
        ));
    }
    if asynchronous {
        return Err(api_error(
            "InvalidParameterValue.InvocationType",
            "scf-local runs image-style functions synchronously only (InvocationType RequestResponse)",
        ));
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    let finished = pool.invoke_event(&request_id, Bytes::from(event)).await;
    Ok(json!({ "Result": result_json(&finished, tail) }))
}

/// Reaps `pools`' idle instances until `stop` turns true.
pub async fn reap(pools: Vec<Arc<WebPool>>, mut stop: watch::Receiver<bool>) {
    let tick = pools
        .iter()
        .map(|p| p.config.serve.idle_timeout / 4)
        .min()
        .unwrap_or(Duration::from_secs(1))
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => for p in &pools { p.reap_idle() },
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_paths_split() {
        assert_eq!(
            split_web_path("/web/hello/a/b", Some("x=1")),
            Some(("hello".into(), "/a/b?x=1".into()))
        );
        assert_eq!(
            split_web_path("/web/hello", None),
            Some(("hello".into(), "/".into()))
        );
        assert_eq!(
            split_web_path("/web/hello/", None),
            Some(("hello".into(), "/".into()))
        );
        assert_eq!(split_web_path("/web/", None), None);
        assert_eq!(split_web_path("/", None), None);
    }

    #[test]
    fn platform_headers_and_hop_by_hop_headers_are_not_forwarded() {
        let mut from = HeaderMap::new();
        from.insert("x-scf-request-id", HeaderValue::from_static("forged"));
        from.insert("connection", HeaderValue::from_static("close, x-private"));
        from.insert("x-private", HeaderValue::from_static("1"));
        from.insert("x-kept", HeaderValue::from_static("2"));
        let mut to = HeaderMap::new();
        copy_headers(&from, &mut to);
        assert_eq!(to.len(), 1);
        assert_eq!(to.get("x-kept").and_then(|v| v.to_str().ok()), Some("2"));
    }

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
