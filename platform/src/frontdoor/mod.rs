//! The front door: shaped like the TencentCloud API (`POST /` with `X-TC-Action`, JSON bodies,
//! `{"Response": {…, "RequestId"}}` answers), so the official TencentCloud SDKs work against it.
//!
//! Actions: `Invoke` (`InvocationType` `RequestResponse` or `Event`, `ClientContext`, `LogType: Tail`,
//! `Qualifier`, `Namespace`), `InvokeFunction` (sync, `Event`), `GetFunctionLogs`.
//!
//! The body is read once (bounded), its signature checked, and parsed once: the parameters are borrowed
//! from it as raw JSON, and the event (a JSON string holding JSON) is decoded once and checked (size,
//! nesting depth, validity) without building a value of it. Bodies larger than [`INLINE_BODY`] are handled
//! off the event loop. A sync invocation runs as its own task: a caller that goes away does not stop it.

use std::borrow::Cow;
use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use scf_runtime_api::conn::{BodyBudget, BodyError, read_body};
use scf_store::{EnqueueError, LogQuery, LogRecord, Store, now_ms};
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::FunctionConfig;
use crate::functions::{Function, Functions};
use crate::pool::{Finished, Source};

mod request;

pub(crate) use request::Target;
use request::{Action, Query, check_event, decode};

/// Bodies up to this size are parsed (and answers serialised) on the event loop; larger ones off it. A small
/// body takes microseconds, less than the hand-over to another thread would.
pub const INLINE_BODY: usize = 64 * 1024;
/// The largest body the front door reads: TencentCloud's limit for a TC3-signed POST, 10 MB (room for a 6 MB
/// event written as a JSON string, escapes and all). A declared `Content-Length` over it is refused before a
/// byte is read; a body without one is cut off at it.
pub const MAX_BODY: usize = 10 * 1024 * 1024;
/// Bytes of large bodies (past their first 64 KB) the front door holds at once, across connections: two
/// bodies of the largest size. A body waits for room, within the body timeout.
pub const BODY_BUDGET: usize = 2 * MAX_BODY;
/// The most of `Log` and `RetMsg` text one `GetFunctionLogs` answer holds (its first record is always in
/// it): past it the records are left for the next page (`Offset`), whatever `Limit` says.
pub const MAX_LOGS_ANSWER_BYTES: usize = 8 * 1024 * 1024;
/// The most records one `GetFunctionLogs` answer holds (`Limit`'s default and its largest value).
const MAX_LOGS_LIMIT: i64 = 10_000;

static BUDGET: std::sync::LazyLock<BodyBudget> =
    std::sync::LazyLock::new(|| BodyBudget::new(BODY_BUDGET));

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
pub(crate) struct FrontDoor {
    pub(crate) functions: Arc<Functions>,
    pub(crate) store: Store,
    /// Signatures are verified when set.
    pub(crate) credentials: Option<Credentials>,
    /// Where queue changes are told (`activity.rs`).
    pub(crate) events: crate::activity::Events,
}

/// An API-level error: `{"Response":{"Error":{"Code","Message"},"RequestId"}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

pub(crate) fn api_error(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        code,
        message: message.into(),
    }
}

/// The API error of a body the front door did not read whole.
fn body_error(e: BodyError) -> ApiError {
    match e {
        BodyError::TooLarge { .. } => api_error(
            "InvalidParameter.RequestTooLarge",
            format!("{e}: the front door reads request bodies up to 10 MB (406 RequestTooLarge)"),
        ),
        BodyError::TimedOut(_) => api_error(
            "InvalidParameter.Payload",
            format!("{e} (the connection was slow, or the platform was reading many large bodies)"),
        ),
        BodyError::Broken(_) => api_error("InvalidParameter.Payload", e.to_string()),
    }
}

