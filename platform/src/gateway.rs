//! The API Gateway listener of `scf-local serve` (`docs/triggers.md`, API Gateway): the APIs of every
//! function's `apigw` triggers (and of http components) on their own port, served by the router's accept
//! loop like the front door.
//!
//! - **Routes**: an API is served at its path and under its stage (`/release/…`). Paths match by prefix on
//!   whole segments (an API at `/` takes every path, as the gateway's do); `{name}` matches one segment; of
//!   the APIs that match, the longest path wins, then the one with more fixed segments, then a method over
//!   `ANY`. No match: 404 with the gateway's body. Two functions claiming one method and path are refused at
//!   start.
//! - **Event functions** get the integration-request event ([`ApiGatewayEvent`], the one description of it),
//!   invoked synchronously; the answer is mapped as the gateway maps it: the integrated response
//!   ([`ApiGatewayResponse`]) when the API has integrated responses, else the return value as JSON; a
//!   return that breaks the contract gets the gateway's error.
//! - **Web functions** (and http components) are proxied, the stage taken off the path.
//! - `enableCORS`: preflight requests are answered by the gateway, answers carry
//!   `Access-Control-Allow-Origin`; `serviceTimeout`: past it the caller gets 504 (the invocation runs on
//!   and is logged).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use scf_protocol::ErrorKind;
use scf_protocol::events::{
    ApiGatewayEvent, ApiGatewayIdentity, ApiGatewayRequestContext, ApiGatewayResponse,
    HeaderValue as Hv, QueryValue, parse_query,
};
use scf_protocol::limits::MAX_SYNC_EVENT_BYTES;

use crate::PlatformError;
use crate::config::{Endpoint, HttpKind, ParamPosition, TriggerSpec};
use crate::frontdoor::{FrontDoor, Reply};
use crate::functions::{Function, Functions};
use crate::http::{WebBody, http_status, request_too_large};
use crate::pool::Finished;

/// The gateway's default port.
pub const DEFAULT_APIGW_PORT: u16 = 9101;

/// The gateway's error for an integrated response that breaks the contract.
const CONTRACT_ERROR: &str = r#"{"errno":403,"error":"Invalid scf response format. please check your scf response format."}"#;

/// One path segment of an API.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Fixed(String),
    Param(String),
}

/// One API, reaching one function.
#[derive(Debug, Clone)]
struct Route {
    function: String,
    web: bool,
    stage: String,
    service_id: String,
    segments: Vec<Segment>,
    endpoint: Endpoint,
    /// How well the route fits a path it matches: [`Route::rank_of`].
    rank: (usize, usize, bool),
}

impl Route {
    /// The API `endpoint` of `function` in `stage` of service `service_id`.
    fn new(function: &str, web: bool, stage: &str, service_id: &str, endpoint: &Endpoint) -> Route {
        let segments: Vec<Segment> = segments(&endpoint.path)
            .into_iter()
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Param(name.to_owned()),
                    None => Segment::Fixed(s.to_owned()),
                },
            )
            .collect();
        Route {
            function: function.to_owned(),
            web,
            stage: stage.to_owned(),
            service_id: service_id.to_owned(),
            rank: Route::rank_of(&segments, endpoint),
            segments,
            endpoint: endpoint.clone(),
        }
    }

    /// The path parameters when the API's path is a prefix of `path`'s segments.
    fn matches(&self, path: &[&str]) -> Option<BTreeMap<String, String>> {
        if self.segments.len() > path.len() {
            return None;
        }
        let mut params = BTreeMap::new();
        for (s, p) in self.segments.iter().zip(path) {
            match s {
                Segment::Fixed(f) if f == p => {}
                Segment::Fixed(_) => return None,
                Segment::Param(name) => {
                    params.insert(name.clone(), (*p).to_owned());
                }
            }
        }
        Some(params)
    }

    fn takes(&self, method: &Method) -> bool {
        self.endpoint.method == "ANY" || self.endpoint.method == method.as_str()
    }

    /// How well a route of `segments` and `endpoint` fits (longer paths, then fixed segments, then a method
    /// over `ANY`).
    fn rank_of(segments: &[Segment], endpoint: &Endpoint) -> (usize, usize, bool) {
        let fixed = segments
            .iter()
            .filter(|s| matches!(s, Segment::Fixed(_)))
            .count();
        (segments.len(), fixed, endpoint.method != "ANY")
    }
}

