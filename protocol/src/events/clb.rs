//! CLB (load balancer): the event a CLB forwarding rule sends its function, and the answer it expects.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{GenerateError, OverrideKey, Overrides, key};

/// The event of a CLB trigger (a layer-7 forwarding rule whose backend is the function), invoked
/// synchronously. Tencent's documentation shows the request as its headers and its `payload`: the
/// method and path are the headers `X-Method` and `X-Uri`, which (like `X-Vip`, `X-Vport` and
/// `X-Real-Port`) a listener adds when configured to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClbEvent {
    /// The request's headers, with CLB's own (`X-Stgw-Time`, `X-Client-Proto`, `X-Forwarded-For`,
    /// `X-Real-IP`, …).
    pub headers: BTreeMap<String, String>,
    /// The request's body: the JSON document of a JSON body, else the text; base64 when
    /// [`is_base64_encoded`](Self::is_base64_encoded) is `true` (CLB encodes every body whose type is not
    /// `text/*`, JSON, JavaScript or XML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// Whether the payload is base64 (a documentation sample writes it as the string `"false"`; it is a
    /// JSON boolean here, as in the answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_base64_encoded: Option<bool>,
}

/// What a function behind CLB answers: the same integrated response as API Gateway's.
pub type ClbResponse = super::ApiGatewayResponse;

pub(super) const KEYS: &[OverrideKey] = &[
    key(
        "method",
        "the request's method (the `X-Method` header)",
        "POST",
    ),
    key("path", "the request's path (the `X-Uri` header)", "/orders"),
    key(
        "body",
        "the request's body (`payload`: a JSON body as its document, other text as a string)",
        "{\"item\":\"book\",\"quantity\":1}",
    ),
    key(
        "content-type",
        "the body's type (the `Content-type` header); other than text/*, JSON, JavaScript or XML, the \
         payload is the body in base64 (the body given must be base64 already)",
        "application/json",
    ),
    key(
        "host",
        "the requested host (the `Host` header)",
        "shop.example.com",
    ),
    key(
        "source-ip",
        "the client's address (the `X-Real-IP` and `X-Forwarded-For` headers)",
        "203.0.113.10",
    ),
    key(
        "headers",
        "headers to add or replace, a JSON object of strings",
        "Content-type, Host, User-Agent, X-Stgw-Time, X-Client-Proto, X-Forwarded-*, X-Real-IP, X-Vip, …",
    ),
];

/// Whether CLB passes a body of this type as it is (else it base64-encodes it).
fn is_textual(content_type: &str) -> bool {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    t.starts_with("text/")
        || matches!(
            t.as_str(),
            "application/json" | "application/javascript" | "application/xml"
        )
}

pub(super) fn sample(o: &Overrides<'_>) -> Result<ClbEvent, GenerateError> {
    let content_type = o.text("content-type");
    let source_ip = o.text("source-ip");
    let mut headers: BTreeMap<String, String> = [
        ("Content-type", content_type.clone()),
        ("Host", o.text("host")),
        ("User-Agent", "curl/8.5.0".to_owned()),
        ("X-Stgw-Time", "1718006400.125".to_owned()),
        ("X-Client-Proto", "http".to_owned()),
        ("X-Forwarded-Proto", "http".to_owned()),
        ("X-Client-Proto-Ver", "HTTP/1.1".to_owned()),
        ("X-Real-IP", source_ip.clone()),
        ("X-Forwarded-For", source_ip),
        ("X-Vip", "198.51.100.20".to_owned()),
        ("X-Vport", "80".to_owned()),
        ("X-Uri", o.text("path")),
        ("X-Method", o.text("method").to_ascii_uppercase()),
        ("X-Real-Port", "52044".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    headers.extend(o.string_map("headers")?.unwrap_or_default());
    let body = o.text("body");
    let textual = is_textual(&content_type);
    let payload = match serde_json::from_str::<Value>(&body) {
        Ok(document) if textual => document,
        _ => Value::String(body),
    };
    Ok(ClbEvent {
        headers,
        payload: Some(payload),
        is_base64_encoded: Some(!textual),
    })
}
