//! API Gateway: the integration request event, and the integration response a function answers with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{GenerateError, OverrideKey, Overrides, key, parse_query};

/// The event an API Gateway trigger sends an event function (the "integration request"), invoked
/// synchronously.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGatewayEvent {
    /// The gateway's side of the request: its service, the API's path and method, the request id.
    pub request_context: ApiGatewayRequestContext,
    /// The request's headers (names as the client sent them; the gateway lower-cases them).
    pub headers: BTreeMap<String, String>,
    /// The request's body as text; base64 when [`is_base64_encoded`](Self::is_base64_encoded) is `true`.
    /// Absent for a request without a body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The path parameters the API declares (`/hello/{name}` → `name`) with the request's values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_parameters: Option<BTreeMap<String, String>>,
    /// The query parameters the API declares, with the request's values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_string_parameters: Option<BTreeMap<String, String>>,
    /// The header parameters the API declares, with the request's values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_parameters: Option<BTreeMap<String, String>>,
    /// The stage's variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_variables: Option<BTreeMap<String, String>>,
    /// The request's full path.
    pub path: String,
    /// The request's whole query: `a=1` as `"1"`, a repeated key as a list, a key without a value as
    /// `true`.
    pub query_string: BTreeMap<String, QueryValue>,
    /// The request's method.
    pub http_method: String,
    /// Whether [`body`](Self::body) is base64 (the API's base64 setting, or its header rules for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_base64_encoded: Option<bool>,
}

/// `requestContext` of an API Gateway event: the gateway's side of the request. The gateway may add
/// fields; they are ignored here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGatewayRequestContext {
    /// The gateway service's id (`service-…`).
    pub service_id: String,
    /// The API's path as declared, with its parameters (`/hello/{name}`).
    pub path: String,
    /// The API's method as declared (`ANY` for an API that takes every method).
    pub http_method: String,
    /// The request's id at the gateway.
    pub request_id: String,
    /// How the caller authenticated.
    pub identity: ApiGatewayIdentity,
    /// The client's address.
    pub source_ip: String,
    /// The stage (environment) the API is published in: `release`, `prepub` or `test`.
    pub stage: String,
    /// `true` when the API is a WebSocket API (Tencent's Go type; left out otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket_enable: Option<bool>,
}

/// `requestContext.identity`: the caller's credentials, for an API protected by a key pair.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGatewayIdentity {
    /// The key pair's secret id; absent for an API without key-pair authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_id: Option<String>,
}

/// One value of `queryString`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QueryValue {
    /// `a=1`: the one value.
    One(String),
    /// `a=1&a=2`: every value, in order.
    Many(Vec<String>),
    /// `a` with no `=`: `true`.
    Flag(bool),
}

/// What an event function behind API Gateway (or CLB) answers when the API has integrated responses: the
/// HTTP response to build. Anything else is a contract error at the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGatewayResponse {
    /// Whether [`body`](Self::body) is base64 of binary content (the gateway decodes it). Absent means
    /// `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_base64_encoded: Option<bool>,
    /// The HTTP status code.
    pub status_code: u16,
    /// The response's headers; a list gives a header several times.
    pub headers: BTreeMap<String, HeaderValue>,
    /// The response's body.
    pub body: String,
}

/// One header of an [`ApiGatewayResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HeaderValue {
    /// `"Content-Type": "text/html"`.
    One(String),
    /// `"Set-Cookie": ["a=1", "b=2"]`: the header once per value.
    Many(Vec<String>),
}