/// A request matched to a route.
struct Matched<'a> {
    route: &'a Route,
    params: BTreeMap<String, String>,
    /// The path without the stage.
    path: String,
}

/// The APIs of every function.
#[derive(Debug)]
pub(crate) struct Gateway {
    routes: Vec<Route>,
}

/// Whether two APIs' paths take the same requests: the same fixed segments, a parameter where the other has
/// one.
fn same_shape(a: &[Segment], b: &[Segment]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (Segment::Fixed(x), Segment::Fixed(y)) => x == y,
            (Segment::Param(_), Segment::Param(_)) => true,
            _ => false,
        })
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

impl Gateway {
    /// The APIs of `functions`' triggers, or `None` when no function has one. Two functions (or one, twice)
    /// claiming one method and path are refused, with both names.
    pub(crate) fn build(functions: &Functions) -> Result<Option<Gateway>, PlatformError> {
        let mut routes: Vec<Route> = Vec::new();
        for c in functions.configs() {
            let web = c.http.as_ref().is_some_and(|h| h.kind == HttpKind::Web);
            for t in &c.triggers {
                let TriggerSpec::Apigw(a) = &t.spec else {
                    continue;
                };
                for e in &a.endpoints {
                    let route = Route::new(&c.name, web, &a.stage, &a.service_id, e);
                    if let Some(other) = routes.iter().find(|r| {
                        r.endpoint.method == e.method && same_shape(&r.segments, &route.segments)
                    }) {
                        return Err(PlatformError::Config(format!(
                            "API Gateway: {} {} is claimed by {} and by {}: each method and path reaches one function",
                            e.method, e.path, other.function, c.name
                        )));
                    }
                    routes.push(route);
                }
            }
        }
        if routes.is_empty() {
            return Ok(None);
        }
        routes.sort_by(|a, b| {
            (a.endpoint.path.as_str(), a.endpoint.method.as_str())
                .cmp(&(b.endpoint.path.as_str(), b.endpoint.method.as_str()))
        });
        Ok(Some(Gateway { routes }))
    }

    /// The banner's lines: one per API, and where the stages are.
    pub(crate) fn lines(&self, addr: std::net::SocketAddr) -> Vec<String> {
        let mut lines: Vec<String> = self
            .routes
            .iter()
            .map(|r| {
                format!(
                    "apigw {} http://{addr}{} -> {}",
                    r.endpoint.method, r.endpoint.path, r.function
                )
            })
            .collect();
        let mut stages: Vec<&str> = self.routes.iter().map(|r| r.stage.as_str()).collect();
        stages.sort_unstable();
        stages.dedup();
        lines.push(format!(
            "apigw listening on http://{addr} (each API also under /{})",
            stages.join(", /")
        ));
        lines
    }

