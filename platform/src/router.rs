//! The platform's one listener and its router: `/web/<function>/…` goes to that web function, `/console…` to
//! the web console, everything else to the TencentCloud-API front door.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::BodyExt as _;
use hyper::Request;
use hyper::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use scf_protocol::{ErrorKind, FunctionError};

use crate::console::Console;
use crate::frontdoor::FrontDoor;
use crate::http::{WebBody, error_response};

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
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    door: Arc<FrontDoor>,
    console: Arc<Console>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, say: try again shortly rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (door, console) = (door.clone(), console.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (door, console) = (door.clone(), console.clone());
                async move { Ok::<_, Infallible>(route(&door, &console, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(door: &FrontDoor, console: &Console, req: Request<Incoming>) -> Response<WebBody> {
    let path = req.uri().path();
    if path == "/console" || path.starts_with("/console/") {
        return console.handle(req).await;
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
