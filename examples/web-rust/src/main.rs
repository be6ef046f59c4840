//! A web function in Rust: a hyper HTTP/1.1 server on `0.0.0.0:$PORT` (9000 when unset, as on the cloud).
//!
//! Routes: `/` greets; `/echo` answers the method, path, query, headers and the body's length as JSON.

use std::convert::Infallible;
use std::io::Write as _;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    // One log line per request: the platform puts it in the request's log.
    let _ = writeln!(std::io::stdout(), "{} {}", parts.method, parts.uri);
    let (status, value) = match parts.uri.path() {
        "/" => (
            StatusCode::OK,
            json!({"message": "Hello from a Rust web function", "pid": std::process::id()}),
        ),
        "/echo" => {
            let headers: serde_json::Map<String, serde_json::Value> = parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        json!(String::from_utf8_lossy(v.as_bytes())),
                    )
                })
                .collect();
            (
                StatusCode::OK,
                json!({
                    "method": parts.method.as_str(),
                    "path": parts.uri.path(),
                    "query": parts.uri.query().unwrap_or(""),
                    "headers": headers,
                    "body_bytes": body.len(),
                    "pid": std::process::id(),
                }),
            )
        }
        other => (
            StatusCode::NOT_FOUND,
            json!({"error": format!("no route {other}")}),
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9000);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    let _ = writeln!(std::io::stdout(), "listening on {port}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), hyper::service::service_fn(handle))
                .await;
        });
    }
}
