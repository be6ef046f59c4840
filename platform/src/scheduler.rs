//! Instances of one function: cold starts and warm reuse, the concurrency limit, idle repossession and
//! provisioned instances.
//!
//! One instance serves one invocation at a time. An invocation takes a permit of the function's semaphore
//! (its concurrency limit), then an idle instance if there is one (warm), else starts one (cold). A sync
//! invocation that finds no permit is refused at once with 432; an async one waits for a permit. So under a
//! burst the number of busy instances never passes the limit.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use scf_protocol::{ErrorKind, FunctionError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::FunctionConfig;
use crate::instance::{Instance, Platform};
use crate::logs::{self, RequestLog};
use crate::store::{LogRecord, Store, now_ms};

/// One finished invocation as the front door reports it.
#[derive(Debug)]
pub struct Finished {
    /// The request id.
    pub request_id: String,
    /// The result, or the error's kind and body.
    pub result: Result<Bytes, (ErrorKind, Bytes)>,
    /// The request's log.
    pub log: String,
    /// Wall time of the invocation (the cold start not included).
    pub duration: Duration,
    /// Resident memory of the instance at the end, bytes.
    pub mem_usage: u64,
    /// Whether this invocation started its instance.
    pub cold: bool,
}

struct Idle {
    instance: Instance,
    since: Instant,
    provisioned: bool,
    /// No invocation ran on it yet: its init output belongs to the first one.
    fresh: bool,
}

