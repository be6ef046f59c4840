//! One exchange per warm invocation: the shim writes a result and the next `next` back to back on its
//! connection (HTTP/1.1 pipelining). Against the platform's own runtime API server, the result is seen at
//! once (before any next invocation exists) and the rules stay as they were; against servers that do not
//! pipeline (one that answers each request before reading the next, one that closes the connection after
//! every answer, with or without saying so, one that answers in chunks) the same invocations flow.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use scf_protocol::api::{Dialect, InvocationMeta, LambdaIdentity};
use scf_runtime_api::{Answer, ApiHandle, Listener};
use scf_shim::{Config, Runtime, ShimError};

fn config(socket: &Path) -> Config {
    let vars: HashMap<&str, String> = HashMap::from([
        ("_HANDLER", "index.main".to_owned()),
        ("USER_CODE_ROOT", "/".to_owned()),
        ("SCF_RUNTIME_API", format!("unix:{}", socket.display())),
        ("SCF_FUNCTIONNAME", "piped".to_owned()),
    ]);
    Config::from_lookup(|k| vars.get(k).cloned()).unwrap()
}

/// A test's own folder, removed when the test is done with it.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A socket path in a fresh folder of its own (removed with the returned guard).
fn socket_path(name: &str) -> (Scratch, PathBuf) {
    let dir = std::env::temp_dir().join(format!("scf-pipe-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("api.sock");
    (Scratch(dir), socket)
}

/// The platform's own runtime API server (SCF dialect) on a fresh Unix socket, that socket's path, and the
/// guard of its folder.
fn platform(name: &str) -> (ApiHandle, PathBuf, Scratch) {
    let (dir, socket) = socket_path(name);
    let api = ApiHandle::serve(
        Listener::unix(&socket).unwrap(),
        Dialect::Scf,
        LambdaIdentity::default(),
    );
    (api, socket, dir)
}

fn meta(id: &str) -> InvocationMeta {
    InvocationMeta {
        request_id: id.into(),
        memory_limit_in_mb: 128,
        time_limit_in_ms: 3000,
    }
}

/// What the instance thread reports: each invocation it got (id, event), or how it ended.
type Report = Result<(String, String), String>;

/// Runs an instance on its own thread: ready, then for each invocation answers with `outcomes`'s next entry
/// (a result's JSON text, or `Err` for an error), reporting every invocation it receives on the channel.
fn instance(
    socket: PathBuf,
    outcomes: Vec<Result<String, String>>,
) -> tokio::sync::mpsc::UnboundedReceiver<Report> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let run = || -> Result<(), ShimError> {
            let mut rt = Runtime::connect(config(&socket), Duration::ZERO)?;
            rt.ready(Ok(()), Duration::ZERO)?;
            let mut outcome = None;
            for o in outcomes {
                let inv = rt.next(outcome.take())?;
                let event = String::from_utf8_lossy(&inv.event).into_owned();
                let _ = tx.send(Ok((inv.request_id, event)));
                outcome = Some(match o {
                    Ok(text) => Ok(text.into_bytes()),
                    Err(message) => Err(scf_protocol::FunctionError::user(
                        scf_protocol::ErrorKind::UnhandledError,
                        message,
                    )),
                });
            }
            // The last outcome travels with a `next` that no invocation answers until the API closes.
            rt.next(outcome).map(|_| ())
        };
        let _ = tx.send(Err(match run() {
            Ok(()) => "ended".to_owned(),
            Err(e) => format!("{e}"),
        }));
    });
    rx
}

#[tokio::test]
async fn the_platform_sees_each_result_before_the_next_invocation_exists() {
    let (api, socket, _dir) = platform("platform");
    let mut got = instance(
        socket,
        vec![Ok("\"one\"".into()), Err("boom".into()), Ok("3".into())],
    );
    assert!(api.ready().await.is_some());

    let answer = api
        .dispatch(meta("req-1"), Bytes::from_static(b"{\"n\":1}"))
        .unwrap();
    assert_eq!(
        got.recv().await.unwrap(),
        Ok(("req-1".into(), "{\"n\":1}".into()))
    );
    // The result arrives while the `next` written behind it waits: no second invocation was handed over.
    assert_eq!(
        answer.await.unwrap(),
        Answer::Response(Bytes::from_static(b"\"one\""))
    );

    // An error result followed by `next` behaves the same way.
    let answer = api
        .dispatch(meta("req-2"), Bytes::from_static(b"[]"))
        .unwrap();
    assert_eq!(got.recv().await.unwrap(), Ok(("req-2".into(), "[]".into())));
    let Answer::Error(body) = answer.await.unwrap() else {
        panic!("an error result")
    };
    let (error, id) = scf_protocol::FunctionError::from_body(&body).unwrap();
    assert_eq!(
        (error.kind, id.as_str()),
        (scf_protocol::ErrorKind::UnhandledError, "req-2")
    );

    let answer = api
        .dispatch(meta("req-3"), Bytes::from_static(b"3"))
        .unwrap();
    assert_eq!(got.recv().await.unwrap(), Ok(("req-3".into(), "3".into())));
    assert_eq!(
        answer.await.unwrap(),
        Answer::Response(Bytes::from_static(b"3"))
    );

    // The platform stops the instance: the waiting `next` is answered 410 and the instance ends.
    drop(api);
    let end = got.recv().await.unwrap().unwrap_err();
    assert!(end.contains("410"), "{end}");
}

