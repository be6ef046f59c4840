//! One invocation on a fresh instance, as `scf-local invoke` runs it.

use bytes::Bytes;

use crate::config::FunctionConfig;
use crate::event::EventInstance;
use crate::instance::Platform;
use crate::requestlog::RequestLog;

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
    let request_id = crate::requestlog::new_request_id();
    let mut log = RequestLog::start(&request_id);
    let memory = function.memory_mb;
    let result = match EventInstance::start(platform, function).await {
        Err(failure) => {
            log.init_report(&request_id, &failure.cold, memory, 0);
            log.user_lines(failure.lines);
            let result = Err((
                failure.error.kind,
                Bytes::from(failure.error.to_body(&request_id)),
            ));
            log.finish(&request_id, &result, failure.cold.total(), memory, 0);
            result
        }
        Ok(instance) => {
            log.init_report(&request_id, &instance.cold, memory, instance.ready_mem);
            let outcome = instance.invoke(&request_id, event, false).await;
            log.user_lines(outcome.lines);
            log.finish(
                &request_id,
                &outcome.result,
                outcome.duration,
                memory,
                outcome.mem_usage,
            );
            instance.stop().await;
            outcome.result
        }
    };
    let (body, failed) = crate::event::caller_body(result);
    Invoked {
        request_id,
        body,
        failed,
        log,
    }
}