fn json_response(body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// What an action answers (inside `Response`, beside `RequestId`).
pub(crate) enum Reply {
    Value(Value),
    Invoked {
        finished: Finished,
        tail: bool,
    },
    /// An async event committed to its queue (its request id).
    Queued(String),
    Logs(Vec<(i64, LogRecord)>),
}

impl FrontDoor {
    /// Answers a request with a method the front door does not serve at all (`CONNECT`): 405 and the
    /// TencentCloud error, never a 2xx (which would make the connection a tunnel).
    pub(crate) fn refuse_method(&self, method: &hyper::Method) -> Response<Full<Bytes>> {
        let request_id = crate::requestlog::new_request_id();
        let e = api_error(
            "UnsupportedOperation",
            format!("{method} is not supported: use POST / with X-TC-Action and a JSON body"),
        );
        let mut r = json_response(envelope(&request_id, Err(e)));
        *r.status_mut() = hyper::StatusCode::METHOD_NOT_ALLOWED;
        r
    }

    /// Answers one request to the front door; its body must arrive within `body_timeout`.
    pub(crate) async fn handle(
        &self,
        req: Request<Incoming>,
        body_timeout: std::time::Duration,
    ) -> Response<Full<Bytes>> {
        self.answer(req, body_timeout, self.credentials.clone())
            .await
    }

    /// Answers a request whose caller is known already (the console's, after its login): no signature.
    pub(crate) async fn handle_trusted(
        &self,
        req: Request<Incoming>,
        body_timeout: std::time::Duration,
    ) -> Response<Full<Bytes>> {
        self.answer(req, body_timeout, None).await
    }

    async fn answer(
        &self,
        req: Request<Incoming>,
        body_timeout: std::time::Duration,
        credentials: Option<Credentials>,
    ) -> Response<Full<Bytes>> {
        let reply = self.handle_inner(req, body_timeout, credentials).await;
        self.respond(reply).await
    }

    /// Invokes `name` with `event` the way `Invoke` does (checked, sync or queued) and answers as it does:
    /// the `/trigger` route's invocations.
    pub(crate) async fn answer_invoke(
        &self,
        name: &str,
        event: Bytes,
        asynchronous: bool,
    ) -> Response<Full<Bytes>> {
        let reply = async {
            let target = Target {
                name: Some(name.to_owned()),
                ..Target::default()
            };
            let function = self.target(&target)?;
            check_event(&String::from_utf8_lossy(&event), asynchronous)?;
            self.invoke(function, event, asynchronous, !asynchronous)
                .await
        }
        .await;
        self.respond(reply).await
    }

    /// `{"Response": …}` for `reply`, serialised off the event loop when it is large.
    pub(crate) async fn respond(&self, reply: Result<Reply, ApiError>) -> Response<Full<Bytes>> {
        let request_id = crate::requestlog::new_request_id();
        let large = matches!(&reply, Ok(Reply::Invoked { finished, .. })
            if finished.log.len() + result_len(finished) > INLINE_BODY)
            || matches!(&reply, Ok(Reply::Logs(_)));
        let body = if large {
            tokio::task::spawn_blocking(move || envelope(&request_id, reply))
                .await
                .unwrap_or_default()
        } else {
            envelope(&request_id, reply)
        };
        json_response(body)
    }

    async fn handle_inner(
        &self,
        req: Request<Incoming>,
        body_timeout: std::time::Duration,
        credentials: Option<Credentials>,
    ) -> Result<Reply, ApiError> {
        if req.method() != hyper::Method::POST {
            return Err(api_error(
                "UnsupportedOperation",
                "use POST / with X-TC-Action and a JSON body",
            ));
        }
        let (head, body) = req.into_parts();
        // The budget's share is held until the body is decoded (the event is copied out of it).
        let read = read_body(&head.headers, body, MAX_BODY, body_timeout, Some(&BUDGET))
            .await
            .map_err(body_error)?;
        let action = if read.bytes.len() > INLINE_BODY {
            tokio::task::spawn_blocking(move || decode(&head, &read.bytes, credentials.as_ref()))
                .await
                .map_err(|e| api_error("InternalError", e.to_string()))??
        } else {
            let action = decode(&head, &read.bytes, credentials.as_ref());
            drop(read);
            action?
        };
        match action {
            Action::Invoke {
                target,
                event,
                asynchronous,
                tail,
            } => {
                let function = self.target(&target)?;
                self.invoke(function, event, asynchronous, tail).await
            }
            Action::Logs { target, query } => {
                let function = self.target(&target)?;
                self.logs(function.config(), query).await
            }
            Action::Other {
                action,
                target,
                params,
            } => crate::actions::handle(self, &action, &target, &params),
        }
    }

    /// The function `target` names (an event function, or a web / image-style one), checked against its
    /// `Namespace` and `Qualifier`.
    pub(crate) fn target(&self, target: &Target) -> Result<Function, ApiError> {
        let name = target
            .name
            .as_deref()
            .ok_or_else(|| api_error("MissingParameter", "FunctionName is required"))?;
        let function = self.functions.get(name).ok_or_else(|| {
            api_error(
                "ResourceNotFound.Function",
                format!("function {name} does not exist (435 FunctionNotFound)"),
            )
        })?;
        let ns = target.namespace.as_deref().unwrap_or("default");
        if ns != function.config().namespace {
            return Err(api_error(
                "ResourceNotFound.Namespace",
                format!("function {name} is not in namespace {ns} (435 FunctionNotFound)"),
            ));
        }
        match target.qualifier.as_deref() {
            None | Some("$LATEST") | Some("") => Ok(function),
            Some(q) => Err(api_error(
                "ResourceNotFound.Version",
                format!("version {q} of {name} does not exist; scf-local serves $LATEST"),
            )),
        }
    }

    pub(crate) async fn invoke(
        &self,
        function: Function,
        event: Bytes,
        asynchronous: bool,
        tail: bool,
    ) -> Result<Reply, ApiError> {
        let request_id = crate::requestlog::new_request_id();
        let run = match function {
            Function::Http(pool) => {
                let name = &pool.config.name;
                if pool.is_web() {
                    return Err(api_error(
                        "InvalidParameterValue",
                        format!(
                            "{name} is a web function: send HTTP requests to /web/{name}/ instead"
                        ),
                    ));
                }
                if asynchronous {
                    return Err(api_error(
                        "InvalidParameterValue.InvocationType",
                        "scf-local runs image-style functions synchronously only (InvocationType RequestResponse)",
                    ));
                }
                let id = request_id.clone();
                tokio::spawn(async move { pool.invoke_event(&id, event).await })
            }
            Function::Event(pool) => {
                if asynchronous {
                    return self.enqueue(&pool.config, &request_id, event).await;
                }
                let Some(permit) = pool.try_permit() else {
                    // A refused call is in the function's logs too, as on the platform.
                    let e = pool.throttled();
                    let finished = pool
                        .refuse(&request_id, now_ms(), e, None, Source::SYNC)
                        .await;
                    return Ok(Reply::Invoked { finished, tail });
                };
                let id = request_id.clone();
                tokio::spawn(async move { pool.invoke(permit, &id, event, Source::SYNC).await })
            }
        };
        // The invocation is its own task: if the caller goes away, it runs to completion and is logged.
        let mut watch = CallerWatch(Some(request_id));
        let finished = run
            .await
            .map_err(|e| api_error("InternalError", e.to_string()))?;
        watch.0 = None;
        Ok(Reply::Invoked { finished, tail })
    }

    /// Commits an async event to the function's queue (`Invoke` with `Event`, the timers, the `/trigger`
    /// route); the commit hands it to the function's dispatcher when that waits for one.
    pub(crate) async fn enqueue(
        &self,
        config: &FunctionConfig,
        request_id: &str,
        event: Bytes,
    ) -> Result<Reply, ApiError> {
        let name = &config.name;
        self.store
            .enqueue(name, request_id, event, now_ms(), config.serve.queue_limit)
            .await
            .map_err(|e| match e {
                EnqueueError::Full { .. } => api_error("LimitExceeded.AsyncQueue", e.to_string()),
                EnqueueError::Store(_) => api_error("InternalError", e.to_string()),
            })?;
        self.events.emit(|| crate::activity::Event::Queue {
            function: name.clone(),
        });
        Ok(Reply::Queued(request_id.to_owned()))
    }

    async fn logs(&self, config: &FunctionConfig, q: Query) -> Result<Reply, ApiError> {
        let time = |key: &str, v: Option<String>| -> Result<Option<i64>, ApiError> {
            match v {
                None => Ok(None),
                Some(s) => parse_datetime(&s).map(Some).ok_or_else(|| {
                    api_error(
                        "InvalidParameterValue",
                        format!("{key} {s}: expected YYYY-MM-DD HH:MM:SS (UTC)"),
                    )
                }),
            }
        };
        let failed = match q.ret_code.as_deref() {
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
        let query = LogQuery {
            function: config.name.clone(),
            request_id: q.request_id,
            from_ms: time("StartTime", q.start)?,
            to_ms: time("EndTime", q.end)?,
            after_seq: 0,
            failed,
            newest_first: !q.ascending,
            limit: q.limit,
            offset: q.offset,
            max_bytes: Some(MAX_LOGS_ANSWER_BYTES),
        };
        let records = self
            .store
            .logs(query)
            .await
            .map_err(|e| api_error("InternalError", e.to_string()))?;
        Ok(Reply::Logs(records))
    }
}

/// Says so when the caller of a sync invocation went away before its answer (the invocation goes on).
struct CallerWatch(Option<String>);

impl Drop for CallerWatch {
    fn drop(&mut self) {
        if let Some(id) = self.0.take() {
            let _ = writeln!(
                std::io::stderr(),
                "scf-local: the caller of request {id} went away; the invocation runs to completion and is logged"
            );
        }
    }
}

fn result_len(f: &Finished) -> usize {
    match &f.result {
        Ok(b) | Err((_, b)) => b.len(),
    }
}

/// The `Result` object of a sync invocation (keys in the order the answers have always had).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InvokeResult<'a> {
    bill_duration: i64,
    duration: f64,
    err_msg: Cow<'a, str>,
    function_request_id: &'a str,
    invoke_result: i32,
    log: &'a str,
    mem_usage: u64,
    ret_msg: Cow<'a, str>,
}

impl<'a> InvokeResult<'a> {
    fn of(f: &'a Finished, tail: bool) -> InvokeResult<'a> {
        let (ret_msg, err_msg, invoke_result) = match &f.result {
            Ok(body) => (String::from_utf8_lossy(body), Cow::Borrowed(""), 0),
            Err((_, body)) => (Cow::Borrowed(""), String::from_utf8_lossy(body), -1),
        };
        let ms = f.duration.as_secs_f64() * 1000.0;
        InvokeResult {
            bill_duration: ms.ceil() as i64,
            duration: (ms * 1000.0).round() / 1000.0,
            err_msg,
            function_request_id: &f.request_id,
            invoke_result,
            log: if tail { &f.log } else { "" },
            mem_usage: f.mem_usage,
            ret_msg,
        }
    }
}

/// One record of `GetFunctionLogs`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LogEntry<'a> {
    bill_duration: i64,
    duration: f64,
    function_name: &'a str,
    invoke_finished: i32,
    level: &'a str,
    log: &'a str,
    mem_usage: i64,
    request_id: &'a str,
    ret_code: i64,
    ret_msg: &'a str,
    retry_num: i64,
    source: &'a str,
    start_time: String,
}

/// `{"Response": {…, "RequestId"}}`, or `{"Response": {"Error": …, "RequestId"}}`, as JSON text.
fn envelope(request_id: &str, reply: Result<Reply, ApiError>) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Envelope<T> {
        response: T,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Invoked<'a> {
        request_id: &'a str,
        result: InvokeResult<'a>,
    }
    /// An accepted event's `Result`: every figure 0, every text empty (keys in the answers' order).
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct QueuedResult<'a> {
        bill_duration: u8,
        duration: u8,
        err_msg: &'a str,
        function_request_id: &'a str,
        invoke_result: u8,
        log: &'a str,
        mem_usage: u8,
        ret_msg: &'a str,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Queued<'a> {
        request_id: &'a str,
        result: QueuedResult<'a>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Logs<'a> {
        data: Vec<LogEntry<'a>>,
        request_id: &'a str,
        total_count: usize,
    }
    let text = match reply {
        Ok(Reply::Invoked { finished, tail }) => serde_json::to_vec(&Envelope {
            response: Invoked {
                request_id,
                result: InvokeResult::of(&finished, tail),
            },
        }),
        Ok(Reply::Queued(id)) => serde_json::to_vec(&Envelope {
            response: Queued {
                request_id,
                result: QueuedResult {
                    bill_duration: 0,
                    duration: 0,
                    err_msg: "",
                    function_request_id: &id,
                    invoke_result: 0,
                    log: "",
                    mem_usage: 0,
                    ret_msg: "",
                },
            },
        }),
        Ok(Reply::Logs(records)) => {
            let data: Vec<LogEntry<'_>> = records
                .iter()
                .map(|(_, r)| LogEntry {
                    bill_duration: r.duration_ms.ceil() as i64,
                    duration: r.duration_ms,
                    function_name: &r.function,
                    invoke_finished: 1,
                    level: if r.ret_code == 0 { "INFO" } else { "ERROR" },
                    log: &r.log,
                    mem_usage: r.mem_usage,
                    request_id: &r.request_id,
                    ret_code: r.ret_code,
                    ret_msg: &r.ret_msg,
                    retry_num: r.retry_num,
                    source: &r.invocation_type,
                    start_time: format_datetime(r.start_ms),
                })
                .collect();
            serde_json::to_vec(&Envelope {
                response: Logs {
                    total_count: data.len(),
                    data,
                    request_id,
                },
            })
        }
        Ok(Reply::Value(mut v)) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("RequestId".into(), Value::String(request_id.to_owned()));
            }
            serde_json::to_vec(&json!({ "Response": v }))
        }
        Err(e) => serde_json::to_vec(&json!({
            "Response": { "Error": { "Code": e.code, "Message": e.message }, "RequestId": request_id }
        })),
    };
    text.unwrap_or_default()
}

const DATETIME: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

fn parse_datetime(s: &str) -> Option<i64> {
    let t = time::PrimitiveDateTime::parse(s.trim(), DATETIME).ok()?;
    i64::try_from(t.assume_utc().unix_timestamp_nanos() / 1_000_000).ok()
}

pub(crate) fn format_datetime(ms: i64) -> String {
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

    #[test]
    fn an_accepted_event_is_answered_as_the_cloud_answers_it() {
        let text = envelope("api-1", Ok(Reply::Queued("fn-1".into())));
        assert_eq!(
            String::from_utf8_lossy(&text),
            r#"{"Response":{"RequestId":"api-1","Result":{"BillDuration":0,"Duration":0,"ErrMsg":"","FunctionRequestId":"fn-1","InvokeResult":0,"Log":"","MemUsage":0,"RetMsg":""}}}"#
        );
    }
}
