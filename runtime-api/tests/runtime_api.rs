//! The runtime API server's rules, spoken to over a real socket.
#![allow(clippy::unwrap_used, reason = "tests")]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use scf_protocol::api::{Dialect, InvocationMeta, LambdaIdentity};
use scf_runtime_api::{Answer, ApiHandle, Listener};

async fn connect(port: u16) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn call(
    s: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, hyper::HeaderMap, String) {
    s.ready().await.unwrap();
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "runtime")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let resp = s.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn meta(id: &str) -> InvocationMeta {
    InvocationMeta {
        request_id: id.into(),
        memory_limit_in_mb: 128,
        time_limit_in_ms: 3000,
    }
}

#[tokio::test]
async fn repeated_next_first_result_wins_and_results_need_an_invocation() {
    let listener = Listener::tcp_loopback().await.unwrap();
    let port = listener.port().unwrap();
    let api = ApiHandle::serve(listener, Dialect::Scf, LambdaIdentity::default());
    let mut c = connect(port).await;

    // A result with no invocation in flight is refused, clearly.
    let (status, _, body) = call(&mut c, "POST", "/runtime/invocation/response", "1").await;
    assert_eq!(status, 400);
    assert!(body.contains("no invocation is in flight"), "{body}");
    // Unknown calls are 404s that name the call.
    let (status, _, body) = call(&mut c, "GET", "/runtime/nope", "").await;
    assert_eq!((status, body.contains("GET /runtime/nope")), (404, true));

    // init/ready: the first call counts, with the instance's init split.
    let req = hyper::Request::builder()
        .method("POST")
        .uri("/runtime/init/ready")
        .header("host", "runtime")
        .header("x-scf-init-function-us", "1500")
        .body(Full::new(Bytes::from_static(b" ")))
        .unwrap();
    c.ready().await.unwrap();
    assert_eq!(c.send_request(req).await.unwrap().status(), 200);
    let ready = api.ready().await.unwrap();
    assert_eq!(
        ready.init_function,
        Some(std::time::Duration::from_micros(1500))
    );
    let (status, _, _) = call(&mut c, "POST", "/runtime/init/ready", " ").await;
    assert_eq!(status, 400, "a second ready is refused");

    // next returns the event with the per-request headers; a repeated next returns the same one.
    let rx = api
        .dispatch(meta("req-1"), Bytes::from_static(b"{\"k\":1}"))
        .unwrap();
    let (status, headers, body) = call(&mut c, "GET", "/runtime/invocation/next", "").await;
    assert_eq!((status, body.as_str()), (200, "{\"k\":1}"));
    assert_eq!(headers["request_id"], "req-1");
    assert_eq!(headers["memory_limit_in_mb"], "128");
    assert_eq!(headers["time_limit_in_ms"], "3000");
    let (_, headers, body) = call(&mut c, "GET", "/runtime/invocation/next", "").await;
    assert_eq!(
        (headers["request_id"].to_str().unwrap(), body.as_str()),
        ("req-1", "{\"k\":1}")
    );

    // The first result wins; a second one is refused and changes nothing.
    assert_eq!(
        call(&mut c, "POST", "/runtime/invocation/response", "\"first\"")
            .await
            .0,
        200
    );
    assert_eq!(
        call(&mut c, "POST", "/runtime/invocation/error", "\"second\"")
            .await
            .0,
        400
    );
    assert_eq!(
        rx.await.unwrap(),
        Answer::Response(Bytes::from_static(b"\"first\""))
    );

    // The next invocation flows on the same connection; an error result is passed on as posted.
    let rx = api
        .dispatch(meta("req-2"), Bytes::from_static(b"[]"))
        .unwrap();
    let (_, headers, _) = call(&mut c, "GET", "/runtime/invocation/next", "").await;
    assert_eq!(headers["request_id"], "req-2");
    assert_eq!(
        call(&mut c, "POST", "/runtime/invocation/error", "{\"x\":1}")
            .await
            .0,
        200
    );
    assert_eq!(
        rx.await.unwrap(),
        Answer::Error(Bytes::from_static(b"{\"x\":1}"))
    );
}

