//! Asynchronous invocation: the per-function FIFO queue's dispatcher and the retry policy
//! (`docs/scf-platform.md` §5).
//!
//! - An execution error is retried `retryNum` times (default 2), `retryInterval` apart (default 60 s).
//! - A 432 (concurrency) or 500 (platform) error does not count: it is retried until the event's maximum age.
//! - An event older than `msgTTL` (default 6 h), or out of retries, goes to the dead-letter store.
//! - An async event waits for a free instance slot rather than failing with 432, and new events keep flowing
//!   while retries wait.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use scf_protocol::ErrorKind;
use tokio::sync::{Notify, watch};

use crate::scheduler::Pool;
use crate::store::{DeadLetter, QueuedEvent, Store, now_ms};

/// Runs `pool`'s queue until `shutdown` turns true.
pub async fn dispatch(
    pool: Arc<Pool>,
    store: Arc<Store>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = pool.config.name.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let permit = tokio::select! {
            p = pool.permit() => match p { Some(p) => p, None => return },
            _ = shutdown.changed() => return,
        };
        let now = now_ms();
        match store.lease_next(&name, now) {
            Ok(Some(ev)) => {
                let (pool, store, wake) = (pool.clone(), store.clone(), wake.clone());
                tokio::spawn(async move {
                    deliver(&pool, &store, ev, permit).await;
                    wake.notify_one();
                });
            }
            Ok(None) => {
                drop(permit);
                let wait = match store.next_due_ms(&name) {
                    Ok(Some(due)) => Duration::from_millis(
                        u64::try_from((due - now).clamp(1, 1000)).unwrap_or(1000),
                    ),
                    _ => Duration::from_secs(1),
                };
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return,
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn deliver(
    pool: &Arc<Pool>,
    store: &Store,
    ev: QueuedEvent,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let serve = &pool.config.serve;
    let ttl_ms = i64::try_from(serve.msg_ttl.as_millis()).unwrap_or(i64::MAX);
    let interval_ms = i64::try_from(serve.retry_interval.as_millis()).unwrap_or(i64::MAX);
    if now_ms() - ev.enqueued_ms > ttl_ms {
        let message = format!(
            "the event passed its maximum age (msgTTL {} s) before it could be delivered",
            serve.msg_ttl.as_secs_f64()
        );
        bury(pool, store, &ev, 0, message);
        return;
    }
    let finished = pool
        .invoke(
            permit,
            &ev.request_id,
            Bytes::from(ev.body.clone()),
            true,
            ev.attempts,
        )
        .await;
    let now = now_ms();
    match finished.result {
        Ok(_) => {
            let _ = store.complete(ev.seq);
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
                bury(pool, store, &ev, i64::from(kind.status_code()), body);
            } else {
                let _ = store.retry_later(ev.seq, attempts, now + interval_ms);
            }
        }
    }
}

fn bury(pool: &Pool, store: &Store, ev: &QueuedEvent, error_code: i64, error_message: String) {
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
    let _ = store.bury(ev, &letter, now_ms());
}
