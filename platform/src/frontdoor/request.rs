//! A front-door request's signature, action and parameters, checked and parsed once from its body: the
//! parameters borrowed as raw JSON, the event (a JSON string holding JSON) decoded in the body's own pass and
//! checked (size, nesting depth, validity) without building a value of it.

use std::borrow::Cow;

use bytes::Bytes;
use scf_protocol::limits::{MAX_ASYNC_EVENT_BYTES, MAX_EVENT_DEPTH, MAX_SYNC_EVENT_BYTES};
use scf_store::now_ms;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{ApiError, Credentials, MAX_LOGS_LIMIT, api_error};

/// A request's parameters, borrowed from its body as raw JSON.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawParams<'a> {
    #[serde(borrow)]
    function_name: Option<&'a RawValue>,
    #[serde(borrow)]
    invocation_type: Option<&'a RawValue>,
    #[serde(borrow)]
    client_context: Option<Text<'a>>,
    #[serde(borrow)]
    event: Option<Text<'a>>,
    #[serde(borrow)]
    log_type: Option<&'a RawValue>,
    #[serde(borrow)]
    namespace: Option<&'a RawValue>,
    #[serde(borrow)]
    qualifier: Option<&'a RawValue>,
    #[serde(borrow)]
    function_request_id: Option<&'a RawValue>,
    #[serde(borrow)]
    start_time: Option<&'a RawValue>,
    #[serde(borrow)]
    end_time: Option<&'a RawValue>,
    #[serde(borrow)]
    offset: Option<&'a RawValue>,
    #[serde(borrow)]
    limit: Option<&'a RawValue>,
    #[serde(borrow)]
    order: Option<&'a RawValue>,
    #[serde(borrow)]
    filter: Option<&'a RawValue>,
}

/// A string parameter: absent (or null), or a string, decoded (into a copy only when it has escapes).
fn str_param<'a>(raw: Option<&'a RawValue>, key: &str) -> Result<Option<Cow<'a, str>>, ApiError> {
    match raw.map(RawValue::get) {
        None | Some("null") => Ok(None),
        Some(text) if text.starts_with('"') => serde_json::from_str::<Text<'a>>(text)
            .map_err(|e| api_error("InvalidParameterValue", format!("{key}: {e}")))
            .and_then(|t| text_param(Some(t), key)),
        Some(_) => Err(not_a_string(key)),
    }
}

/// The event's parameter (`ClientContext`, `Event`): absent (or null), or its string.
fn text_param<'a>(text: Option<Text<'a>>, key: &str) -> Result<Option<Cow<'a, str>>, ApiError> {
    match text {
        None => Ok(None),
        Some(Text::Str(s)) => Ok(Some(s)),
        Some(Text::Other) => Err(not_a_string(key)),
    }
}

fn not_a_string(key: &str) -> ApiError {
    api_error("InvalidParameterValue", format!("{key} must be a string"))
}

/// A parameter that should be a string, decoded as the body is read: the event's text (up to 6 MB of it) is
/// unescaped in the body's one pass, not found in it first and then read again.
#[derive(Debug)]
enum Text<'a> {
    /// A string, borrowed from the body when it has no escapes.
    Str(Cow<'a, str>),
    /// Any other value (refused by [`text_param`] with the parameter's name).
    Other,
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor(std::marker::PhantomData))
    }
}

/// Builds a [`Text`] from whichever value comes.
struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> serde::de::Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'a>, E> {
        Ok(Text::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Text<'a>, E> {
        Ok(Text::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Text<'a>, E> {
        Ok(Text::Str(Cow::Owned(v)))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Text<'a>, E> {
        Ok(Text::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Text<'a>, E> {
        Ok(Text::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Text<'a>, E> {
        Ok(Text::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Text<'a>, E> {
        Ok(Text::Other)
    }

    fn visit_unit<E>(self) -> Result<Text<'a>, E> {
        Ok(Text::Other)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Text<'a>, A::Error> {
        while items.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Text::Other)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut entries: A) -> Result<Text<'a>, A::Error> {
        while entries
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Text::Other)
    }
}

fn owned(raw: Option<&RawValue>, key: &str) -> Result<Option<String>, ApiError> {
    Ok(str_param(raw, key)?.map(Cow::into_owned))
}

/// A parameter that is one of two words: `[no, yes]` (absent: `no`).
fn choice(
    raw: Option<&RawValue>,
    key: &str,
    code: &'static str,
    [no, yes]: [&str; 2],
) -> Result<bool, ApiError> {
    match str_param(raw, key)?.as_deref() {
        None => Ok(false),
        Some(v) if v == no => Ok(false),
        Some(v) if v == yes => Ok(true),
        Some(other) => Err(api_error(
            code,
            format!("{key} {other}: expected {no} or {yes}"),
        )),
    }
}

