//! The instances of one function: cold starts and warm reuse, the concurrency limit, idle repossession and
//! provisioned instances; the same for every kind of function. Kinds differ only in what they route to an
//! instance ([`Route`]): one event at a time over the runtime API (`event.rs`), or up to N HTTP requests at
//! once through the proxy (`http/`).
//!
//! A request takes a permit of the function's semaphore (its concurrency limit), then a place on a running
//! instance (the fullest one with room; for one-at-a-time instances the most recently used idle one), else
//! starts one (cold). A sync request that finds no permit is refused at once with 432; an async one waits
//! for a permit. So under a burst the number of busy places never passes the limit.
//!
//! What happens to instances and requests is told as [`Event`]s (`activity.rs`). A reload ([`Pool::reload`],
//! `scf-local serve --watch`) starts a new generation: idle instances of older ones are retired at once,
//! busy ones when their request ends, and new instances start from the new configuration.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use scf_protocol::{ErrorKind, FunctionError};
use scf_store::{LogRecord, Store, now_ms};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

use crate::activity::{Event, Events, InstanceView, Retired};
use crate::config::FunctionConfig;
use crate::instance::Platform;
use crate::instance::{Instance, StartFailure};
use crate::requestlog::{self, RequestLog};

/// What a kind of function routes to its instances, and how they start.
pub(crate) trait Route: Sized + Send + Sync + 'static {
    /// Requests one instance takes at once.
    fn capacity(config: &FunctionConfig) -> usize;

    /// Starts an instance of `config` and waits until it is ready.
    fn start(
        platform: &Platform,
        config: &FunctionConfig,
    ) -> impl Future<Output = Result<Instance<Self>, StartFailure>> + Send;

    /// Lines a fresh instance's first request gets after its `Init Report`.
    fn cold_lines(_instance: &Instance<Self>) -> Vec<String> {
        Vec::new()
    }
}

/// One finished request as the front door reports it.
#[derive(Debug)]
pub struct Finished {
    /// The request id.
    pub request_id: String,
    /// The result (for a web request, `HTTP <status>`), or the error's kind and body.
    pub result: Result<Bytes, (ErrorKind, Bytes)>,
    /// The request's log.
    pub log: String,
    /// Wall time of the request (the cold start not included).
    pub duration: Duration,
    /// Memory of the instance at the end, bytes.
    pub mem_usage: u64,
}

/// One request's account, to close its log and record it.
pub(crate) struct Closing {
    pub(crate) request_id: String,
    /// Its start, ms since the epoch.
    pub(crate) start_ms: i64,
    /// Its log so far.
    pub(crate) log: RequestLog,
    pub(crate) result: Result<Bytes, (ErrorKind, Bytes)>,
    pub(crate) duration: Duration,
    pub(crate) mem_usage: u64,
    pub(crate) source: Source,
}

/// How a request was made, for its log record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source {
    /// An async event (else a sync request).
    pub(crate) asynchronous: bool,
    /// Which attempt this is (0 for the first).
    pub(crate) retry_num: i64,
}

impl Source {
    pub(crate) const SYNC: Source = Source {
        asynchronous: false,
        retry_num: 0,
    };
}

struct Slot<R> {
    instance: Arc<Instance<R>>,
    busy: usize,
    since: Instant,
    provisioned: bool,
    /// No request used it yet: the next one gets the Init Report.
    fresh: bool,
    /// The pool's generation it was started in (a reload starts a new one).
    generation: u64,
    /// When it became ready, ms since the epoch.
    born_ms: i64,
    /// Started under a debugger.
    debug: bool,
}

impl<R> Slot<R> {
    fn new(
        instance: Arc<Instance<R>>,
        busy: usize,
        provisioned: bool,
        config: &FunctionConfig,
        generation: u64,
    ) -> Slot<R> {
        Slot {
            instance,
            busy,
            since: Instant::now(),
            provisioned,
            fresh: provisioned,
            generation,
            born_ms: now_ms(),
            debug: config.debug.is_some(),
        }
    }
}