/// How the sequential server treats its connection after each answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Keeps it (HTTP/1.1 keep-alive), answers with `Content-Length`.
    KeepAlive,
    /// Keeps it, answers with `Transfer-Encoding: chunked`.
    Chunked,
    /// Says `Connection: close` and closes it.
    SaysClose,
    /// Closes it without saying so.
    JustCloses,
}

/// One request as the server read it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    path: String,
    body: String,
    /// Which connection (0, 1, …) it came on.
    conn: usize,
}

/// A runtime API server (SCF dialect) that does not pipeline: it reads one whole request, answers it, and
/// only then reads the next. Each `next` hands out the next of `events` (`req-1`, `req-2`, …); when they
/// are used up it answers 410. Results are answered 200, or 400 when `refuse_results` says so.
fn sequential_server(
    socket: &Path,
    mode: Mode,
    events: Vec<&'static str>,
    refuse_results: bool,
) -> mpsc::Receiver<Seen> {
    let listener = UnixListener::bind(socket).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut events = events.into_iter().enumerate();
        for (conn, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let mut parts = line.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap().to_owned(),
                    parts.next().unwrap().to_owned(),
                );
                let mut length = 0;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h == "\r\n" {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let body = String::from_utf8(body).unwrap();
                let _ = tx.send(Seen {
                    method: method.clone(),
                    path: path.clone(),
                    body,
                    conn,
                });
                let (status, headers, body) = match (method.as_str(), path.as_str()) {
                    ("GET", "/runtime/invocation/next") => match events.next() {
                        Some((i, e)) => (
                            "200 OK",
                            format!(
                                "request_id: req-{}\r\nmemory_limit_in_mb: 128\r\ntime_limit_in_ms: 3000\r\n",
                                i + 1
                            ),
                            e.to_owned(),
                        ),
                        None => ("410 Gone", String::new(), "stopping".to_owned()),
                    },
                    ("POST", _) if refuse_results && path.contains("invocation") => {
                        ("400 Bad Request", String::new(), "refused".to_owned())
                    }
                    ("POST", _) => ("200 OK", String::new(), String::new()),
                    _ => ("404 Not Found", String::new(), String::new()),
                };
                let framing = match mode {
                    Mode::Chunked => "transfer-encoding: chunked\r\n".to_owned(),
                    _ => format!("content-length: {}\r\n", body.len()),
                };
                let close = if mode == Mode::SaysClose {
                    "connection: close\r\n"
                } else {
                    ""
                };
                let mut out = format!("HTTP/1.1 {status}\r\n{headers}{framing}{close}\r\n");
                if mode == Mode::Chunked {
                    if !body.is_empty() {
                        // Two chunks, to read across chunk boundaries.
                        let (a, b) = body.split_at(body.len() / 2);
                        for c in [a, b].into_iter().filter(|c| !c.is_empty()) {
                            out.push_str(&format!("{:x}\r\n{c}\r\n", c.len()));
                        }
                    }
                    out.push_str("0\r\n\r\n");
                } else {
                    out.push_str(&body);
                }
                if writer.write_all(out.as_bytes()).is_err() {
                    break;
                }
                if matches!(mode, Mode::SaysClose | Mode::JustCloses) {
                    break;
                }
            }
        }
    });
    rx
}