#[tokio::test]
async fn the_lambda_dialect_names_the_invocation_in_the_path_and_answers_202() {
    let listener = Listener::tcp_loopback().await.unwrap();
    let port = listener.port().unwrap();
    let who = LambdaIdentity {
        function_name: "fn".into(),
        region: "ap-guangzhou".into(),
    };
    let api = ApiHandle::serve(listener, Dialect::Lambda, who);
    let mut c = connect(port).await;

    let rx = api
        .dispatch(meta("req-9"), Bytes::from_static(b"{}"))
        .unwrap();
    let (status, headers, _) = call(&mut c, "GET", "/2018-06-01/runtime/invocation/next", "").await;
    assert_eq!(status, 200);
    assert!(api.ready().await.is_some(), "the first next means ready");
    assert_eq!(headers["lambda-runtime-aws-request-id"], "req-9");
    assert_eq!(
        headers["lambda-runtime-invoked-function-arn"],
        "arn:aws:lambda:ap-guangzhou:000000000000:function:fn"
    );
    let deadline: u64 = headers["lambda-runtime-deadline-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        deadline > 1_600_000_000_000,
        "an epoch deadline: {deadline}"
    );

    // A result for another invocation is refused; the right one is accepted with 202.
    let (status, _, _) = call(
        &mut c,
        "POST",
        "/2018-06-01/runtime/invocation/other/error",
        "{}",
    )
    .await;
    assert_eq!(status, 400);
    let body = r#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":["  File \"x.py\", line 1"]}"#;
    let (status, _, _) = call(
        &mut c,
        "POST",
        "/2018-06-01/runtime/invocation/req-9/error",
        body,
    )
    .await;
    assert_eq!(status, 202);
    let Answer::Error(posted) = rx.await.unwrap() else {
        panic!("an error")
    };
    let v: serde_json::Value = serde_json::from_slice(&posted).unwrap();
    assert_eq!(v["errorType"], "UnhandledError");
    assert_eq!(v["statusCode"], 430);
    assert_eq!(v["requestId"], "req-9");
    assert_eq!(v["stackTrace"], "ValueError: boom\n  File \"x.py\", line 1");
}

#[tokio::test]
async fn an_invocation_no_next_has_taken_can_be_taken_back() {
    let listener = Listener::tcp_loopback().await.unwrap();
    let port = listener.port().unwrap();
    let api = ApiHandle::serve(listener, Dialect::Scf, LambdaIdentity::default());

    // Handed over, never pulled: it can be taken back, and is then not delivered.
    let rx = api
        .dispatch(meta("never"), Bytes::from_static(b"1"))
        .unwrap();
    assert!(
        api.dispatch(meta("second"), Bytes::from_static(b"2"))
            .is_err(),
        "one invocation waits at a time"
    );
    assert!(api.reclaim(), "it was never delivered");
    assert!(!api.reclaim(), "taken back once");
    assert!(rx.await.is_err(), "its answer never comes");

    // Pulled by next: it was delivered and cannot be taken back.
    let rx = api
        .dispatch(meta("pulled"), Bytes::from_static(b"3"))
        .unwrap();
    let mut c = connect(port).await;
    let (status, headers, body) = call(&mut c, "GET", "/runtime/invocation/next", "").await;
    assert_eq!((status, body.as_str()), (200, "3"));
    assert_eq!(
        headers["request_id"], "pulled",
        "the taken-back one was skipped"
    );
    assert!(!api.reclaim(), "delivered");
    assert_eq!(
        call(&mut c, "POST", "/runtime/invocation/response", "4")
            .await
            .0,
        200
    );
    assert_eq!(
        rx.await.unwrap(),
        Answer::Response(Bytes::from_static(b"4"))
    );

    // Once the platform drops the API, a waiting next is told to stop.
    let waiting =
        tokio::spawn(async move { call(&mut c, "GET", "/runtime/invocation/next", "").await.0 });
    drop(api);
    assert_eq!(waiting.await.unwrap(), 410);
}

#[tokio::test]
async fn a_result_over_the_limit_is_not_read_past_it() {
    let listener = Listener::tcp_loopback().await.unwrap();
    let port = listener.port().unwrap();
    let api = ApiHandle::serve(listener, Dialect::Scf, LambdaIdentity::default());
    let rx = api
        .dispatch(meta("big"), Bytes::from_static(b"{}"))
        .unwrap();
    let mut c = connect(port).await;
    assert_eq!(
        call(&mut c, "GET", "/runtime/invocation/next", "").await.0,
        200
    );
    let big = "x".repeat(scf_protocol::MAX_RESPONSE_BYTES + 10);
    let req = hyper::Request::builder()
        .method("POST")
        .uri("/runtime/invocation/response")
        .header("host", "runtime")
        .body(Full::new(Bytes::from(big)))
        .unwrap();
    c.ready().await.unwrap();
    let status = c.send_request(req).await.map(|r| r.status().as_u16());
    assert!(matches!(status, Ok(413) | Err(_)), "{status:?}");
    assert!(
        matches!(rx.await.unwrap(), Answer::TooLarge(n) if n > scf_protocol::MAX_RESPONSE_BYTES)
    );
}

