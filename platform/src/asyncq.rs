//! Asynchronous invocation: the per-function FIFO queue's dispatcher and the retry policy
//! (`docs/scf-platform.md` §5).
//!
//! - An execution error is retried `retryNum` times (default 2), `retryInterval` apart (default 60 s).
//! - A 432 (concurrency) or 500 (platform) error does not count: it is retried until the event's maximum age.
//! - An event older than `msgTTL` (default 6 h), or out of retries, goes to the dead-letter store.
//! - An async event waits for a free instance slot rather than failing with 432, and new events keep flowing
//!   while retries wait.
//! - Taking an event (its lease) writes nothing: the store keeps leases in memory. What happened to a
//!   delivered event is written to the store (with the store's next batch of writes) before the event is
//!   let go; a write that fails is said on stderr and tried again until it succeeds, so no event stays
//!   leased and forgotten.
//!
//! The dispatcher sleeps until an event arrives (handed over by the store's commit that accepted it) or a
//! retry is due: an idle queue costs nothing.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use scf_protocol::ErrorKind;
use scf_store::{DeadLetter, Lease, Parked, QueuedEvent, Store, StoreError, Then, now_ms};
use tokio::sync::{Notify, watch};

use crate::event::EventPool;
use crate::pool::Source;

/// The longest wait between two tries of a store write that failed.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs `pool`'s queue until `shutdown` turns true.
///
/// Each lease that finds no other event due leaves a lease parked on the store's thread: once the
/// dispatcher waits on it, the commit that accepts the function's next event hands it over, leased, so an
/// event that arrives while the queue is idle costs no request of the dispatcher's own to the store. The
/// dispatcher gives the parked lease up (and leases again) when an event waiting for its retry is due, or
/// when a retry was just written.
pub(crate) async fn dispatch(
    pool: Arc<EventPool>,
    store: Store,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = pool.config.name.clone();
    // Told when a delivery ends in a retry: that event is due again, maybe before the parked lease's time.
    let retried = Arc::new(Notify::new());
    let mut backoff = Backoff::default();
    let mut handed: Option<Lease> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let lease = match handed.take() {
            Some(lease) => lease,
            None => match store.lease(&name, now_ms()).await {
                Ok(lease) => {
                    backoff.recovered("leasing the next event", &name);
                    lease
                }
                Err(StoreError::Closed) => return,
                Err(e) => {
                    backoff.failed("leasing the next event", &name, &e).await;
                    continue;
                }
            },
        };
        // The event is leased first, then waits for a permit: a permit is only ever held by an event that
        // runs (holding one while asking the store would make a sync call see the function as full).
        if let Some(ev) = lease.event {
            let permit = tokio::select! {
                p = pool.permit() => match p { Some(p) => p, None => return },
                // A lease lives only as long as the platform: the event runs after the restart.
                _ = shutdown.changed() => return,
            };
            let (pool, store, retried) = (pool.clone(), store.clone(), retried.clone());
            tokio::spawn(async move {
                let again = deliver(&pool, &store, ev, permit).await;
                pool.queue_changed();
                if again {
                    retried.notify_one();
                }
            });
        }
        // Another event due already is taken at once; else the dispatcher waits for the next accepted one
        // to be handed over, or until one is due.
        let Then::Wait(mut parked) = lease.then else {
            continue;
        };
        // From here on the store hands an accepted event over. One accepted before (while this waited for a
        // permit, say) was left in its queue: lease again.
        if !parked.wait_from_now() {
            handed = again(parked);
            continue;
        }
        let due_ms = parked.due_ms();
        let due = async {
            match due_ms {
                Some(due) => {
                    let ms = u64::try_from(due - now_ms()).unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // An error: the store dropped the lease; the next lease says why.
            h = parked.handed_over() => handed = h.ok(),
            _ = retried.notified() => handed = again(parked),
            _ = due => handed = again(parked),
            _ = shutdown.changed() => return,
        }
    }
}

/// Gives up a parked lease to lease again: an event handed over meanwhile is run first, then the queue is
/// leased from afresh.
fn again(parked: Parked) -> Option<Lease> {
    parked.cancel().map(|lease| Lease {
        event: lease.event,
        then: Then::Again,
    })
}

/// Runs `ev` and writes what happened to it; whether it is due again (a retry).
async fn deliver(
    pool: &Arc<EventPool>,
    store: &Store,
    ev: QueuedEvent,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> bool {
    let serve = &pool.config.serve;
    let ttl_ms = i64::try_from(serve.msg_ttl.as_millis()).unwrap_or(i64::MAX);
    let interval_ms = i64::try_from(serve.retry_interval.as_millis()).unwrap_or(i64::MAX);
    if now_ms() - ev.enqueued_ms > ttl_ms {
        let message = format!(
            "the event passed its maximum age (msgTTL {} s) before it could be delivered",
            serve.msg_ttl.as_secs_f64()
        );
        bury(pool, store, &ev, 0, message).await;
        return false;
    }
    let source = Source {
        asynchronous: true,
        retry_num: ev.attempts,
    };
    let finished = pool
        .invoke(permit, &ev.request_id, ev.body.clone(), source)
        .await;
    let now = now_ms();
    match finished.result {
        Ok(_) => {
            settle("its delivery", &ev, || store.complete(ev.seq)).await;
            false
        }
        Err((kind, body)) => {
            let body = String::from_utf8_lossy(&body).into_owned();
            let uncounted = matches!(kind, ErrorKind::ConcurrencyLimit | ErrorKind::InternalError);
            let attempts = if uncounted {
                ev.attempts
            } else {
                ev.attempts + 1
            };
            let out_of_retries = !uncounted && attempts > i64::from(serve.retry_num);
            let too_old = now + interval_ms - ev.enqueued_ms > ttl_ms;
            if out_of_retries || too_old {
                let ev = QueuedEvent { attempts, ..ev };
                bury(pool, store, &ev, i64::from(kind.status_code()), body).await;
                false
            } else {
                settle("its retry", &ev, || {
                    store.retry_later(ev.seq, attempts, now + interval_ms)
                })
                .await;
                true
            }
        }
    }
}

async fn bury(
    pool: &EventPool,
    store: &Store,
    ev: &QueuedEvent,
    error_code: i64,
    error_message: String,
) {
    let c = &pool.config;
    let letter = DeadLetter {
        request_id: ev.request_id.clone(),
        error_code,
        error_message,
        body: serde_json::json!({
            "FunctionName": c.name,
            "Namespace": c.namespace,
            "Qualifier": "$LATEST",
            "InvocationType": "Event",
            "RequestId": ev.request_id,
            "ClientContext": String::from_utf8_lossy(&ev.body),
            "RetryNum": ev.attempts.saturating_sub(1).max(0),
            "EnqueueTime": ev.enqueued_ms,
        }),
    };
    settle("its dead letter", ev, || store.bury(ev, &letter, now_ms())).await;
}

/// Writes what happened to `ev` (`what`), trying again until the store takes it (the store writes it with
/// its next batch of writes; the event stays leased until then). Only a store that has stopped (the
/// platform is shutting down) ends the tries: leases live only as long as the platform, so the event runs
/// again after the next start.
async fn settle<F, Fut>(what: &str, ev: &QueuedEvent, mut write: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let mut backoff = Backoff::default();
    let about = format!("{what} of async event {}", ev.request_id);
    loop {
        match write().await {
            Ok(()) => {
                backoff.recovered(&about, &ev.function);
                return;
            }
            Err(StoreError::Closed) => return,
            Err(e) => backoff.failed(&about, &ev.function, &e).await,
        }
    }
}

/// Tries again after a failed store call, waiting longer each time, and says so on stderr.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    async fn failed(&mut self, what: &str, function: &str, e: &StoreError) {
        if self.failures == 0 {
            let _ = writeln!(
                std::io::stderr(),
                "scf-local: function {function}: the store failed writing {what} ({e}); trying again until it works"
            );
        }
        self.failures += 1;
        let wait = Duration::from_millis(50 << self.failures.min(7)).min(MAX_BACKOFF);
        tokio::time::sleep(wait).await;
    }

    fn recovered(&mut self, what: &str, function: &str) {
        if self.failures > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "scf-local: function {function}: the store took {what} after {} failed tries",
                self.failures
            );
        }
        self.failures = 0;
    }
}