#[test]
fn a_server_that_does_not_pipeline_gets_the_same_requests_in_the_same_order() {
    for mode in [
        Mode::KeepAlive,
        Mode::Chunked,
        Mode::SaysClose,
        Mode::JustCloses,
    ] {
        let (_dir, socket) = socket_path(&format!("{mode:?}"));
        let seen = sequential_server(&socket, mode, vec!["{\"n\":1}", "{\"n\":2}"], false);
        let mut rt = Runtime::connect(config(&socket), Duration::ZERO).unwrap();
        rt.ready(Ok(()), Duration::ZERO).unwrap();
        let one = rt.next(None).unwrap();
        assert_eq!(
            (one.request_id.as_str(), &one.event[..]),
            ("req-1", &b"{\"n\":1}"[..]),
            "{mode:?}"
        );
        let two = rt
            .next(Some(Ok(b"\"a\"".to_vec())))
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(
            (two.request_id.as_str(), &two.event[..]),
            ("req-2", &b"{\"n\":2}"[..]),
            "{mode:?}"
        );
        // The events are used up: the `next` after the second result gets 410, which ends the instance.
        let end = rt.next(Some(Err(scf_protocol::FunctionError::user(
            scf_protocol::ErrorKind::UnhandledError,
            "boom",
        ))));
        assert!(
            matches!(&end, Err(ShimError::Protocol(m)) if m.contains("410")),
            "{mode:?}: {end:?}"
        );

        let seen: Vec<Seen> = seen.try_iter().collect();
        let calls: Vec<(&str, &str)> = seen
            .iter()
            .map(|s| (s.method.as_str(), s.path.as_str()))
            .collect();
        assert_eq!(
            calls,
            vec![
                ("POST", "/runtime/init/ready"),
                ("GET", "/runtime/invocation/next"),
                ("POST", "/runtime/invocation/response"),
                ("GET", "/runtime/invocation/next"),
                ("POST", "/runtime/invocation/error"),
                ("GET", "/runtime/invocation/next"),
            ],
            "{mode:?}"
        );
        assert_eq!(seen[2].body, "\"a\"");
        assert!(seen[4].body.contains("req-2"), "{}", seen[4].body);
        // Ready is not pipelined (the host may exit before its first `next`): the first `next` after it is
        // sent on its own. The result and the `next` behind it share a connection when the server keeps it.
        let conns: Vec<usize> = seen.iter().map(|s| s.conn).collect();
        match mode {
            Mode::KeepAlive | Mode::Chunked => assert_eq!(conns, vec![0; 6], "{mode:?}"),
            // Each closed connection loses the `next` written behind the result: it is written again.
            _ => assert_eq!(conns, (0..6).collect::<Vec<_>>(), "{mode:?}"),
        }
    }
}

#[test]
fn a_result_the_server_refuses_ends_the_instance_as_before() {
    let (_dir, socket) = socket_path("refused");
    let seen = sequential_server(&socket, Mode::KeepAlive, vec!["{}"], true);
    let mut rt = Runtime::connect(config(&socket), Duration::ZERO).unwrap();
    rt.ready(Ok(()), Duration::ZERO).unwrap();
    rt.next(None).unwrap();
    let e = rt
        .next(Some(Ok(b"1".to_vec())))
        .expect_err("a refused result");
    assert!(
        matches!(&e, ShimError::Protocol(m) if m.contains("POST /runtime/invocation/response answered 400: refused")),
        "{e}"
    );
    // Nothing more is sent after that (the `next` written behind the result is never answered to the host).
    assert!(rt.next(None).is_err());
    // The server still reads the `next` written behind the refused result, after its answer.
    let calls: Vec<String> = seen.iter().take(4).map(|s| s.path).collect();
    assert_eq!(
        calls,
        [
            "/runtime/init/ready",
            "/runtime/invocation/next",
            "/runtime/invocation/response",
            "/runtime/invocation/next"
        ]
    );
}

/// `send_outcome` writes the result (and the `next` behind it) at once, without reading: the platform has the
/// result before the instance asks for its next invocation; `next` then reads both answers.
#[tokio::test]
async fn send_outcome_hands_the_result_over_before_next_is_called() {
    let (api, socket, _dir) = platform("early");
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (got_tx, mut got) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut rt = Runtime::connect(config(&socket), Duration::ZERO).unwrap();
        rt.ready(Ok(()), Duration::ZERO).unwrap();
        for round in 1..=2 {
            let inv = rt.next(None).unwrap();
            let _ = got_tx.send(inv.request_id.clone());
            rt.send_outcome(Ok(format!("{round}").into_bytes()))
                .unwrap();
            // A second one before next is refused.
            assert!(rt.send_outcome(Ok(b"x".to_vec())).is_err());
            // The instance waits here until the test has seen the result arrive.
            go_rx.recv().unwrap();
        }
        let _ = got_tx.send(format!("{:?}", rt.next(None).map(|i| i.request_id)));
    });
    assert!(api.ready().await.is_some());
    for round in 1..=2 {
        let id = format!("req-{round}");
        let answer = api.dispatch(meta(&id), Bytes::from_static(b"{}")).unwrap();
        assert_eq!(got.recv().await.unwrap(), id);
        assert_eq!(
            answer.await.unwrap(),
            Answer::Response(Bytes::from(format!("{round}")))
        );
        go_tx.send(()).unwrap();
    }
    drop(api);
    let end = got.recv().await.unwrap();
    assert!(end.contains("410"), "{end}");
}