/// The instances of one function.
pub struct Pool<R: Route> {
    /// The function's definition as the platform started with it: its name, kind and serve settings. What
    /// its instances start from is [`Pool::current`], which a reload replaces.
    pub config: FunctionConfig,
    current: Mutex<Arc<FunctionConfig>>,
    /// Bumped by each reload.
    generation: AtomicU64,
    /// Numbers cold starts, for their events.
    tickets: AtomicU64,
    /// Cold starts in progress.
    starting: AtomicUsize,
    events: Events,
    platform: Platform,
    store: Store,
    permits: Arc<Semaphore>,
    capacity: usize,
    slots: Mutex<Vec<Slot<R>>>,
    /// An instance was released (the reaper recomputes when the next one expires).
    released: Notify,
}

impl<R: Route> std::fmt::Debug for Pool<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("function", &self.config.name)
            .finish_non_exhaustive()
    }
}

/// One request's place on an instance and its hold on the function's concurrency; released when dropped
/// (a dead instance is forgotten then, and a provisioned one replaced).
pub(crate) struct Lease<R: Route> {
    pool: Arc<Pool<R>>,
    pub(crate) instance: Arc<Instance<R>>,
    /// This request is the instance's first.
    pub(crate) fresh: bool,
    provisioned: bool,
    permit: Option<OwnedSemaphorePermit>,
}

impl<R: Route> Lease<R> {
    /// Gives the place up and keeps the permit (to run the request elsewhere).
    pub(crate) fn into_permit(mut self) -> Option<OwnedSemaphorePermit> {
        self.permit.take()
    }
}

impl<R: Route> Drop for Lease<R> {
    fn drop(&mut self) {
        let usable = self.instance.is_usable();
        let generation = self.pool.generation.load(Ordering::SeqCst);
        let mut replace = false;
        let mut now = None;
        if let Ok(mut slots) = self.pool.slots.lock() {
            slots.retain_mut(|s| {
                if !Arc::ptr_eq(&s.instance, &self.instance) {
                    return true;
                }
                s.busy = s.busy.saturating_sub(1);
                s.since = Instant::now();
                // An instance of an older generation (its code changed) is retired once its requests end.
                let stale = s.generation != generation && s.busy == 0;
                replace = (!usable || stale) && s.provisioned;
                now = Some(match (usable, stale) {
                    (false, _) => Err(Retired::Died),
                    (true, true) => Err(Retired::Reload),
                    (true, false) => Ok(s.busy),
                });
                if stale {
                    s.instance.retire();
                }
                usable && !stale
            });
        }
        let (function, id) = (&self.pool.config.name, &self.instance.id);
        match now {
            Some(Ok(0)) => self.pool.events.emit(|| Event::InstanceIdle {
                function: function.clone(),
                id: id.clone(),
                memory: self.instance.memory_when_idle(),
            }),
            Some(Ok(busy)) => self.pool.events.emit(|| Event::InstanceBusy {
                function: function.clone(),
                id: id.clone(),
                busy,
            }),
            Some(Err(why)) => self.pool.events.emit(|| Event::InstanceRetired {
                function: function.clone(),
                id: id.clone(),
                why,
            }),
            None => {}
        }
        if replace {
            let pool = self.pool.clone();
            tokio::spawn(async move { pool.start_provisioned().await });
        }
        self.pool.released.notify_one();
    }
}

impl<R: Route> Pool<R> {
    /// A pool for `config`, with no instances yet, telling what happens to `events`.
    pub fn new(
        config: FunctionConfig,
        platform: Platform,
        store: Store,
        events: Events,
    ) -> Arc<Pool<R>> {
        Arc::new(Pool {
            permits: Arc::new(Semaphore::new(config.serve.concurrency)),
            capacity: R::capacity(&config).max(1),
            current: Mutex::new(Arc::new(config.clone())),
            generation: AtomicU64::new(0),
            tickets: AtomicU64::new(0),
            starting: AtomicUsize::new(0),
            events,
            config,
            platform,
            store,
            slots: Mutex::new(Vec::new()),
            released: Notify::new(),
        })
    }