#[tokio::test]
async fn a_second_result_posted_while_the_first_is_read_is_refused_unread() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = Listener::tcp_loopback().await.unwrap();
    let port = listener.port().unwrap();
    let api = ApiHandle::serve(listener, Dialect::Scf, LambdaIdentity::default());
    let rx = api
        .dispatch(meta("one"), Bytes::from_static(b"{}"))
        .unwrap();
    let mut c = connect(port).await;
    assert_eq!(
        call(&mut c, "GET", "/runtime/invocation/next", "").await.0,
        200
    );
    // Two results arrive slowly, each its head and part of its body: whichever the platform claims first is
    // read; the other is refused at once, unread.
    let mut posts = Vec::new();
    for word in ["\"aaaa", "\"bbbb"] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let head = format!(
            "POST /runtime/invocation/response HTTP/1.1\r\nHost: runtime\r\nContent-Length: 6\r\n\r\n{word}"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        posts.push(s);
    }
    let mut b = posts.pop().unwrap();
    let mut a = posts.pop().unwrap();
    let (mut ra, mut rb) = (vec![0u8; 4096], vec![0u8; 4096]);
    let (refused, n, mut claimed, word) = tokio::select! {
        n = a.read(&mut ra) => (ra, n.unwrap(), b, "\"bbbb\""),
        n = b.read(&mut rb) => (rb, n.unwrap(), a, "\"aaaa\""),
    };
    let refused = String::from_utf8_lossy(&refused[..n]).into_owned();
    assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
    assert!(refused.contains("being read already"), "{refused}");
    claimed.write_all(b"\"").await.unwrap();
    let mut answer = vec![0u8; 12];
    claimed.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    assert_eq!(
        rx.await.unwrap(),
        Answer::Response(Bytes::from(word.to_owned()))
    );
}

/// Reads from `s` into `buf` until it holds one whole answer with a `Content-Length` body; returns its text and
/// keeps what follows it in `buf`.
async fn read_answer(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> String {
    use tokio::io::AsyncReadExt as _;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                let answer: Vec<u8> = buf.drain(..end + 4 + length).collect();
                return String::from_utf8_lossy(&answer).into_owned();
            }
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection ended; read so far: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A result and the next `next` written back to back (HTTP/1.1 pipelining, as the shim does) are answered in
/// order: the platform has the result at once, and the result's 200 waits for the `next` behind it to be
/// answered, so both answers go out in one write (the instance wakes once per invocation).
#[tokio::test]
async fn a_result_pipelined_with_the_next_poll_is_taken_at_once_and_answered_with_the_next_invocation()
 {
    use tokio::io::AsyncWriteExt as _;
    let listener = Listener::tcp_loopback().await.unwrap();
    let port = listener.port().unwrap();
    let api = ApiHandle::serve(listener, Dialect::Scf, LambdaIdentity::default());
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    const NEXT: &str = "GET /runtime/invocation/next HTTP/1.1\r\nhost: runtime\r\n\r\n";

    let mut rx = api
        .dispatch(meta("req-1"), Bytes::from_static(b"1"))
        .unwrap();
    s.write_all(NEXT.as_bytes()).await.unwrap();
    let first = read_answer(&mut s, &mut buf).await;
    assert!(
        first.starts_with("HTTP/1.1 200") && first.contains("req-1"),
        "{first}"
    );

    for (i, path) in [(2, "response"), (3, "error")] {
        let post = format!(
            "POST /runtime/invocation/{path} HTTP/1.1\r\nhost: runtime\r\ncontent-length: 3\r\n\r\n\"{i}\"{NEXT}"
        );
        s.write_all(post.as_bytes()).await.unwrap();
        // The platform has the result at once …
        let posted = Bytes::from(format!("\"{i}\""));
        let expected = if path == "response" {
            Answer::Response(posted)
        } else {
            Answer::Error(posted)
        };
        assert_eq!(rx.await.unwrap(), expected);
        // … while its answer waits: the server (on this test's one thread) has written nothing. (Loopback TCP
        // delivers in the writer's call, so anything written would be readable now.)
        let mut probe = [0u8; 64];
        match s.try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => {
                panic!("the result's answer was written before the next invocation: {other:?}")
            }
        }
        // The next invocation answers the waiting `next`, on the same connection, right behind the result's 200,
        // both in one write.
        let id = format!("req-{i}");
        rx = api.dispatch(meta(&id), Bytes::from_static(b"{}")).unwrap();
        let accepted = read_answer(&mut s, &mut buf).await;
        assert!(accepted.starts_with("HTTP/1.1 200"), "{accepted}");
        assert!(
            String::from_utf8_lossy(&buf).contains(&id),
            "the next invocation came in the same read as the result's answer: {buf:?}"
        );
        let next = read_answer(&mut s, &mut buf).await;
        assert!(
            next.starts_with("HTTP/1.1 200") && next.contains(&id),
            "{next}"
        );
    }
    // The first result wins for pipelined posts too: the second one is refused, and the `next` behind them
    // waits for the next invocation. A refusal is not held: it and the 200 before it are written at once.
    let twice = format!(
        "POST /runtime/invocation/response HTTP/1.1\r\nhost: runtime\r\ncontent-length: 1\r\n\r\n4POST /runtime/invocation/response HTTP/1.1\r\nhost: runtime\r\ncontent-length: 1\r\n\r\n5{NEXT}"
    );
    s.write_all(twice.as_bytes()).await.unwrap();
    assert!(
        read_answer(&mut s, &mut buf)
            .await
            .starts_with("HTTP/1.1 200")
    );
    let refused = read_answer(&mut s, &mut buf).await;
    assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
    assert_eq!(
        rx.await.unwrap(),
        Answer::Response(Bytes::from_static(b"4"))
    );
}
