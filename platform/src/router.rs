//! The platform's listeners and their router: on the front door's, `/web/<function>/…` goes to that web
//! function, `/trigger/<function>/<kind>` to the on-demand triggers (`ondemand.rs`), everything else to the
//! TencentCloud-API front door; the API Gateway's listener (`gateway.rs`) is served by the same loop.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::BodyExt as _;
use hyper::Request;
use hyper::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use scf_protocol::{ErrorKind, FunctionError};

use crate::frontdoor::FrontDoor;
use crate::gateway::Gateway;
use crate::http::{WebBody, error_response};

/// What a listener serves.
#[derive(Debug, Clone)]
pub(crate) enum Role {
    /// The front door (and the web functions, the on-demand triggers).
    FrontDoor,
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

/// Accepts connections on `listener` until the task is dropped.
pub(crate) async fn serve(listener: tokio::net::TcpListener, door: Arc<FrontDoor>, role: Role) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, say: try again shortly rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (door, role) = (door.clone(), role.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (door, role) = (door.clone(), role.clone());
                async move {
                    Ok::<_, Infallible>(match &role {
                        Role::FrontDoor => route(&door, req).await,
                        Role::Gateway(g) => g.handle(&door, req).await,
                    })
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(door: &FrontDoor, req: Request<Incoming>) -> Response<WebBody> {
    if let Some((function, kind)) = crate::ondemand::split_trigger_path(req.uri().path()) {
        let (function, kind) = (function.to_owned(), kind.to_owned());
        return crate::ondemand::handle(door, req, &function, &kind)
            .await
            .map(|b| b.map_err(|e| match e {}).boxed());
    }
    match split_web_path(req.uri().path(), req.uri().query()) {
        Some((name, path)) => match door.functions.http.get(&name) {
            Some(pool) if pool.is_web() => pool.handle(req, &path).await,
            _ => {
                let request_id = uuid::Uuid::new_v4().to_string();
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
            .handle(req)
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
