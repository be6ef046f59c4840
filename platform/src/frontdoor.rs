//! The front door: HTTP on loopback, shaped like the TencentCloud API (`POST /` with `X-TC-Action`, JSON
//! bodies, `{"Response": {…, "RequestId"}}` answers), so the official TencentCloud SDKs work against it.
//!
//! Actions: `Invoke` (`InvocationType` `RequestResponse` or `Event`, `ClientContext`, `LogType: Tail`,
//! `Qualifier`, `Namespace`), `InvokeFunction` (sync, `Event`), `GetFunctionLogs`.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use scf_protocol::limits::{MAX_ASYNC_EVENT_BYTES, MAX_SYNC_EVENT_BYTES};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::scheduler::{Finished, Pool};
use crate::store::{EnqueueError, LogQuery, Store, now_ms};

/// Credentials the front door checks signatures against.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The SecretId.
    pub secret_id: String,
    /// The SecretKey.
    pub secret_key: String,
}

/// What the front door serves.
#[derive(Debug)]
pub struct FrontDoor {
    /// The functions, by name.
    pub pools: HashMap<String, Arc<Pool>>,
    /// Wakes each function's async dispatcher.
    pub wakes: HashMap<String, Arc<Notify>>,
    /// The database.
    pub store: Arc<Store>,
    /// Signatures are verified when set.
    pub credentials: Option<Credentials>,
    /// Web and image-style functions, by name (`web.rs`).
    pub web: HashMap<String, Arc<crate::web::WebPool>>,
}

/// A function the front door serves.
enum Target<'a> {
    /// An event function (`scheduler.rs`).
    Event(&'a Arc<Pool>),
    /// A web or image-style function (`web.rs`).
    Http(&'a Arc<crate::web::WebPool>),
}

impl Target<'_> {
    fn config(&self) -> &crate::config::FunctionConfig {
        match self {
            Target::Event(pool) => &pool.config,
            Target::Http(web) => &web.config,
        }
    }
}

/// An API-level error: `{"Response":{"Error":{"Code","Message"},"RequestId"}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    code: &'static str,
    message: String,
}

pub(crate) fn api_error(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        code,
        message: message.into(),
    }
}

fn json_response(v: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

pub(crate) fn str_param<'a>(p: &'a Value, key: &str) -> Result<Option<&'a str>, ApiError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(api_error(
            "InvalidParameterValue",
            format!("{key} must be a string"),
        )),
    }
}