    /// A permit now, or `None` when the function is at its concurrency limit.
    pub fn try_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    /// A permit, waiting for one.
    pub async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().acquire_owned().await.ok()
    }

    /// The 432 of a sync request over the concurrency limit.
    pub fn throttled(&self) -> FunctionError {
        FunctionError::new(
            ErrorKind::ConcurrencyLimit,
            format!("Resource limit exceed for function [{}]", self.config.name),
            "",
        )
    }

    /// Requests one instance takes at once.
    pub fn instance_concurrency(&self) -> usize {
        self.capacity
    }

    /// Tells that the function's async queue or dead letters changed.
    pub(crate) fn queue_changed(&self) {
        self.events.emit(|| Event::Queue {
            function: self.config.name.clone(),
        });
    }

    /// The configuration new instances start from: [`Pool::config`], or what the last reload read.
    pub fn current(&self) -> Arc<FunctionConfig> {
        match self.current.lock() {
            Ok(c) => c.clone(),
            Err(_) => Arc::new(self.config.clone()),
        }
    }

    /// Starts an instance from the current configuration, telling its start's events.
    async fn start_instance(
        &self,
        provisioned: bool,
    ) -> (Result<Instance<R>, StartFailure>, Arc<FunctionConfig>, u64) {
        let config = self.current();
        let generation = self.generation.load(Ordering::SeqCst);
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        self.starting.fetch_add(1, Ordering::SeqCst);
        self.events.emit(|| Event::InstanceStarting {
            function: self.config.name.clone(),
            ticket,
        });
        crate::debug::port_free(&config).await;
        let started = R::start(&self.platform, &config).await;
        self.starting.fetch_sub(1, Ordering::SeqCst);
        match &started {
            Ok(instance) => {
                self.events.emit(|| Event::InstanceStarted {
                    ticket,
                    instance: self.view_of(
                        instance,
                        0,
                        provisioned,
                        config.debug.is_some(),
                        now_ms(),
                    ),
                });
            }
            Err(f) => self.events.emit(|| Event::InstanceFailed {
                function: self.config.name.clone(),
                ticket,
                error: f.error.message.clone(),
            }),
        }
        (started, config, generation)
    }

    fn view_of(
        &self,
        i: &Instance<R>,
        busy: usize,
        provisioned: bool,
        debug: bool,
        born_ms: i64,
    ) -> InstanceView {
        InstanceView {
            function: self.config.name.clone(),
            id: i.id.clone(),
            pid: i.pid(),
            busy,
            capacity: self.capacity,
            provisioned,
            debug,
            started_ms: born_ms,
            cold_start_ms: i.cold.total().as_secs_f64() * 1000.0,
            memory: i.process.memory(),
        }
    }

    /// The running instances, and how many are starting.
    pub fn snapshot(&self) -> (Vec<InstanceView>, usize) {
        let views = self
            .slots
            .lock()
            .map(|slots| {
                slots
                    .iter()
                    .filter(|s| s.instance.is_usable())
                    .map(|s| self.view_of(&s.instance, s.busy, s.provisioned, s.debug, s.born_ms))
                    .collect()
            })
            .unwrap_or_default();
        (views, self.starting.load(Ordering::SeqCst))
    }

    /// Takes `config` for the instances started from now on: retires the idle instances at once and the
    /// busy ones when their requests end (provisioned ones are started again). Returns how many of each.
    pub fn reload(self: &Arc<Self>, config: FunctionConfig) -> (usize, usize) {
        if let Ok(mut c) = self.current.lock() {
            *c = Arc::new(config);
        }
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let (mut retired, mut draining, mut provisioned) = (Vec::new(), 0, 0);
        if let Ok(mut slots) = self.slots.lock() {
            slots.retain(|s| {
                if s.generation == generation || s.busy > 0 {
                    draining += usize::from(s.generation != generation);
                    return true;
                }
                s.instance.retire();
                retired.push(s.instance.id.clone());
                provisioned += usize::from(s.provisioned);
                false
            });
        }
        for id in &retired {
            self.events.emit(|| Event::InstanceRetired {
                function: self.config.name.clone(),
                id: id.clone(),
                why: Retired::Reload,
            });
        }
        for _ in 0..provisioned {
            let pool = self.clone();
            tokio::spawn(async move { pool.start_provisioned().await });
        }
        self.released.notify_one();
        (retired.len(), draining)
    }

    /// A place on an instance for one request holding `permit`: on a running one with room when `warm`,
    /// else on a new one (a cold start). Dead instances found on the way are forgotten.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        permit: OwnedSemaphorePermit,
        warm: bool,
    ) -> Result<Lease<R>, StartFailure> {
        let generation = self.generation.load(Ordering::SeqCst);
        let found = if warm {
            self.slots.lock().ok().and_then(|mut slots| {
                self.forget_dead(&mut slots, |_| false);
                slots
                    .iter_mut()
                    .filter(|s| {
                        s.busy < self.capacity
                            && s.instance.is_usable()
                            && s.generation == generation
                    })
                    .max_by_key(|s| (s.busy, s.since))
                    .map(|s| {
                        s.busy += 1;
                        let fresh = std::mem::take(&mut s.fresh);
                        (s.instance.clone(), fresh, s.provisioned, s.busy)
                    })
            })
        } else {
            None
        };
        let (instance, fresh, provisioned) = match found {
            Some((instance, fresh, provisioned, busy)) => {
                self.events.emit(|| Event::InstanceBusy {
                    function: self.config.name.clone(),
                    id: instance.id.clone(),
                    busy,
                });
                (instance, fresh, provisioned)
            }
            None => {
                let (started, config, generation) = self.start_instance(false).await;
                let instance = Arc::new(started?);
                if let Ok(mut slots) = self.slots.lock() {
                    slots.push(Slot::new(instance.clone(), 1, false, &config, generation));
                }
                self.events.emit(|| Event::InstanceBusy {
                    function: self.config.name.clone(),
                    id: instance.id.clone(),
                    busy: 1,
                });
                (instance, true, false)
            }
        };
        Ok(Lease {
            pool: self.clone(),
            instance,
            fresh,
            provisioned,
            permit: Some(permit),
        })
    }

    /// The start of a request's log: `START`, and on a cold start the `Init Report` (not for a provisioned
    /// instance, which logged its own) and what the kind adds.
    pub(crate) fn open_log(&self, request_id: &str, lease: &Lease<R>) -> RequestLog {
        let mut log = RequestLog::start(request_id);
        if lease.fresh && !lease.provisioned {
            let i = &lease.instance;
            log.init_report(request_id, &i.cold, i.memory_mb, i.ready_mem);
            log.user_lines(R::cold_lines(i));
        }
        log
    }

    /// Closes a request's log with its result and stores it.
    pub(crate) async fn finish(&self, c: Closing) -> Finished {
        let (finished, rec) = self.close(c);
        self.store.record_log(rec).await;
        finished
    }

    /// [`Pool::finish`] without waiting: the log is queued for the store now (or, when the store is behind
    /// by its whole bound, as soon as there is room).
    pub(crate) fn finish_now(&self, c: Closing) -> Finished {
        let (finished, rec) = self.close(c);
        if let Err(rec) = self.store.try_record_log(rec) {
            let store = self.store.clone();
            tokio::spawn(async move { store.record_log(*rec).await });
        }
        finished
    }

    fn close(&self, c: Closing) -> (Finished, LogRecord) {
        let Closing {
            request_id,
            start_ms,
            mut log,
            result,
            duration,
            mem_usage,
            source,
        } = c;
        let memory_mb = self.current().memory_mb;
        log.finish(&request_id, &result, duration, memory_mb, mem_usage);
        let (ret_code, ret_msg) = match &result {
            Ok(body) => (0, String::from_utf8_lossy(body).into_owned()),
            Err((kind, body)) => (
                i64::from(kind.status_code()),
                String::from_utf8_lossy(body).into_owned(),
            ),
        };
        let finished = Finished {
            request_id,
            result,
            log: log.into_text(),
            duration,
            mem_usage,
        };
        let rec = LogRecord {
            function: self.config.name.clone(),
            request_id: finished.request_id.clone(),
            start_ms,
            duration_ms: duration.as_secs_f64() * 1000.0,
            mem_usage: i64::try_from(mem_usage).unwrap_or(i64::MAX),
            ret_code,
            ret_msg,
            log: finished.log.clone(),
            invocation_type: if source.asynchronous {
                "Event"
            } else {
                "RequestResponse"
            }
            .to_owned(),
            retry_num: source.retry_num,
        };
        self.events.finished(&rec);
        (finished, rec)
    }

    /// A request that never ran on an instance (refused, or its instance did not start): its log and record.
    pub(crate) async fn refuse(
        &self,
        request_id: &str,
        start_ms: i64,
        error: FunctionError,
        failure: Option<StartFailure>,
        source: Source,
    ) -> Finished {
        let mut log = RequestLog::start(request_id);
        if let Some(f) = failure {
            log.init_report(request_id, &f.cold, self.current().memory_mb, 0);
            log.user_lines(f.lines);
        }
        let body = Bytes::from(error.to_body(request_id));
        self.finish(Closing {
            request_id: request_id.to_owned(),
            start_ms,
            log,
            result: Err((error.kind, body)),
            duration: Duration::ZERO,
            mem_usage: 0,
            source,
        })
        .await
    }

    /// Starts one provisioned instance and logs its `Provisioned Report`.
    pub async fn start_provisioned(self: &Arc<Self>) {
        let (started, config, generation) = self.start_instance(true).await;
        let (request_id, ret_code, ret_msg, mem, log) = match started {
            Ok(instance) => {
                let c = instance.cold;
                let line = format!(
                    "Provisioned Report RequestId: {} Coldstart: {} (PullCode: {} InitRuntime: {} InitFunction: {}) Memory: {}MB MemUsage: {}",
                    instance.id,
                    requestlog::ms(c.total()),
                    requestlog::ms(c.pull_code),
                    requestlog::ms(c.init_runtime),
                    requestlog::ms(c.init_function),
                    config.memory_mb,
                    requestlog::mb(instance.ready_mem)
                );
                let record = (
                    instance.id.clone(),
                    0,
                    String::new(),
                    instance.ready_mem,
                    format!("{line}\n"),
                );
                if let Ok(mut slots) = self.slots.lock() {
                    slots.push(Slot::new(Arc::new(instance), 0, true, &config, generation));
                }
                record
            }
            Err(failure) => {
                let body = failure.error.to_body("");
                (
                    String::new(),
                    i64::from(failure.error.kind.status_code()),
                    body.clone(),
                    0,
                    format!(
                        "{}\nProvisioned instance failed to start: {body}\n",
                        failure.lines.join("\n")
                    ),
                )
            }
        };
        let rec = LogRecord {
            function: self.config.name.clone(),
            request_id,
            start_ms: now_ms(),
            duration_ms: 0.0,
            mem_usage: i64::try_from(mem).unwrap_or(0),
            ret_code,
            ret_msg,
            log,
            invocation_type: "Provisioned".to_owned(),
            retry_num: 0,
        };
        self.events.finished(&rec);
        self.store.record_log(rec).await;
    }

    /// Forgets idle instances that are dead, and stops idle ones (not provisioned ones) idle for longer than
    /// the idle timeout. Returns when the next idle instance expires.
    fn reap_now(self: &Arc<Self>) -> Option<Instant> {
        let timeout = self.config.serve.idle_timeout;
        let Ok(mut slots) = self.slots.lock() else {
            return None;
        };
        // An instance under a debugger is kept while it idles: the debugger stays attached to it.
        self.forget_dead(&mut slots, |s| {
            !s.provisioned && !s.debug && s.since.elapsed() >= timeout
        });
        slots
            .iter()
            .filter(|s| s.busy == 0 && !s.provisioned && !s.debug)
            .map(|s| s.since + timeout)
            .min()
    }

    /// Forgets idle instances that are dead or `expired` (stopping them: the last reference tears the
    /// instance down), and starts a replacement for each provisioned one among them.
    fn forget_dead(self: &Arc<Self>, slots: &mut Vec<Slot<R>>, expired: impl Fn(&Slot<R>) -> bool) {
        let mut replace = 0;
        slots.retain(|s| {
            let dead = !s.instance.is_usable();
            let gone = s.busy == 0 && (dead || expired(s));
            if gone {
                s.instance.retire();
                replace += usize::from(dead && s.provisioned);
                self.events.emit(|| Event::InstanceRetired {
                    function: self.config.name.clone(),
                    id: s.instance.id.clone(),
                    why: if dead { Retired::Died } else { Retired::Idle },
                });
            }
            !gone
        });
        for _ in 0..replace {
            let pool = self.clone();
            tokio::spawn(async move { pool.start_provisioned().await });
        }
    }

    /// Repossesses idle instances as they expire, until `stop` turns true. No timer runs while nothing
    /// idles.
    pub async fn reap(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let next = self.reap_now();
            let expiry = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = expiry => {}
                _ = self.released.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Stops every instance of the function (shutdown): kills them, and tears down those no request holds.
    pub async fn stop_all(&self) {
        let slots: Vec<Slot<R>> = self
            .slots
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        let mut stopping = Vec::new();
        for s in slots {
            s.instance.retire();
            if let Ok(instance) = Arc::try_unwrap(s.instance) {
                stopping.push(instance.stop());
            }
        }
        for s in stopping {
            s.await;
        }
    }
}
