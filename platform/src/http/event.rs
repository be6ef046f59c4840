//! Image-style event functions: each `Invoke` is a `POST /event-invoke` to the instance.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};
use scf_protocol::{ErrorKind, FunctionError, MAX_RESPONSE_BYTES};
use scf_store::now_ms;
use scf_supervisor::Work;

use super::{Done, HttpRoute};
use crate::pool::{Finished, Pool};

impl Pool<HttpRoute> {
    /// Runs one event on an image-style event function: `POST /event-invoke`.
    pub async fn invoke_event(self: &Arc<Self>, request_id: &str, event: Bytes) -> Finished {
        let start_ms = now_ms();
        let lease = match self.place(request_id, start_ms).await {
            Ok(lease) => lease,
            Err(refused) => return refused,
        };
        let log = self.open_log(request_id, &lease);
        let work = lease.instance.process.work();
        let started = Instant::now(); // the duration does not include the cold start
        let mut req = Request::post("/event-invoke");
        if let Some(h) = req.headers_mut() {
            h.insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            let id = super::request_id_value(request_id);
            self.set_scf_headers(&lease.instance, id.as_ref(), h);
        }
        let deadline = tokio::time::sleep_until(tokio::time::Instant::from_std(
            started + self.config.timeout,
        ));
        tokio::pin!(deadline);
        let instance = &lease.instance;
        let capacity = self.instance_concurrency();
        let result = match req.body(Full::new(event).map_err(|e| match e {}).boxed()) {
            Err(e) => Err(FunctionError::internal(e.to_string())),
            Ok(req) => match instance.exchange(req, deadline.as_mut(), capacity).await {
                Err(e) => Err(e),
                Ok((resp, sender)) => {
                    let status = resp.status();
                    let body = tokio::select! {
                        b = collect_limited(resp.into_body()) => b,
                        _ = deadline.as_mut() => Err(instance.timed_out(capacity)),
                        e = instance.gone() => Err(e),
                    };
                    match body {
                        Ok(body) => {
                            instance.put_back(sender);
                            if status.is_success() {
                                Ok(body)
                            } else {
                                Err(event_error(status, &body))
                            }
                        }
                        Err(e) => Err(e),
                    }
                }
            },
        };
        drop(work);
        let done = Done {
            pool: self.clone(),
            request_id: request_id.to_owned(),
            start_ms,
            started,
            log,
            lease,
            work: Work::none(),
        };
        done.close(result.map_err(|e| {
            let body = Bytes::from(e.to_body(request_id));
            (e.kind, body)
        }))
        .await
    }
}

/// The error of an image-style event function that answered with a non-2xx status: the canonical error body
/// it sent, else its text as an unhandled error.
fn event_error(status: StatusCode, body: &[u8]) -> FunctionError {
    match FunctionError::from_body(body) {
        Some((e, _)) => e,
        None => FunctionError::new(
            ErrorKind::UnhandledError,
            scf_protocol::error::USER_CODE_EXCEPTION,
            format!("HTTP {status}: {}", String::from_utf8_lossy(body)),
        ),
    }
}

/// A body collected up to the response limit.
async fn collect_limited(mut body: Incoming) -> Result<Bytes, FunctionError> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            FunctionError::new(
                ErrorKind::UnhandledError,
                "the function's server closed the connection during its answer",
                e.to_string(),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() > MAX_RESPONSE_BYTES {
                return Err(FunctionError::response_too_large(buf.len()));
            }
        }
    }
    Ok(buf.freeze())
}