impl FrontDoor {
    /// Answers one request to the front door.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let request_id = uuid::Uuid::new_v4().to_string();
        match self.handle_inner(req).await {
            Ok(mut response) => {
                if let Some(o) = response.as_object_mut() {
                    o.insert("RequestId".into(), Value::String(request_id.clone()));
                }
                json_response(&json!({ "Response": response }))
            }
            Err(e) => json_response(&json!({
                "Response": { "Error": { "Code": e.code, "Message": e.message }, "RequestId": request_id }
            })),
        }
    }

    async fn handle_inner(&self, req: Request<Incoming>) -> Result<Value, ApiError> {
        if req.method() != hyper::Method::POST {
            return Err(api_error(
                "UnsupportedOperation",
                "use POST / with X-TC-Action and a JSON body",
            ));
        }
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| api_error("InvalidParameter", format!("reading the body: {e}")))?
            .to_bytes();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if let Some(c) = &self.credentials {
            let signed = crate::tc3::SignedRequest {
                method: parts.method.as_str(),
                uri: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                header: &header,
                body: &body,
            };
            let now = now_ms() / 1000;
            crate::tc3::verify(&signed, &c.secret_id, &c.secret_key, now)
                .map_err(|why| api_error("AuthFailure.SignatureFailure", why))?;
        }
        let action = header("x-tc-action")
            .ok_or_else(|| api_error("MissingParameter", "the X-TC-Action header is missing"))?;
        let params: Value = if body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&body)
                .map_err(|e| api_error("InvalidParameter", format!("the body is not JSON: {e}")))?
        };
        if !params.is_object() {
            return Err(api_error(
                "InvalidParameter",
                "the body must be a JSON object",
            ));
        }
        match action.as_str() {
            "Invoke" => {
                let event = str_param(&params, "ClientContext")?
                    .unwrap_or("{}")
                    .to_owned();
                let asynchronous = match str_param(&params, "InvocationType")?
                    .unwrap_or("RequestResponse")
                {
                    "RequestResponse" => false,
                    "Event" => true,
                    other => {
                        return Err(api_error(
                            "InvalidParameterValue.InvocationType",
                            format!("InvocationType {other}: expected RequestResponse or Event"),
                        ));
                    }
                };
                self.invoke(&params, event, asynchronous).await
            }
            "InvokeFunction" => {
                let event = str_param(&params, "Event")?.unwrap_or("{}").to_owned();
                self.invoke(&params, event, false).await
            }
            "GetFunctionLogs" => {
                self.store.flush_logs().await;
                self.logs(&params)
            }
            other => Err(api_error(
                "InvalidAction",
                format!("the action {other} is not supported by scf-local"),
            )),
        }
    }

    /// The function `params` names (an event function, or a web / image-style one), checked against its
    /// `Namespace` and `Qualifier`.
    fn target(&self, params: &Value) -> Result<Target<'_>, ApiError> {
        let name = str_param(params, "FunctionName")?
            .ok_or_else(|| api_error("MissingParameter", "FunctionName is required"))?;
        let target = match (self.pools.get(name), self.web.get(name)) {
            (Some(pool), _) => Target::Event(pool),
            (None, Some(web)) => Target::Http(web),
            (None, None) => {
                return Err(api_error(
                    "ResourceNotFound.Function",
                    format!("function {name} does not exist (435 FunctionNotFound)"),
                ));
            }
        };
        let ns = str_param(params, "Namespace")?.unwrap_or("default");
        if ns != target.config().namespace {
            return Err(api_error(
                "ResourceNotFound.Namespace",
                format!("function {name} is not in namespace {ns} (435 FunctionNotFound)"),
            ));
        }
        match str_param(params, "Qualifier")? {
            None | Some("$LATEST") | Some("") => Ok(target),
            Some(q) => Err(api_error(
                "ResourceNotFound.Version",
                format!("version {q} of {name} does not exist; scf-local serves $LATEST"),
            )),
        }
    }

    async fn invoke(
        &self,
        params: &Value,
        event: String,
        asynchronous: bool,
    ) -> Result<Value, ApiError> {
        let target = self.target(params)?;
        let tail = match str_param(params, "LogType")? {
            None | Some("None") => false,
            Some("Tail") => true,
            Some(other) => {
                return Err(api_error(
                    "InvalidParameterValue.LogType",
                    format!("LogType {other}: expected None or Tail"),
                ));
            }
        };
        let limit = if asynchronous {
            MAX_ASYNC_EVENT_BYTES
        } else {
            MAX_SYNC_EVENT_BYTES
        };
        if event.len() > limit {
            return Err(api_error(
                "InvalidParameterValue.ClientContext",
                format!(
                    "the event is {} bytes; the limit is {limit} bytes for {} invocations (406 RequestTooLarge)",
                    event.len(),
                    if asynchronous { "async" } else { "sync" }
                ),
            ));
        }
        if serde_json::from_str::<serde::de::IgnoredAny>(&event).is_err() {
            return Err(api_error(
                "InvalidParameterValue.ClientContext",
                "the event is not a JSON document (400)",
            ));
        }
        let pool = match target {
            Target::Http(web) => {
                return crate::web::invoke_api(web, event, asynchronous, tail).await;
            }
            Target::Event(pool) => pool.clone(),
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        if asynchronous {
            let name = pool.config.name.clone();
            self.store
                .enqueue(
                    &name,
                    &request_id,
                    event.as_bytes(),
                    now_ms(),
                    pool.config.serve.queue_limit,
                )
                .map_err(|e| match e {
                    EnqueueError::Full { .. } => {
                        api_error("LimitExceeded.AsyncQueue", e.to_string())
                    }
                    EnqueueError::Store(_) => api_error("InternalError", e.to_string()),
                })?;
            if let Some(w) = self.wakes.get(&name) {
                w.notify_one();
            }
            return Ok(json!({ "Result": {
                "FunctionRequestId": request_id, "MemUsage": 0, "Log": "", "RetMsg": "", "BillDuration": 0,
                "Duration": 0, "ErrMsg": "", "InvokeResult": 0
            }}));
        }
        let finished = match pool.try_permit() {
            Some(permit) => {
                pool.invoke(permit, &request_id, Bytes::from(event), false, 0)
                    .await
            }
            None => {
                let e = pool.throttled();
                let body = e.to_body(&request_id);
                let mut log = crate::logs::RequestLog::start(&request_id);
                log.finish(
                    &request_id,
                    &Err(body.clone()),
                    std::time::Duration::ZERO,
                    pool.config.memory_mb,
                    0,
                );
                let finished = Finished {
                    request_id: request_id.clone(),
                    result: Err((e.kind, Bytes::from(body))),
                    log: log.text(),
                    duration: std::time::Duration::ZERO,
                    mem_usage: 0,
                    cold: false,
                };
                // A refused call is in the function's logs too, as on the platform.
                pool.record(&finished, now_ms(), false, 0);
                finished
            }
        };
        Ok(json!({ "Result": result_json(&finished, tail) }))
    }

    fn logs(&self, params: &Value) -> Result<Value, ApiError> {
        let target = self.target(params)?;
        let pool_config = target.config();
        let parse_time = |key: &str| -> Result<Option<i64>, ApiError> {
            match str_param(params, key)? {
                None => Ok(None),
                Some(s) => parse_datetime(s).map(Some).ok_or_else(|| {
                    api_error(
                        "InvalidParameterValue",
                        format!("{key} {s}: expected YYYY-MM-DD HH:MM:SS (UTC)"),
                    )
                }),
            }
        };
        let int = |key: &str, default: i64| -> Result<i64, ApiError> {
            match params.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                    api_error(
                        "InvalidParameterValue",
                        format!("{key} must be a non-negative integer"),
                    )
                }),
            }
        };
        let failed = match params.pointer("/Filter/RetCode").and_then(Value::as_str) {
            None => None,
            Some("is0") => Some(false),
            Some("not0") => Some(true),
            Some(other) => {
                return Err(api_error(
                    "InvalidParameterValue",
                    format!("Filter.RetCode {other}: expected is0 or not0"),
                ));
            }
        };
        let q = LogQuery {
            function: pool_config.name.clone(),
            request_id: str_param(params, "FunctionRequestId")?.map(str::to_owned),
            from_ms: parse_time("StartTime")?,
            to_ms: parse_time("EndTime")?,
            after_seq: 0,
            failed,
            newest_first: !matches!(str_param(params, "Order")?, Some("asc") | Some("ASC")),
            limit: int("Limit", 10000)?.min(10000),
            offset: int("Offset", 0)?,
        };
        let records = self
            .store
            .logs(&q)
            .map_err(|e| api_error("InternalError", e.to_string()))?;
        let data: Vec<Value> = records
            .iter()
            .map(|(_, r)| {
                json!({
                    "FunctionName": r.function, "RetMsg": r.ret_msg, "RequestId": r.request_id,
                    "StartTime": format_datetime(r.start_ms), "RetCode": r.ret_code, "InvokeFinished": 1,
                    "Duration": r.duration_ms, "BillDuration": r.duration_ms.ceil() as i64, "MemUsage": r.mem_usage,
                    "Log": r.log, "Level": if r.ret_code == 0 { "INFO" } else { "ERROR" }, "Source": r.invocation_type,
                    "RetryNum": r.retry_num
                })
            })
            .collect();
        Ok(json!({ "TotalCount": data.len(), "Data": data }))
    }
}

