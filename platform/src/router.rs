//! The platform's listeners and their router: on the front door's, `/web/<function>/…` goes to that web
//! function, `/trigger/<function>/<kind>` to the on-demand triggers (`ondemand.rs`), `/console…` to the web
//! console, everything else to the TencentCloud-API front door; the API Gateway's listener (`gateway.rs`) is
//! served the same way. The listeners keep the bounds every server of the platform keeps
//! (`scf_runtime_api::conn`): heads within a timeout, a cap on connections, backoff after accept errors.
//! `CONNECT` is refused (405) on every path.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::Request;
use hyper::Response;
use hyper::body::Incoming;
use scf_protocol::{ErrorKind, FunctionError};
use scf_runtime_api::conn;

use crate::console::Console;
use crate::frontdoor::FrontDoor;
use crate::gateway::Gateway;
use crate::http::{WebBody, error_response};

/// What a listener serves.
#[derive(Debug, Clone)]
pub(crate) enum Role {
    /// The front door (and the web functions, the on-demand triggers, the web console).
    FrontDoor(Arc<Console>),
    /// The API Gateway's APIs.
    Gateway(Arc<Gateway>),
}

/// Splits `/web/<function>/<rest>?<query>` into the function's name and what it sees, `/<rest>?<query>`.
pub fn split_web_path(path: &str, query: Option<&str>) -> Option<(String, String)> {
    let rest = path.strip_prefix("/web/")?;
    let (name, inner) = match rest.split_once('/') {
        Some((n, p)) => (n, format!("/{p}")),
        None => (rest, "/".to_owned()),
    };
    if name.is_empty() {
        return None;
    }
    let inner = match query {
        Some(q) => format!("{inner}?{q}"),
        None => inner,
    };
    Some((name.to_owned(), inner))
}

/// The bounds of the platform's listener: [`conn::Limits::FRONT_DOOR`] fitted to the descriptor limit, with
/// `SCF_LOCAL_HEADER_TIMEOUT`, `SCF_LOCAL_BODY_TIMEOUT` (seconds) and `SCF_LOCAL_MAX_CONNECTIONS` taken
/// from the environment when set (`docs/platform.md`).
fn limits() -> conn::Limits {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let secs = |name: &str| {
        env(name)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
    };
    let mut l = conn::Limits::FRONT_DOOR.fit_descriptors();
    if let Some(d) = secs("SCF_LOCAL_HEADER_TIMEOUT") {
        l.header_timeout = d;
    }
    if let Some(d) = secs("SCF_LOCAL_BODY_TIMEOUT") {
        l.body_timeout = d;
    }
    if let Some(n) = env("SCF_LOCAL_MAX_CONNECTIONS").and_then(|v| v.trim().parse::<usize>().ok())
        && n > 0
    {
        l.max_connections = n;
    }
    l
}

/// Accepts connections on `listener` within [`limits`] until the task is dropped.
pub(crate) async fn serve(listener: tokio::net::TcpListener, door: Arc<FrontDoor>, role: Role) {
    let limits = limits();
    conn::serve(listener, limits, move |req| {
        let (door, role) = (door.clone(), role.clone());
        async move {
            match &role {
                Role::FrontDoor(console) => route(&door, console, req, limits.body_timeout).await,
                Role::Gateway(g) => g.handle(&door, req, limits.body_timeout).await,
            }
        }
    })
    .await;
}

async fn route(
    door: &FrontDoor,
    console: &Console,
    req: Request<Incoming>,
    body_timeout: Duration,
) -> Response<WebBody> {
    if req.method() == hyper::Method::CONNECT {
        // Not a proxy: a 2xx would turn the connection into a tunnel.
        return door
            .refuse_method(req.method())
            .map(|b| b.map_err(|e| match e {}).boxed());
    }
    let path = req.uri().path();
    if path == "/console" || path.starts_with("/console/") {
        return console.handle(req, body_timeout).await;
    }
    if let Some((function, kind)) = crate::ondemand::split_trigger_path(req.uri().path()) {
        let (function, kind) = (function.to_owned(), kind.to_owned());
        return crate::ondemand::handle(door, req, &function, &kind, body_timeout)
            .await
            .map(|b| b.map_err(|e| match e {}).boxed());
    }
    match split_web_path(req.uri().path(), req.uri().query()) {
        Some((name, path)) => match door.functions.http.get(&name) {
            Some(pool) if pool.is_web() => pool.handle(req, &path).await,
            _ => {
                let request_id = crate::requestlog::new_request_id();
                error_response(
                    &request_id,
                    &FunctionError::new(
                        ErrorKind::FunctionNotFound,
                        format!("no web function named {name}"),
                        "",
                    ),
                )
            }
        },
        None => door
            .handle(req, body_timeout)
            .await
            .map(|b| b.map_err(|e| match e {}).boxed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_paths_split() {
        assert_eq!(
            split_web_path("/web/hello/a/b", Some("x=1")),
            Some(("hello".into(), "/a/b?x=1".into()))
        );
        assert_eq!(
            split_web_path("/web/hello", None),
            Some(("hello".into(), "/".into()))
        );
        assert_eq!(
            split_web_path("/web/hello/", None),
            Some(("hello".into(), "/".into()))
        );
        assert_eq!(split_web_path("/web/", None), None);
        assert_eq!(split_web_path("/", None), None);
    }
}
