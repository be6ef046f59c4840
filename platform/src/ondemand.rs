//! Triggers on demand, for scripts and `scf-local trigger`: `POST /trigger/<function>/<kind>` on the front
//! door's port, with a JSON object of the event's keys (`{"bucket": "photos"}`, the keys of `scf-local event
//! generate`). The event is generated ([`scf_protocol::events::generate`]) and the function invoked with the
//! trigger's own invocation type: COS, CMQ topic and timer events are queued (async, answered with the
//! request id at once), API Gateway, CKafka, CLB and WebSocket events are invoked synchronously (answered
//! with the result and the log). The answer is `Invoke`'s, with the invocation type in
//! `X-Scf-Invocation-Type`.
//!
//! Keys not given come from the function's own trigger of that kind when it has one (a timer's name and
//! argument, a COS trigger's bucket, a CMQ or CKafka trigger's topic, an API's stage and service), then from
//! the generator's defaults.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response};
use scf_protocol::events::{self, InvocationType, Kind};
use serde_json::Value;

use crate::config::{FunctionConfig, TriggerSpec};
use crate::frontdoor::{FrontDoor, api_error};

/// The largest body of keys read.
const MAX_KEYS_BODY: usize = 64 * 1024;

/// `/trigger/<function>/<kind>` → the function's name and the kind's.
pub(crate) fn split_trigger_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/trigger/")?;
    let (function, kind) = rest.split_once('/')?;
    let kind = kind.trim_end_matches('/');
    (!function.is_empty() && !kind.is_empty() && !kind.contains('/')).then_some((function, kind))
}

/// Answers `POST /trigger/<function>/<kind>`.
pub(crate) async fn handle(
    door: &FrontDoor,
    req: Request<Incoming>,
    function: &str,
    kind: &str,
    body_timeout: std::time::Duration,
) -> Response<Full<Bytes>> {
    let prepared = prepare(door, req, function, kind, body_timeout).await;
    let (event, invocation) = match prepared {
        Ok(p) => p,
        Err(e) => return door.respond(Err(e)).await,
    };
    let asynchronous = invocation == InvocationType::Event;
    let mut resp = door.answer_invoke(function, event, asynchronous).await;
    resp.headers_mut().insert(
        "x-scf-invocation-type",
        HeaderValue::from_static(invocation.as_str()),
    );
    resp
}

async fn prepare(
    door: &FrontDoor,
    req: Request<Incoming>,
    function: &str,
    kind: &str,
    body_timeout: std::time::Duration,
) -> Result<(Bytes, InvocationType), crate::frontdoor::ApiError> {
    if req.method() != hyper::Method::POST {
        return Err(api_error(
            "UnsupportedOperation",
            "use POST /trigger/<function>/<kind> with a JSON object of the event's keys",
        ));
    }
    let kind = Kind::parse(kind).map_err(|e| api_error("InvalidParameterValue", e.to_string()))?;
    let read = tokio::time::timeout(
        body_timeout,
        Limited::new(req.into_body(), MAX_KEYS_BODY).collect(),
    );
    let body = read
        .await
        .map_err(|_| {
            api_error(
                "InvalidParameter.Payload",
                "the body did not arrive in time",
            )
        })?
        .map_err(|e| api_error("InvalidParameter", format!("reading the body: {e}")))?
        .to_bytes();
    let given: serde_json::Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        serde_json::from_slice(&body).map_err(|_| {
            api_error(
                "InvalidParameter",
                "the body must be a JSON object of the event's keys ({\"bucket\": \"photos\"})",
            )
        })?
    };
    let mut keys: Vec<(String, String)> = Vec::new();
    for (k, v) in given {
        let v = match v {
            Value::String(s) => s,
            Value::Null => continue,
            other => other.to_string(),
        };
        keys.push((k, v));
    }
    if let Some(f) = door.functions.get(function) {
        for (k, v) in configured(f.config(), kind) {
            if !keys.iter().any(|(given, _)| *given == k) {
                keys.push((k.to_owned(), v));
            }
        }
    }
    let event = events::generate(kind, &keys)
        .map_err(|e| api_error("InvalidParameterValue", e.to_string()))?;
    Ok((Bytes::from(event.to_string()), kind.info().invocation))
}