fn int_param(raw: Option<&RawValue>, key: &str, default: i64) -> Result<i64, ApiError> {
    match raw.map(RawValue::get) {
        None | Some("null") => Ok(default),
        Some(text) => serde_json::from_str::<i64>(text)
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                api_error(
                    "InvalidParameterValue",
                    format!("{key} must be a non-negative integer"),
                )
            }),
    }
}

/// What a request asks for, decoded from its body.
#[derive(Debug)]
pub(super) enum Action {
    Invoke {
        target: Target,
        event: Bytes,
        asynchronous: bool,
        tail: bool,
    },
    Logs {
        target: Target,
        query: Query,
    },
    /// An action of `actions.rs` (`ListFunctions`, `GetFunction`, `ListTriggers`), with its parameters.
    Other {
        action: String,
        target: Target,
        params: Value,
    },
}

/// The function a request names, with its namespace and qualifier.
#[derive(Debug, Default)]
pub(crate) struct Target {
    pub(crate) name: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) qualifier: Option<String>,
}

/// `GetFunctionLogs`' parameters.
#[derive(Debug)]
pub(super) struct Query {
    pub(super) request_id: Option<String>,
    pub(super) start: Option<String>,
    pub(super) end: Option<String>,
    pub(super) offset: i64,
    pub(super) limit: i64,
    pub(super) ascending: bool,
    pub(super) ret_code: Option<String>,
}

/// The request's signature, action and parameters: checked and parsed once (blocking work for a large body).
pub(super) fn decode(
    head: &hyper::http::request::Parts,
    body: &[u8],
    credentials: Option<&Credentials>,
) -> Result<Action, ApiError> {
    let header = |name: &str| {
        head.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(c) = credentials {
        let signed = crate::tc3::SignedRequest {
            method: head.method.as_str(),
            uri: head.uri.path(),
            query: head.uri.query().unwrap_or(""),
            header: &header,
            body,
        };
        crate::tc3::verify(&signed, &c.secret_id, &c.secret_key, now_ms() / 1000)
            .map_err(|e| api_error(e.code(), e.to_string()))?;
    }
    let action = header("x-tc-action")
        .ok_or_else(|| api_error("MissingParameter", "the X-TC-Action header is missing"))?;
    let p: RawParams<'_> = if body.iter().all(u8::is_ascii_whitespace) {
        RawParams::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                api_error("InvalidParameter", "the body must be a JSON object")
            } else {
                api_error("InvalidParameter", format!("the body is not JSON: {e}"))
            }
        })?
    };
    let target = Target {
        name: owned(p.function_name, "FunctionName")?,
        namespace: owned(p.namespace, "Namespace")?,
        qualifier: owned(p.qualifier, "Qualifier")?,
    };
    let (event, asynchronous) = match action.as_str() {
        "Invoke" => {
            let asynchronous = choice(
                p.invocation_type,
                "InvocationType",
                "InvalidParameterValue.InvocationType",
                ["RequestResponse", "Event"],
            )?;
            (text_param(p.client_context, "ClientContext")?, asynchronous)
        }
        "InvokeFunction" => (text_param(p.event, "Event")?, false),
        "GetFunctionLogs" => {
            let ret_code = match p.filter {
                None => None,
                Some(f) => serde_json::from_str::<Value>(f.get())
                    .ok()
                    .and_then(|v| v.get("RetCode").and_then(Value::as_str).map(str::to_owned)),
            };
            let query = Query {
                request_id: owned(p.function_request_id, "FunctionRequestId")?,
                start: owned(p.start_time, "StartTime")?,
                end: owned(p.end_time, "EndTime")?,
                offset: int_param(p.offset, "Offset", 0)?,
                limit: int_param(p.limit, "Limit", MAX_LOGS_LIMIT)?.min(MAX_LOGS_LIMIT),
                ascending: matches!(
                    str_param(p.order, "Order")?.as_deref(),
                    Some("asc") | Some("ASC")
                ),
                ret_code,
            };
            return Ok(Action::Logs { target, query });
        }
        other if crate::actions::serves(other) => {
            let params = serde_json::from_slice(body).unwrap_or(Value::Null);
            return Ok(Action::Other {
                action: other.to_owned(),
                target,
                params,
            });
        }
        other => {
            return Err(api_error(
                "InvalidAction",
                format!("the action {other} is not supported by scf-local"),
            ));
        }
    };
    let tail = choice(
        p.log_type,
        "LogType",
        "InvalidParameterValue.LogType",
        ["None", "Tail"],
    )?;
    let event = event.unwrap_or(Cow::Borrowed("{}"));
    check_event(&event, asynchronous)?;
    let event = match event {
        Cow::Owned(s) => Bytes::from(s),
        Cow::Borrowed(s) => Bytes::copy_from_slice(s.as_bytes()),
    };
    Ok(Action::Invoke {
        target,
        event,
        asynchronous,
        tail,
    })
}