/// The `Result` object of a sync invocation.
pub(crate) fn result_json(f: &Finished, tail: bool) -> Value {
    let (ret_msg, err_msg, invoke_result) = match &f.result {
        Ok(body) => (String::from_utf8_lossy(body).into_owned(), String::new(), 0),
        Err((_, body)) => (
            String::new(),
            String::from_utf8_lossy(body).into_owned(),
            -1,
        ),
    };
    let ms = f.duration.as_secs_f64() * 1000.0;
    json!({
        "MemUsage": f.mem_usage,
        "Log": if tail { f.log.clone() } else { String::new() },
        "RetMsg": ret_msg,
        "BillDuration": ms.ceil() as i64,
        "FunctionRequestId": f.request_id,
        "Duration": (ms * 1000.0).round() / 1000.0,
        "ErrMsg": err_msg,
        "InvokeResult": invoke_result,
    })
}

const DATETIME: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

fn parse_datetime(s: &str) -> Option<i64> {
    let t = time::PrimitiveDateTime::parse(s.trim(), DATETIME).ok()?;
    i64::try_from(t.assume_utc().unix_timestamp_nanos() / 1_000_000).ok()
}

fn format_datetime(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(DATETIME).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_round_trip() {
        let ms = parse_datetime("2026-11-26 15:04:05").expect("parses");
        assert_eq!(format_datetime(ms), "2026-11-26 15:04:05");
        assert_eq!(parse_datetime("yesterday"), None);
    }
}