    /// The route for `method` and `path`, tried without the route's stage first. The path is split once, and
    /// once more per stage it begins with: nothing is allocated for an API that does not match, so a request
    /// to a project of many APIs costs a comparison per API.
    fn find(&self, method: &Method, path: &str, any_method: bool) -> Option<Matched<'_>> {
        let whole = segments(path);
        // The path without the last stage it began with, split: the routes of a project share their stage.
        let mut staged: Option<(&str, Vec<&str>)> = None;
        let mut best: Option<(&Route, BTreeMap<String, String>, &str)> = None;
        for r in &self.routes {
            if !any_method && !r.takes(method) {
                continue;
            }
            let stripped = match path
                .strip_prefix('/')
                .and_then(|p| p.strip_prefix(r.stage.as_str()))
            {
                Some("") => Some("/"),
                Some(rest) if rest.starts_with('/') => Some(rest),
                _ => None,
            };
            if let Some(rest) = stripped
                && staged.as_ref().is_none_or(|(stage, _)| *stage != r.stage)
            {
                staged = Some((r.stage.as_str(), segments(rest)));
            }
            let stripped = stripped
                .zip(staged.as_ref())
                .map(|(rest, (_, parts))| (rest, parts.as_slice()));
            for (candidate, parts) in stripped.into_iter().chain([(path, whole.as_slice())]) {
                let Some(params) = r.matches(parts) else {
                    continue;
                };
                if best.as_ref().is_none_or(|(b, _, _)| r.rank > b.rank) {
                    best = Some((r, params, candidate));
                }
                break;
            }
        }
        best.map(|(route, params, path)| Matched {
            route,
            params,
            path: path.to_owned(),
        })
    }

    /// Answers one request to the gateway; an event's body must arrive within `body_timeout`.
    pub(crate) async fn handle(
        &self,
        door: &FrontDoor,
        req: Request<Incoming>,
        body_timeout: Duration,
    ) -> Response<WebBody> {
        let request_id = crate::requestlog::new_request_id();
        let path = req.uri().path().to_owned();
        let preflight = req.method() == Method::OPTIONS
            && req.headers().contains_key("access-control-request-method");
        if preflight
            && let Some(m) = self.find(req.method(), &path, true)
            && m.route.endpoint.cors
            && m.route.endpoint.method != "OPTIONS"
        {
            return with_request_id(
                preflight_answer(&self.routes, &m, req.headers()),
                &request_id,
            );
        }
        let Some(m) = self.find(req.method(), &path, false) else {
            let host = req
                .headers()
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("")
                .to_owned();
            return with_request_id(not_found(&path, &host), &request_id);
        };
        let origin = req.headers().get(hyper::header::ORIGIN).cloned();
        let route = m.route;
        let timeout = route.endpoint.service_timeout;
        let mut resp = match door.functions.get(&route.function) {
            None => gateway_error(
                StatusCode::BAD_GATEWAY,
                502,
                &format!("the function {} is gone", route.function),
            ),
            Some(Function::Http(pool)) if route.web => {
                let inner = match req.uri().query() {
                    Some(q) => format!("{}?{q}", m.path),
                    None => m.path.clone(),
                };
                match tokio::time::timeout(timeout, pool.handle(req, &inner)).await {
                    Ok(r) => r,
                    Err(_) => timed_out(timeout),
                }
            }
            Some(function) => match event(&m, req, &request_id, body_timeout).await {
                Err(resp) => resp,
                Ok(event) => {
                    let run = door.invoke(function, event, false, false);
                    match tokio::time::timeout(timeout, run).await {
                        Err(_) => timed_out(timeout),
                        Ok(Err(e)) => gateway_error(StatusCode::BAD_GATEWAY, 502, &e.message),
                        Ok(Ok(Reply::Invoked { finished, .. })) => answer(route, finished),
                        Ok(Ok(_)) => gateway_error(
                            StatusCode::BAD_GATEWAY,
                            502,
                            "the function answered no result",
                        ),
                    }
                }
            },
        };
        if route.endpoint.cors {
            let allow = origin.unwrap_or(HeaderValue::from_static("*"));
            resp.headers_mut()
                .insert(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        }
        with_request_id(resp, &request_id)
    }
}

fn with_request_id(mut resp: Response<WebBody>, request_id: &str) -> Response<WebBody> {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut()
            .insert(HeaderName::from_static("x-api-requestid"), v);
    }
    resp
}

