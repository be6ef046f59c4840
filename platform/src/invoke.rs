//! One invocation on a fresh instance, as `scf-local invoke` runs it.

use bytes::Bytes;
use scf_protocol::FunctionError;

use crate::config::FunctionConfig;
use crate::instance::{Instance, Platform};
use crate::logs::RequestLog;

/// What one invocation produced.
#[derive(Debug)]
pub struct Invoked {
    /// The id of the request.
    pub request_id: String,
    /// The body the caller gets.
    pub body: Bytes,
    /// Whether the function failed (the body is then the error body).
    pub failed: bool,
    /// The request's log.
    pub log: RequestLog,
}

/// Starts an instance of `function` (a cold start), runs `event` on it, stops it.
pub async fn invoke_once(platform: &Platform, function: &FunctionConfig, event: Bytes) -> Invoked {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut log = RequestLog::start(&request_id);
    let memory = function.memory_mb;
    let (body, failed) = match Instance::start(platform, function).await {
        Err(failure) => {
            log.init_report(&request_id, &failure.cold, memory, 0);
            log.user_lines(failure.lines);
            let body = failure.error.to_body(&request_id);
            log.finish(
                &request_id,
                &Err(body.clone()),
                failure.cold.total(),
                memory,
                0,
            );
            (Bytes::from(body), true)
        }
        Ok(mut instance) => {
            log.init_report(&request_id, &instance.cold, memory, instance.ready_mem);
            let outcome = instance.invoke(&request_id, event, false).await;
            log.user_lines(instance.take_lines().await);
            let (body, failed) = match outcome.result {
                Ok(body) => (body, false),
                Err((_, body)) => (body, true),
            };
            let shown = if failed {
                Err(String::from_utf8_lossy(&body).into_owned())
            } else {
                Ok(body.to_vec())
            };
            log.finish(
                &request_id,
                &shown,
                outcome.duration,
                memory,
                outcome.mem_usage,
            );
            instance.stop().await;
            (body, failed)
        }
    };
    Invoked {
        request_id,
        body,
        failed,
        log,
    }
}

/// The error body for a request that never reached an instance (an unreadable event file, say).
pub fn platform_error_body(request_id: &str, error: &FunctionError) -> String {
    error.to_body(request_id)
}