pub(super) const KEYS: &[OverrideKey] = &[
    key("method", "the request's method (`httpMethod`)", "POST"),
    key("path", "the request's path (`path`)", "/hello/world"),
    key(
        "resource",
        "the API's declared path (`requestContext.path`); its `{parameters}` fill `pathParameters`; \
         without it, the default only when --path is not given, else the path itself",
        "/hello/{name}",
    ),
    key(
        "query",
        "the query, `a=1&b=2&b=3&flag` (`queryString`; its one-valued entries are `queryStringParameters`)",
        "lang=en&tag=a&tag=b",
    ),
    key(
        "body",
        "the request's body (`body`); without it, POST, PUT and PATCH carry the default and other methods none",
        "{\"message\":\"hello\"}",
    ),
    key(
        "headers",
        "headers to add or replace, a JSON object of strings (`headers`)",
        "accept, content-type (with a body), host, user-agent, …",
    ),
    key(
        "is-base64-encoded",
        "whether the body is base64 (`isBase64Encoded`): true or false",
        "false",
    ),
    key("stage", "the stage (`requestContext.stage`)", "release"),
    key(
        "service-id",
        "the gateway service (`requestContext.serviceId`)",
        "service-6vc3d9qk",
    ),
    key(
        "request-id",
        "the gateway's request id (`requestContext.requestId`)",
        "2f8f4c12-5b39-4cb5-a1e6-8f0a4d0b6e2a",
    ),
    key(
        "source-ip",
        "the client's address (`requestContext.sourceIp`)",
        "203.0.113.10",
    ),
    key(
        "secret-id",
        "the caller's key-pair secret id (`requestContext.identity.secretId`)",
        "(none: an API without key-pair authentication)",
    ),
];

const DEFAULT_RESOURCE: &str = "/hello/{name}";

pub(super) fn sample(o: &Overrides<'_>) -> Result<ApiGatewayEvent, GenerateError> {
    let method = o.text("method").to_ascii_uppercase();
    let path = o.text("path");
    let resource = if o.has("resource") {
        o.text("resource")
    } else if o.has("path") {
        path.clone()
    } else {
        DEFAULT_RESOURCE.to_owned()
    };
    let body = if o.has("body") || matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
        Some(o.text("body"))
    } else {
        None
    };
    let service_id = o.text("service-id");
    let stage = o.text("stage");
    let query_string = parse_query(&o.text("query"));
    let query_string_parameters = query_string
        .iter()
        .filter_map(|(k, v)| match v {
            QueryValue::One(one) => Some((k.clone(), one.clone())),
            _ => None,
        })
        .collect();
    let mut headers: BTreeMap<String, String> = [
        ("accept", "application/json"),
        ("accept-encoding", "gzip, deflate"),
        ("endpoint-timeout", "15"),
        ("user-agent", "curl/8.5.0"),
        ("x-anonymous-consumer", "true"),
        ("x-qualifier", "$LATEST"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    headers.insert(
        "host".to_owned(),
        format!("{service_id}-1250000000.gz.apigw.tencentcs.com"),
    );
    if body.is_some() {
        headers.insert("content-type".to_owned(), "application/json".to_owned());
    }
    headers.extend(o.string_map("headers")?.unwrap_or_default());
    let secret_id = o.has("secret-id").then(|| o.text("secret-id"));
    Ok(ApiGatewayEvent {
        request_context: ApiGatewayRequestContext {
            service_id,
            path: resource.clone(),
            http_method: method.clone(),
            request_id: o.text("request-id"),
            identity: ApiGatewayIdentity { secret_id },
            source_ip: o.text("source-ip"),
            stage: stage.clone(),
            websocket_enable: None,
        },
        headers,
        body,
        path_parameters: Some(path_parameters(&resource, &path)),
        query_string_parameters: Some(query_string_parameters),
        header_parameters: Some(BTreeMap::new()),
        stage_variables: Some(BTreeMap::from([("stage".to_owned(), stage)])),
        path,
        query_string,
        http_method: method,
        is_base64_encoded: Some(o.boolean("is-base64-encoded")?),
    })
}

/// The values of `resource`'s `{name}` segments in `path` (none when the two do not match).
fn path_parameters(resource: &str, path: &str) -> BTreeMap<String, String> {
    let declared: Vec<&str> = resource.trim_matches('/').split('/').collect();
    let actual: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut out = BTreeMap::new();
    if declared.len() != actual.len() {
        return out;
    }
    for (d, a) in declared.iter().zip(&actual) {
        match d.strip_prefix('{').and_then(|d| d.strip_suffix('}')) {
            Some(name) => {
                out.insert(name.to_owned(), (*a).to_owned());
            }
            None if d != a => return BTreeMap::new(),
            None => {}
        }
    }
    out
}