fn full(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<WebBody> {
    let mut r = Response::new(Full::new(body.into()).map_err(|e| match e {}).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r
}

/// The gateway's 404, as it words it (`/` written `\/`).
fn not_found(path: &str, host: &str) -> Response<WebBody> {
    let message = format!("There is no api match uri '{path}' host '{host}'");
    let body = serde_json::json!({ "message": message })
        .to_string()
        .replace('/', "\\/");
    full(StatusCode::NOT_FOUND, "application/json", body)
}

/// An error of the gateway itself: `{"errno": N, "error": "…"}`.
fn gateway_error(status: StatusCode, errno: u16, message: &str) -> Response<WebBody> {
    let body = serde_json::json!({ "errno": errno, "error": message }).to_string();
    full(status, "application/json", body)
}

fn timed_out(timeout: Duration) -> Response<WebBody> {
    gateway_error(
        StatusCode::GATEWAY_TIMEOUT,
        504,
        &format!(
            "Request backend timeout: the function did not answer within the API's serviceTimeout ({} s)",
            timeout.as_secs_f64()
        ),
    )
}

/// A CORS preflight, answered by the gateway: the methods of the APIs at the path.
fn preflight_answer(routes: &[Route], m: &Matched<'_>, headers: &HeaderMap) -> Response<WebBody> {
    let mut methods: Vec<&str> = routes
        .iter()
        .filter(|r| r.endpoint.path == m.route.endpoint.path)
        .map(|r| r.endpoint.method.as_str())
        .collect();
    if methods.contains(&"ANY") {
        methods = vec!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"];
    }
    methods.push("OPTIONS");
    let mut r = full(StatusCode::OK, "text/plain", Bytes::new());
    let h = r.headers_mut();
    let origin = headers
        .get(hyper::header::ORIGIN)
        .cloned()
        .unwrap_or(HeaderValue::from_static("*"));
    h.insert(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if let Ok(v) = HeaderValue::from_str(&methods.join(",")) {
        h.insert(hyper::header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    let asked = headers
        .get(hyper::header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static("*"));
    h.insert(hyper::header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
    h.insert(
        hyper::header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    r
}

/// Whether the body reaches the function base64-encoded: the API's `isBase64Encoded`, or one of its
/// `base64EncodedTriggerRules` matching the request's `Accept` or `Content-Type` (its media types,
/// parameters left out, case ignored).
fn base64_wanted(e: &Endpoint, headers: &HeaderMap) -> bool {
    e.base64
        || e.base64_rules.iter().any(|rule| {
            headers
                .get_all(rule.header.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|t| t.split(';').next().unwrap_or("").trim())
                .any(|t| rule.values.iter().any(|v| v.eq_ignore_ascii_case(t)))
        })
}

/// The integration-request event of a request matched to `m`.
async fn event(
    m: &Matched<'_>,
    req: Request<Incoming>,
    request_id: &str,
    body_timeout: Duration,
) -> Result<Bytes, Response<WebBody>> {
    let route = m.route;
    let e = &route.endpoint;
    let (parts, body) = req.into_parts();
    let too_large = |n: u64| {
        let fe = request_too_large(n);
        error_answer(fe.kind, Bytes::from(fe.to_body(request_id)))
    };
    let read = tokio::time::timeout(
        body_timeout,
        Limited::new(body, MAX_SYNC_EVENT_BYTES).collect(),
    );
    let body = read
        .await
        .map_err(|_| {
            gateway_error(
                StatusCode::REQUEST_TIMEOUT,
                408,
                "the request's body did not arrive in time",
            )
        })?
        .map_err(|_| too_large(MAX_SYNC_EVENT_BYTES as u64 + 1))?
        .to_bytes();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &parts.headers {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        headers
            .entry(k.as_str().to_owned())
            .and_modify(|old| {
                old.push(',');
                old.push_str(&v);
            })
            .or_insert(v);
    }
    let base64 = base64_wanted(e, &parts.headers);
    let query_string = parse_query(parts.uri.query().unwrap_or(""));
    let declared = |position: ParamPosition, value: &dyn Fn(&str) -> Option<String>| {
        e.params
            .iter()
            .filter(|p| p.position == position)
            .filter_map(|p| {
                value(&p.name)
                    .or_else(|| p.default.clone())
                    .map(|v| (p.name.clone(), v))
            })
            .collect::<BTreeMap<String, String>>()
    };
    let query_parameters = declared(ParamPosition::Query, &|name| match query_string.get(name) {
        Some(QueryValue::One(v)) => Some(v.clone()),
        Some(QueryValue::Many(all)) => all.first().cloned(),
        Some(QueryValue::Flag(_)) => Some(String::new()),
        None => None,
    });
    let header_parameters = declared(ParamPosition::Header, &|name| {
        headers.get(&name.to_ascii_lowercase()).cloned()
    });
    for (k, v) in [
        ("x-api-requestid", request_id.to_owned()),
        ("x-anonymous-consumer", "true".to_owned()),
        ("x-qualifier", "$LATEST".to_owned()),
        (
            "endpoint-timeout",
            e.service_timeout.as_secs_f64().to_string(),
        ),
    ] {
        headers.entry(k.to_owned()).or_insert(v);
    }
    let body = if body.is_empty() {
        None
    } else if base64 {
        Some(base64::engine::general_purpose::STANDARD.encode(&body))
    } else {
        Some(String::from_utf8_lossy(&body).into_owned())
    };
    let event = ApiGatewayEvent {
        request_context: ApiGatewayRequestContext {
            service_id: route.service_id.clone(),
            path: e.path.clone(),
            http_method: e.method.clone(),
            request_id: request_id.to_owned(),
            identity: ApiGatewayIdentity::default(),
            // The listener is on the loopback interface: every client is this machine.
            source_ip: "127.0.0.1".to_owned(),
            stage: route.stage.clone(),
            websocket_enable: None,
        },
        headers,
        body,
        path_parameters: Some(m.params.clone()),
        query_string_parameters: Some(query_parameters),
        header_parameters: Some(header_parameters),
        stage_variables: Some(BTreeMap::from([("stage".to_owned(), route.stage.clone())])),
        path: m.path.clone(),
        query_string,
        http_method: parts.method.as_str().to_owned(),
        is_base64_encoded: Some(base64),
    };
    let text = serde_json::to_vec(&event)
        .map_err(|e| gateway_error(StatusCode::INTERNAL_SERVER_ERROR, 500, &e.to_string()))?;
    if text.len() > MAX_SYNC_EVENT_BYTES {
        return Err(too_large(text.len() as u64));
    }
    Ok(Bytes::from(text))
}

/// A function error as the caller sees it: the error body (`docs/errors.md`), the status of its kind.
fn error_answer(kind: ErrorKind, body: Bytes) -> Response<WebBody> {
    let mut r = full(http_status(kind), "application/json", body);
    if let Ok(v) = HeaderValue::from_str(&kind.status_code().to_string()) {
        r.headers_mut()
            .insert(HeaderName::from_static("x-scf-error-code"), v);
    }
    r
}

/// The HTTP answer for what the function answered.
fn answer(route: &Route, finished: Finished) -> Response<WebBody> {
    let body = match finished.result {
        Err((kind, body)) => return error_answer(kind, body),
        Ok(body) => body,
    };
    if !route.endpoint.integrated_response {
        return full(StatusCode::OK, "application/json", body);
    }
    integrated(&body)
        .unwrap_or_else(|| full(StatusCode::BAD_GATEWAY, "application/json", CONTRACT_ERROR))
}

/// The HTTP response an integrated response describes, or `None` when it breaks the contract (not the
/// type, a status outside 100–999, a header that cannot be sent, a body that is not the base64 it says).
fn integrated(body: &[u8]) -> Option<Response<WebBody>> {
    let r: ApiGatewayResponse = serde_json::from_slice(body).ok()?;
    let status = StatusCode::from_u16(r.status_code).ok()?;
    let content = if r.is_base64_encoded.unwrap_or(false) {
        base64::engine::general_purpose::STANDARD
            .decode(r.body.as_bytes())
            .ok()?
    } else {
        r.body.into_bytes()
    };
    let mut resp = Response::new(
        Full::new(Bytes::from(content))
            .map_err(|e| match e {})
            .boxed(),
    );
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    for (name, value) in r.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
        let values = match value {
            Hv::One(v) => vec![v],
            Hv::Many(all) => all,
        };
        for v in values {
            h.append(name.clone(), HeaderValue::from_str(&v).ok()?);
        }
    }
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Base64Rule, Param};

    fn endpoint(path: &str, method: &str) -> Endpoint {
        Endpoint {
            path: path.into(),
            method: method.into(),
            integrated_response: false,
            cors: false,
            service_timeout: Duration::from_secs(15),
            base64: false,
            base64_rules: Vec::new(),
            params: Vec::<Param>::new(),
            api_name: None,
        }
    }

    fn route(function: &str, path: &str, method: &str) -> Route {
        route_in(function, path, method, "release")
    }

    fn route_in(function: &str, path: &str, method: &str, stage: &str) -> Route {
        Route::new(function, false, stage, "service-x", &endpoint(path, method))
    }

    /// What a request should find: the function, its one path parameter if any, and the path it sees.
    type Want<'a> = Option<(&'a str, Option<(&'a str, &'a str)>, &'a str)>;

    /// Asserts what each `(method, path)` finds in `g`.
    fn assert_finds(g: &Gateway, cases: &[(&str, &str, Want<'_>)]) {
        for (method, path, want) in cases {
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            let found = g
                .find(&method, path, false)
                .map(|m| (m.route.function.clone(), m.params, m.path));
            let want = want.map(|(function, param, seen)| {
                let params = param
                    .map(|(k, v)| BTreeMap::from([(k.to_owned(), v.to_owned())]))
                    .unwrap_or_default();
                (function.to_owned(), params, seen.to_owned())
            });
            assert_eq!(found, want, "{method} {path}");
        }
    }

    #[test]
    fn routes_by_prefix_parameters_stage_and_method() {
        let g = Gateway {
            routes: vec![
                route("root", "/", "GET"),
                route("hello", "/hello/{name}", "POST"),
                route("any", "/hello/{name}", "ANY"),
                route("fixed", "/hello/world", "POST"),
            ],
        };
        assert_finds(
            &g,
            &[
                (
                    "POST",
                    "/hello/ann",
                    Some(("hello", Some(("name", "ann")), "/hello/ann")),
                ),
                (
                    "GET",
                    "/hello/ann",
                    Some(("any", Some(("name", "ann")), "/hello/ann")),
                ),
                (
                    "POST",
                    "/hello/world",
                    Some(("fixed", None, "/hello/world")),
                ),
                (
                    "POST",
                    "/release/hello/bo",
                    Some(("hello", Some(("name", "bo")), "/hello/bo")),
                ),
                ("GET", "/release", Some(("root", None, "/"))),
                (
                    "GET",
                    "/anything/else",
                    Some(("root", None, "/anything/else")),
                ),
                ("DELETE", "/nothing", None),
            ],
        );
    }

    #[test]
    fn routes_of_stages_in_turn_strip_their_own() {
        // The stages alternate in the list, so each route's stripped path is split anew.
        let g = Gateway {
            routes: vec![
                route_in("release-hello", "/hello/{name}", "POST", "release"),
                route_in("test-hello", "/hello/{name}", "POST", "test"),
                route_in("release-bye", "/bye", "POST", "release"),
                route_in("test-bye", "/bye", "POST", "test"),
            ],
        };
        assert_finds(
            &g,
            &[
                (
                    "POST",
                    "/test/hello/ann",
                    Some(("test-hello", Some(("name", "ann")), "/hello/ann")),
                ),
                ("POST", "/release/bye", Some(("release-bye", None, "/bye"))),
                (
                    "POST",
                    "/test/bye/now",
                    Some(("test-bye", None, "/bye/now")),
                ),
                // Without a stage, the first route of the best rank: both take the path as it is.
                (
                    "POST",
                    "/hello/bo",
                    Some(("release-hello", Some(("name", "bo")), "/hello/bo")),
                ),
                // A stage's name must be a whole segment.
                ("POST", "/testbye", None),
            ],
        );
    }

    #[test]
    fn base64_rules_read_media_types() {
        let mut e = endpoint("/", "ANY");
        e.base64_rules = vec![Base64Rule {
            header: "Content-Type".into(),
            values: vec!["image/png".into()],
        }];
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("Image/PNG; q=1"));
        assert!(base64_wanted(&e, &h));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        assert!(!base64_wanted(&e, &h));
    }

    #[test]
    fn integrated_responses_and_the_contract() {
        let ok = integrated(
            br#"{"isBase64Encoded": true, "statusCode": 201, "headers": {"X-A": ["1", "2"], "Content-Type": "text/plain"}, "body": "aGk="}"#,
        )
        .expect("valid");
        assert_eq!(ok.status().as_u16(), 201);
        assert_eq!(ok.headers().get_all("x-a").iter().count(), 2);
        for bad in [
            &br#"{"statusCode": 200, "body": "x"}"#[..],
            br#"{"statusCode": 200, "headers": {}, "body": {"a": 1}}"#,
            br#"{"statusCode": 70000, "headers": {}, "body": ""}"#,
            br#"{"isBase64Encoded": true, "statusCode": 200, "headers": {}, "body": "!!"}"#,
            br#""just a string""#,
        ] {
            assert!(
                integrated(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
