//! The servers' shared bounds (`scf_runtime_api::conn`), over real sockets: heads in time, the connection
//! cap and who makes room, bodies read within their limit and time.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use scf_runtime_api::conn::{self, BodyError, Limits};

/// Tight bounds, so that the tests see them act quickly.
const TIGHT: Limits = Limits {
    name: "a test server",
    header_timeout: Duration::from_millis(300),
    body_timeout: Duration::from_millis(300),
    max_connections: 4,
    max_head_bytes: 8 * 1024,
    hold_answers: false,
};

/// Serves on a free port with `limits` on its own thread and runtime; `handle` answers. Returns the port.
fn start<F, Fut>(limits: Limits, handle: F) -> u16
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap().port()).unwrap();
            conn::serve(l, limits, handle).await;
        });
    });
    rx.recv().unwrap()
}

async fn ok(_req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from_static(b"ok")))
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // Only a guard against a test hanging forever: every read below waits for something that must come.
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    s
}

/// Reads until the server closes the connection; returns what it sent.
fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server did not close the connection: {e}"),
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One request on its own connection; returns the whole answer.
fn request(port: u16, raw: &str) -> String {
    let mut s = connect(port);
    s.write_all(raw.as_bytes()).unwrap();
    read_to_close(&mut s)
}

const GET: &str = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

#[test]
fn a_stalled_head_and_an_idle_connection_are_closed() {
    let port = start(TIGHT, ok);
    let mut stalled = connect(port);
    stalled
        .write_all(b"POST / HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let mut idle = connect(port);
    idle.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut silent = connect(port);
    // The stalled head gets no answer; the idle connection got its answer, then was closed.
    assert_eq!(read_to_close(&mut stalled), "");
    let answered = read_to_close(&mut idle);
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(
        answered
            .to_ascii_lowercase()
            .contains("keep-alive: timeout="),
        "the answer says how long an idle connection is kept: {answered}"
    );
    assert_eq!(read_to_close(&mut silent), "");
}

#[test]
fn past_the_cap_the_longest_idle_connection_makes_room() {
    let limits = Limits {
        header_timeout: Duration::from_secs(600),
        ..TIGHT
    };
    let port = start(limits, ok);
    // Ten silent connections against a cap of four: each new one closes the oldest.
    let mut idle: Vec<TcpStream> = (0..10).map(|_| connect(port)).collect();
    // A caller still gets its answer.
    let answer = request(port, GET);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The oldest were closed to make room (the newest may still be held).
    for (i, s) in idle.iter_mut().take(6).enumerate() {
        assert_eq!(read_to_close(s), "", "connection {i}");
    }
}

#[test]
fn a_busy_connection_is_never_cut_to_make_room() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let started_tx = std::sync::Mutex::new(started_tx);
    let limits = Limits {
        header_timeout: Duration::from_secs(600),
        max_connections: 1,
        ..TIGHT
    };
    let g = gate.clone();
    let port = start(limits, move |_req| {
        let g = g.clone();
        let _ = started_tx.lock().unwrap().send(());
        async move {
            g.notified().await;
            Response::new(Full::new(Bytes::from_static(b"finished")))
        }
    });
    let mut busy = connect(port);
    busy.write_all(GET.as_bytes()).unwrap();
    started_rx.recv().unwrap();
    // The only place is busy: a new connection is closed at once, unanswered.
    assert_eq!(request(port, GET), "");
    gate.notify_one();
    let answer = read_to_close(&mut busy);
    assert!(answer.ends_with("finished"), "{answer}");
}

/// A server whose handler reads the body with `limit` and says what happened.
fn body_server(limit: usize) -> u16 {
    start(TIGHT, move |req| async move {
        let (head, body) = req.into_parts();
        let text = match conn::read_body(&head.headers, body, limit, TIGHT.body_timeout, None).await
        {
            Ok(b) => format!("read {}", b.bytes.len()),
            Err(BodyError::TooLarge { declared, .. }) => format!("too large {declared:?}"),
            Err(BodyError::TimedOut(_)) => "timed out".to_owned(),
            Err(BodyError::Broken(e)) => format!("broken {e}"),
        };
        Response::new(Full::new(Bytes::from(text)))
    })
}

#[test]
fn bodies_are_refused_past_their_limit_while_reading_and_within_their_time() {
    let port = body_server(1000);
    let post = |head: &str, body: &[u8]| {
        let mut s = connect(port);
        s.write_all(head.as_bytes()).unwrap();
        let _ = s.write_all(body);
        read_to_close(&mut s)
    };
    let a = post(
        "POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n\r\n",
        b"hello",
    );
    assert!(a.ends_with("read 5"), "{a}");
    // A declared length over the limit is refused before a byte is sent.
    let a = post(
        "POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 400000000\r\n\r\n",
        b"",
    );
    assert!(a.ends_with("too large Some(400000000)"), "{a}");
    // Without a declared length, reading stops at the limit.
    let chunk = format!("{:x}\r\n{}\r\n", 600, "x".repeat(600));
    let a = post(
        "POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
        format!("{chunk}{chunk}{chunk}0\r\n\r\n").as_bytes(),
    );
    assert!(a.ends_with("too large None"), "{a}");
    // A body that stops arriving.
    let a = post(
        "POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 100\r\n\r\n",
        b"only ten b",
    );
    assert!(a.ends_with("timed out"), "{a}");
}

#[test]
fn heads_past_their_size_are_refused() {
    let port = start(TIGHT, ok);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "y".repeat(20 * 1024)
    );
    let a = request(port, &big);
    assert!(a.starts_with("HTTP/1.1 431"), "{a}");
}

#[test]
fn connections_keep_within_a_quarter_of_the_descriptor_limit() {
    let l = Limits {
        max_connections: usize::MAX,
        ..TIGHT
    }
    .fit_descriptors();
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let soft: usize = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(l.max_connections, (soft / 4).max(8));
}