#[test]
fn send_outcome_against_a_server_that_closes_is_written_again_by_next() {
    for mode in [Mode::KeepAlive, Mode::SaysClose, Mode::JustCloses] {
        let (_dir, socket) = socket_path(&format!("early-{mode:?}"));
        let seen = sequential_server(&socket, mode, vec!["{}", "[]"], false);
        let mut rt = Runtime::connect(config(&socket), Duration::ZERO).unwrap();
        rt.ready(Ok(()), Duration::ZERO).unwrap();
        assert_eq!(rt.next(None).unwrap().request_id, "req-1");
        rt.send_outcome(Ok(b"7".to_vec())).unwrap();
        let two = rt.next(None).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(two.request_id, "req-2", "{mode:?}");
        let posts: Vec<Seen> = seen
            .try_iter()
            .filter(|s| s.path == "/runtime/invocation/response")
            .collect();
        // Exactly one result reached the server, whatever the connection did.
        assert_eq!(posts.len(), 1, "{mode:?}: {posts:?}");
        assert_eq!(posts[0].body, "7");
    }
}

/// How a `next` driven by [`Runtime::next_now`] ended: on the caller's own loop, or handed to a blocking
/// [`Runtime::next`].
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Now,
    Blocking,
}

/// Drives the `next` after a sent outcome as the Node.js add-on does on its event loop: `next_now` each time the
/// socket is readable (waited for with `poll(2)`), until an invocation or a hand-over to the blocking `next`.
fn next_on_a_loop(rt: &mut Runtime) -> (String, Ended) {
    let mut readable = false;
    loop {
        match rt.next_now(readable).unwrap() {
            scf_shim::Progress::Invocation(inv) => return (inv.request_id, Ended::Now),
            scf_shim::Progress::Blocking => {
                return (rt.next(None).unwrap().request_id, Ended::Blocking);
            }
            scf_shim::Progress::Wait => {
                let mut fd = libc::pollfd {
                    fd: rt.socket().unwrap(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, no timeout: returns once the socket is readable.
                assert_eq!(unsafe { libc::poll(&mut fd, 1, -1) }, 1);
                readable = true;
            }
        }
    }
}

#[test]
fn next_now_reads_only_answers_that_are_whole_and_keep_the_connection() {
    let big: &'static str = Box::leak(format!("\"{}\"", "x".repeat(100 * 1024)).into_boxed_str());
    for (mode, expected) in [
        (Mode::KeepAlive, [Ended::Now, Ended::Blocking]),
        (Mode::Chunked, [Ended::Blocking, Ended::Blocking]),
        (Mode::SaysClose, [Ended::Blocking, Ended::Blocking]),
        (Mode::JustCloses, [Ended::Blocking, Ended::Blocking]),
    ] {
        let (_dir, socket) = socket_path(&format!("now-{mode:?}"));
        let seen = sequential_server(&socket, mode, vec!["{}", "[]", big], false);
        let mut rt = Runtime::connect(config(&socket), Duration::ZERO).unwrap();
        rt.ready(Ok(()), Duration::ZERO).unwrap();
        assert_eq!(rt.next(None).unwrap().request_id, "req-1");
        // A small event comes whole on a kept connection: read on the loop. A 100 KiB one (over the buffer's
        // bound), a chunked one, or one after a closing answer is the blocking reader's.
        for (round, ended) in expected.into_iter().enumerate() {
            rt.send_outcome(Ok(format!("{round}").into_bytes()))
                .unwrap();
            let (id, how) = next_on_a_loop(&mut rt);
            assert_eq!(id, format!("req-{}", round + 2), "{mode:?}");
            assert_eq!(how, ended, "{mode:?} round {round}");
        }
        let posts: Vec<String> = seen
            .try_iter()
            .filter(|s| s.path == "/runtime/invocation/response")
            .map(|s| s.body)
            .collect();
        // Each result reached the server once, in order, whatever the connection did.
        assert_eq!(posts, ["0", "1"], "{mode:?}");
    }
}