/// The instances of one function.
pub struct Pool {
    /// The function's definition.
    pub config: FunctionConfig,
    platform: Platform,
    store: Arc<Store>,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
    pids: Mutex<HashSet<u32>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("function", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool for `config`, with no instances yet.
    pub fn new(config: FunctionConfig, platform: Platform, store: Arc<Store>) -> Arc<Pool> {
        let permits = Arc::new(Semaphore::new(config.serve.concurrency));
        Arc::new(Pool {
            config,
            platform,
            store,
            permits,
            idle: Mutex::new(Vec::new()),
            pids: Mutex::new(HashSet::new()),
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

    /// The 432 body of a sync invocation over the concurrency limit.
    pub fn throttled(&self) -> FunctionError {
        FunctionError::new(
            ErrorKind::ConcurrencyLimit,
            format!("Resource limit exceed for function [{}]", self.config.name),
            "",
        )
    }

    /// Runs one invocation holding `permit`.
    pub async fn invoke(
        self: &Arc<Self>,
        _permit: OwnedSemaphorePermit,
        request_id: &str,
        event: Bytes,
        asynchronous: bool,
        retry_num: i64,
    ) -> Finished {
        let start_ms = now_ms();
        let memory = self.config.memory_mb;
        let mut log = RequestLog::start(request_id);
        let warm = self.take_idle().await;
        let (mut idle, cold) = match warm {
            Some(idle) => (idle, false),
            None => match Instance::start(&self.platform, &self.config).await {
                Ok(instance) => {
                    self.track(&instance);
                    (
                        Idle {
                            instance,
                            since: Instant::now(),
                            provisioned: false,
                            fresh: true,
                        },
                        true,
                    )
                }
                Err(failure) => {
                    log.init_report(request_id, &failure.cold, memory, 0);
                    log.user_lines(failure.lines);
                    let body = failure.error.to_body(request_id);
                    log.finish(request_id, &Err(body.clone()), Duration::ZERO, memory, 0);
                    let finished = Finished {
                        request_id: request_id.to_owned(),
                        result: Err((failure.error.kind, Bytes::from(body))),
                        log: log.text(),
                        duration: Duration::ZERO,
                        mem_usage: 0,
                        cold: true,
                    };
                    self.record(&finished, start_ms, asynchronous, retry_num);
                    return finished;
                }
            },
        };
        if idle.fresh && !idle.provisioned {
            log.init_report(
                request_id,
                &idle.instance.cold,
                memory,
                idle.instance.ready_mem,
            );
        }
        idle.fresh = false;
        let outcome = idle.instance.invoke(request_id, event, asynchronous).await;
        log.user_lines(idle.instance.take_lines().await);
        let shown = match &outcome.result {
            Ok(body) => Ok(body.to_vec()),
            Err((_, body)) => Err(String::from_utf8_lossy(body).into_owned()),
        };
        log.finish(
            request_id,
            &shown,
            outcome.duration,
            memory,
            outcome.mem_usage,
        );
        if outcome.instance_gone {
            self.retire(idle).await;
        } else if let Ok(mut pool) = self.idle.lock() {
            idle.since = Instant::now();
            pool.push(idle);
        }
        let finished = Finished {
            request_id: request_id.to_owned(),
            result: outcome.result,
            log: log.text(),
            duration: outcome.duration,
            mem_usage: outcome.mem_usage,
            cold,
        };
        self.record(&finished, start_ms, asynchronous, retry_num);
        finished
    }

    /// The most recently used idle instance that is still alive; dead ones found on the way are dropped.
    async fn take_idle(self: &Arc<Self>) -> Option<Idle> {
        loop {
            let mut idle = self.idle.lock().ok().and_then(|mut idle| idle.pop())?;
            if idle.instance.is_usable() {
                return Some(idle);
            }
            self.retire(idle).await;
        }
    }

    /// Stops an instance that is gone or must go; a provisioned one is replaced.
    async fn retire(self: &Arc<Self>, idle: Idle) {
        self.untrack(&idle.instance);
        let provisioned = idle.provisioned;
        idle.instance.stop().await;
        if provisioned {
            let pool = self.clone();
            tokio::spawn(async move { pool.start_provisioned().await });
        }
    }

    pub(crate) fn record(&self, f: &Finished, start_ms: i64, asynchronous: bool, retry_num: i64) {
        let (ret_code, ret_msg) = match &f.result {
            Ok(body) => (0, String::from_utf8_lossy(body).into_owned()),
            Err((kind, body)) => (
                i64::from(kind.status_code()),
                String::from_utf8_lossy(body).into_owned(),
            ),
        };
        let rec = LogRecord {
            function: self.config.name.clone(),
            request_id: f.request_id.clone(),
            start_ms,
            duration_ms: f.duration.as_secs_f64() * 1000.0,
            mem_usage: i64::try_from(f.mem_usage).unwrap_or(i64::MAX),
            ret_code,
            ret_msg,
            log: f.log.clone(),
            invocation_type: if asynchronous {
                "Event"
            } else {
                "RequestResponse"
            }
            .to_owned(),
            retry_num,
        };
        self.store.record_log(rec);
    }

    fn track(&self, instance: &Instance) {
        if let (Some(pid), Ok(mut pids)) = (instance.pid(), self.pids.lock()) {
            pids.insert(pid);
        }
    }

    fn untrack(&self, instance: &Instance) {
        if let (Some(pid), Ok(mut pids)) = (instance.pid(), self.pids.lock()) {
            pids.remove(&pid);
        }
    }

    /// Starts one provisioned instance and logs its `Provisioned Report`.
    pub async fn start_provisioned(self: &Arc<Self>) {
        match Instance::start(&self.platform, &self.config).await {
            Ok(instance) => {
                self.track(&instance);
                let line = format!(
                    "Provisioned Report RequestId: {} Coldstart: {} (PullCode: {} InitRuntime: {} InitFunction: {}) Memory: {}MB MemUsage: {}",
                    instance.id,
                    logs::ms(instance.cold.total()),
                    logs::ms(instance.cold.pull_code),
                    logs::ms(instance.cold.init_runtime),
                    logs::ms(instance.cold.init_function),
                    self.config.memory_mb,
                    logs::mb(instance.ready_mem)
                );
                let _ = self.store.insert_log(&LogRecord {
                    function: self.config.name.clone(),
                    request_id: instance.id.clone(),
                    start_ms: now_ms(),
                    duration_ms: 0.0,
                    mem_usage: i64::try_from(instance.ready_mem).unwrap_or(0),
                    ret_code: 0,
                    ret_msg: String::new(),
                    log: format!("{line}\n"),
                    invocation_type: "Provisioned".to_owned(),
                    retry_num: 0,
                });
                if let Ok(mut idle) = self.idle.lock() {
                    idle.insert(
                        0,
                        Idle {
                            instance,
                            since: Instant::now(),
                            provisioned: true,
                            fresh: true,
                        },
                    );
                }
            }
            Err(failure) => {
                let body = failure.error.to_body("");
                let _ = self.store.insert_log(&LogRecord {
                    function: self.config.name.clone(),
                    request_id: String::new(),
                    start_ms: now_ms(),
                    duration_ms: 0.0,
                    mem_usage: 0,
                    ret_code: i64::from(failure.error.kind.status_code()),
                    ret_msg: body.clone(),
                    log: format!(
                        "{}\nProvisioned instance failed to start: {body}\n",
                        failure.lines.join("\n")
                    ),
                    invocation_type: "Provisioned".to_owned(),
                    retry_num: 0,
                });
            }
        }
    }

    /// Stops idle instances (not provisioned ones) idle for longer than the function's idle timeout.
    pub async fn reap_idle(&self) {
        let timeout = self.config.serve.idle_timeout;
        let expired: Vec<Idle> = match self.idle.lock() {
            Ok(mut idle) => {
                let (old, keep): (Vec<Idle>, Vec<Idle>) = std::mem::take(&mut *idle)
                    .into_iter()
                    .partition(|i| !i.provisioned && i.since.elapsed() >= timeout);
                *idle = keep;
                old
            }
            Err(_) => Vec::new(),
        };
        for i in expired {
            self.untrack(&i.instance);
            i.instance.stop().await;
        }
    }

    /// Instances kept idle now.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }

    /// Kills every instance of the function (shutdown).
    pub fn kill_all(&self) {
        let pids: Vec<u32> = self
            .pids
            .lock()
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default();
        for pid in pids {
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: kill(2) on the process group of an instance this pool started; no memory involved.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}
