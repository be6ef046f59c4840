//! The shim's client against a tiny Lambda Runtime API server served under a path prefix, as Lambda
//! emulators give it (`AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT/.rt`). The platform's own server cannot serve a
//! prefix, so this test brings its own: hyper on a loopback port, one connection per call.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use scf_shim::{Config, Runtime};

/// What the server saw: `(method, path, body)` of every request, in order.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// Serves the Lambda dialect under `/.rt` on a loopback port: every `next` is the invocation `req-1` (event
/// `{"n":1}`), its result is accepted with 202, anything else is a 404. The server lives as long as the test
/// process.
fn serve() -> (u16, Seen) {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let port = std_listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let seen = seen2.clone();
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path().to_owned();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            seen.lock().unwrap().push((
                                method.clone(),
                                path.clone(),
                                String::from_utf8_lossy(&body).into_owned(),
                            ));
                            let answer = match (method.as_str(), path.as_str()) {
                                ("GET", "/.rt/2018-06-01/runtime/invocation/next") => {
                                    Response::builder()
                                        .header("lambda-runtime-aws-request-id", "req-1")
                                        .header("lambda-runtime-deadline-ms", "99999999999999")
                                        .body(Full::new(Bytes::from_static(br#"{"n":1}"#)))
                                }
                                ("POST", "/.rt/2018-06-01/runtime/invocation/req-1/response") => {
                                    Response::builder()
                                        .status(StatusCode::ACCEPTED)
                                        .body(Full::new(Bytes::new()))
                                }
                                _ => Response::builder().status(StatusCode::NOT_FOUND).body(
                                    Full::new(Bytes::from(format!("no route {method} {path}"))),
                                ),
                            };
                            Ok::<_, Infallible>(answer.unwrap())
                        }
                    });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    (port, seen)
}

fn config(api: &str) -> Config {
    let vars: HashMap<&str, String> = HashMap::from([
        ("_HANDLER", "index.main".to_owned()),
        ("USER_CODE_ROOT", "/".to_owned()),
        ("AWS_LAMBDA_RUNTIME_API", api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", "prefixed".to_owned()),
    ]);
    Config::from_lookup(|k| vars.get(k).cloned()).unwrap()
}

#[test]
fn every_call_goes_under_the_path_prefix() {
    let (port, seen) = serve();
    let mut runtime = Runtime::connect(
        config(&format!("127.0.0.1:{port}/.rt")),
        std::time::Duration::ZERO,
    )
    .unwrap();
    runtime.ready(Ok(()), std::time::Duration::ZERO).unwrap();
    let inv = runtime.next(None).unwrap();
    assert_eq!(inv.request_id, "req-1");
    assert_eq!(&inv.event[..], br#"{"n":1}"#);
    assert_eq!(inv.context.function_name, "prefixed");
    // The result is posted under the prefix and accepted (202).
    runtime.post(Ok(b"\"ok\"".to_vec())).unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (
                "GET".to_owned(),
                "/.rt/2018-06-01/runtime/invocation/next".to_owned(),
                String::new()
            ),
            (
                "POST".to_owned(),
                "/.rt/2018-06-01/runtime/invocation/req-1/response".to_owned(),
                "\"ok\"".to_owned()
            ),
        ]
    );
}

#[test]
fn without_the_prefix_the_platform_s_404_is_a_protocol_error() {
    let (port, seen) = serve();
    let mut runtime = Runtime::connect(
        config(&format!("127.0.0.1:{port}")),
        std::time::Duration::ZERO,
    )
    .unwrap();
    runtime.ready(Ok(()), std::time::Duration::ZERO).unwrap();
    let e = runtime.next(None).unwrap_err();
    assert!(
        matches!(&e, scf_shim::ShimError::Protocol(m)
            if m.contains("GET /2018-06-01/runtime/invocation/next answered 404")),
        "{e}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn a_bad_address_is_a_configuration_error_not_a_connect_failure() {
    let vars: HashMap<&str, &str> = HashMap::from([
        ("_HANDLER", "index.main"),
        ("USER_CODE_ROOT", "/"),
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:port/.rt"),
    ]);
    let e = Config::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned())).unwrap_err();
    assert!(
        matches!(&e, scf_shim::ShimError::Config(m) if m.contains("'port' is not a port number")),
        "{e}"
    );
}