/// The banner's lines for triggers `scf-local serve` does not fire itself: timers that are disabled, and the
/// kinds run on demand.
pub(crate) fn banner(functions: &crate::functions::Functions) -> String {
    use crate::config::TriggerKind;
    let mut out = String::new();
    for c in functions.configs() {
        for t in &c.triggers {
            let (kind, name, f) = (t.kind.name(), &t.name, &c.name);
            let line = match t.kind {
                TriggerKind::Apigw => continue,
                TriggerKind::Timer if t.enable => continue,
                TriggerKind::Timer => {
                    format!("timer {name} of {f} is disabled (enable: true turns it on)")
                }
                _ if t.kind.event_kind().is_some() => {
                    format!(
                        "{kind} trigger {name} of {f}: on demand, `scf-local trigger {f} {kind}`"
                    )
                }
                _ => format!(
                    "{kind} trigger {name} of {f}: not run locally (no event is described for it)"
                ),
            };
            out.push_str(&format!("scf-local: {line}\n"));
        }
    }
    out
}

/// The keys the function's own trigger of `kind` gives.
fn configured(c: &FunctionConfig, kind: Kind) -> Vec<(&'static str, String)> {
    let Some(t) = c
        .triggers
        .iter()
        .find(|t| t.kind.event_kind() == Some(kind))
    else {
        return match kind {
            Kind::Cos => vec![("function", c.name.clone())],
            _ => Vec::new(),
        };
    };
    let param = |key: &str| match &t.spec {
        TriggerSpec::Other(p) => p.get(key).and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    match (&t.spec, kind) {
        (TriggerSpec::Timer { argument, .. }, Kind::Timer) => {
            vec![
                ("trigger-name", t.name.clone()),
                ("message", argument.clone()),
            ]
        }
        (TriggerSpec::Apigw(a), Kind::ApiGateway) => {
            vec![
                ("stage", a.stage.clone()),
                ("service-id", a.service_id.clone()),
            ]
        }
        (_, Kind::Cos) => {
            let mut out = vec![("function", c.name.clone())];
            // `<name>-<appid>.cos.<region>.myqcloud.com`
            if let Some(bucket) = param("bucket") {
                let mut parts = bucket.split('.');
                let head = parts.next().unwrap_or_default();
                let region = match (parts.next(), parts.next()) {
                    (Some("cos"), Some(r)) => Some(r.to_owned()),
                    _ => None,
                };
                match head.rsplit_once('-') {
                    Some((name, appid)) if appid.bytes().all(|b| b.is_ascii_digit()) => {
                        out.push(("bucket", name.to_owned()));
                        out.push(("appid", appid.to_owned()));
                    }
                    _ => out.push(("bucket", head.to_owned())),
                }
                out.extend(region.map(|r| ("region", r)));
            }
            out
        }
        (_, Kind::Cmq) => param("name").map(|n| ("topic", n)).into_iter().collect(),
        (_, Kind::Ckafka) => param("topic").map(|n| ("topic", n)).into_iter().collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_paths() {
        assert_eq!(split_trigger_path("/trigger/f/cos"), Some(("f", "cos")));
        assert_eq!(split_trigger_path("/trigger/f/cos/"), Some(("f", "cos")));
        assert_eq!(split_trigger_path("/trigger/f"), None);
        assert_eq!(split_trigger_path("/trigger//cos"), None);
        assert_eq!(split_trigger_path("/trigger/f/a/b"), None);
        assert_eq!(split_trigger_path("/web/f/cos"), None);
    }
}