/// The event's size, nesting and validity, checked without building a value of it.
pub(super) fn check_event(event: &str, asynchronous: bool) -> Result<(), ApiError> {
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
    if let Err(e) = scf_protocol::json::check_depth(event.as_bytes(), MAX_EVENT_DEPTH) {
        return Err(api_error(
            "InvalidParameterValue.ClientContext",
            format!("{e}: the limit is {MAX_EVENT_DEPTH} levels (400)"),
        ));
    }
    if serde_json::from_str::<serde::de::IgnoredAny>(event).is_err() {
        return Err(api_error(
            "InvalidParameterValue.ClientContext",
            "the event is not a JSON document (400)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use hyper::Request;

    use super::*;

    fn head(action: &str) -> hyper::http::request::Parts {
        let (parts, ()) = Request::post("/")
            .header("x-tc-action", action)
            .body(())
            .expect("request")
            .into_parts();
        parts
    }

    #[test]
    fn the_event_is_decoded_once_and_checked() {
        let body = br#"{"FunctionName":"f","ClientContext":"{\"k\":[1,2]}","LogType":"Tail"}"#;
        match decode(&head("Invoke"), body, None) {
            Ok(Action::Invoke {
                event,
                asynchronous,
                tail,
                target,
            }) => {
                assert_eq!(&event[..], br#"{"k":[1,2]}"#);
                assert_eq!((asynchronous, tail), (false, true));
                assert_eq!(target.name.as_deref(), Some("f"));
            }
            other => panic!("{other:?}"),
        }
        let deep = format!(
            r#"{{"FunctionName":"f","ClientContext":"{}{}"}}"#,
            "[".repeat(MAX_EVENT_DEPTH + 1),
            "]".repeat(MAX_EVENT_DEPTH + 1)
        );
        let e = decode(&head("Invoke"), deep.as_bytes(), None).expect_err("too deep");
        assert_eq!(e.code, "InvalidParameterValue.ClientContext");
        assert!(
            e.message.contains(&format!("{MAX_EVENT_DEPTH} levels")),
            "{}",
            e.message
        );
        let e = decode(&head("Invoke"), br#"{"FunctionName":7}"#, None).expect_err("a number");
        assert_eq!(
            (e.code, e.message.as_str()),
            ("InvalidParameterValue", "FunctionName must be a string")
        );
        // The event's parameter read in the body's pass: borrowed without escapes, refused unless a string.
        match decode(
            &head("InvokeFunction"),
            br#"{"FunctionName":"f","Event":"[1,2]"}"#,
            None,
        ) {
            Ok(Action::Invoke { event, .. }) => assert_eq!(&event[..], b"[1,2]"),
            other => panic!("{other:?}"),
        }
        for (action, body) in [
            (
                "Invoke",
                r#"{"FunctionName":"f","ClientContext":{"k":[1]}}"#,
            ),
            (
                "Invoke",
                r#"{"FunctionName":"f","ClientContext":[{"k":1}]}"#,
            ),
            ("Invoke", r#"{"FunctionName":"f","ClientContext":7}"#),
            ("InvokeFunction", r#"{"FunctionName":"f","Event":true}"#),
        ] {
            let e = decode(&head(action), body.as_bytes(), None).expect_err(body);
            assert_eq!(e.code, "InvalidParameterValue", "{body}");
            assert!(
                e.message.ends_with(" must be a string"),
                "{body}: {}",
                e.message
            );
        }
        match decode(
            &head("Invoke"),
            br#"{"FunctionName":"f","ClientContext":null}"#,
            None,
        ) {
            Ok(Action::Invoke { event, .. }) => assert_eq!(&event[..], b"{}"),
            other => panic!("{other:?}"),
        }
        // A lone surrogate has no UTF-8 form: the body is refused as the parser finds it.
        let e = decode(&head("Invoke"), br#"{"ClientContext":"\ud800"}"#, None)
            .expect_err("a lone surrogate");
        assert_eq!(e.code, "InvalidParameter", "{}", e.message);
        assert!(
            e.message.starts_with("the body is not JSON: "),
            "{}",
            e.message
        );
        let e = decode(&head("Invoke"), b"[1]", None).expect_err("not an object");
        assert_eq!(e.code, "InvalidParameter");
        let e = decode(&head("Invoke"), br#"{"ClientContext":"{not json"}"#, None)
            .expect_err("not JSON");
        assert_eq!(e.code, "InvalidParameterValue.ClientContext");
    }
}
