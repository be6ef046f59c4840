//! The proxy: requests and responses as sent and streamed, the cold start, the limits, timeouts and
//! concurrency on one instance, in Python, Node.js and Rust.

use super::*;

#[test]
fn python_web_function_gets_methods_paths_queries_headers_and_bodies_as_sent() {
    let f = example("web-python", None);
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let a = &p.addr;

    for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let r = send(
            a,
            method,
            "/web/web-python/echo?a=1&b=two%20words",
            &[("X-Custom", "v1"), ("X-Scf-Name", "forged")],
            b"hello",
            false,
        );
        assert_eq!(r.status, 200, "{method}: {r:?}");
        let v = r.json();
        assert_eq!(v["method"], method);
        assert_eq!(v["path"], "/echo", "the function sees /<path>");
        assert_eq!(v["query"], json!({"a": "1", "b": "two words"}));
        assert_eq!(v["headers"]["x-custom"], "v1");
        assert_eq!(v["body_bytes"], 5);
        let h = &v["headers"];
        assert_eq!(
            h["x-scf-name"], "web-python",
            "the caller cannot forge X-Scf-*"
        );
        assert_eq!(
            h["x-scf-request-id"].as_str(),
            r.header("x-scf-request-id"),
            "the request id is the one the caller gets back"
        );
        assert_eq!(
            (
                h["x-scf-memory"].as_str(),
                h["x-scf-timeout"].as_str(),
                h["x-scf-version"].as_str(),
                h["x-scf-namespace"].as_str(),
                h["x-scf-region"].as_str()
            ),
            (
                Some("128"),
                Some("5000"),
                Some("$LATEST"),
                Some("default"),
                Some("ap-guangzhou")
            )
        );
        assert!(h["x-scf-appid"].is_string() && h["x-scf-uin"].is_string());
    }
    let head = send(a, "HEAD", "/web/web-python/echo", &[], b"", false);
    assert_eq!(head.status, 200);

    // Binary bodies both ways, byte for byte.
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let r = send(
        a,
        "POST",
        "/web/web-python/raw",
        &[("Content-Type", "application/octet-stream")],
        &binary,
        false,
    );
    assert_eq!((r.status, r.body == binary), (200, true));

    // A large body, and a chunked one (streamed to the function).
    let large: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let r = send(a, "POST", "/web/web-python/echo", &[], &large, false);
    assert_eq!(r.json()["body_sha256"], sha256_hex(&large));
    let r = send(a, "POST", "/web/web-python/echo", &[], &binary, true);
    assert_eq!(
        (
            r.json()["body_bytes"].as_u64(),
            r.json()["body_sha256"].clone()
        ),
        (Some(70_000), json!(sha256_hex(&binary)))
    );

    // The function's status and headers come back as it sent them.
    let r = get(a, "/web/web-python/status?code=201&header=abc");
    assert_eq!((r.status, r.header("x-custom")), (201, Some("abc")));
    let r = get(a, "/web/web-python/nowhere");
    assert_eq!(r.status, 404, "the function's own 404");
    let r = get(a, "/web/web-python");
    assert_eq!(r.json()["message"], "Hello from a Python web function");

    // A function that does not exist.
    get(a, "/web/nope/").expect_error(404, "FunctionNotFound", 435);
}

#[test]
fn responses_stream_to_the_caller_as_the_function_writes_them() {
    let f = held_web("streamer");
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let files = TempDir::new("stream-files");
    let go = files.path().join("go");
    let mut s = TcpStream::connect(&p.addr).unwrap();
    write!(
        s,
        "GET /web/streamer/stream?go={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        go.display()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let (status, _) = read_head(&mut r);
    assert_eq!(status, 200);
    let mut chunk = || {
        let mut size = String::new();
        r.read_line(&mut size).unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        let mut data = vec![0; n + 2];
        r.read_exact(&mut data).unwrap();
        String::from_utf8_lossy(&data[..n]).into_owned()
    };
    // The first chunk reaches the caller while the function waits: only then is the function let go.
    assert_eq!(chunk(), "first\n");
    std::fs::write(&go, "").unwrap();
    assert_eq!(
        chunk(),
        "released\n",
        "the first chunk was held back until the end"
    );
    assert_eq!(chunk(), "");
}

#[test]
fn cold_start_ends_when_the_port_listens_and_every_request_is_logged() {
    let f = example("web-python", None);
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let first = get(&p.addr, "/web/web-python/print?line=hello-log");
    assert_eq!(first.status, 200);
    let second = get(&p.addr, "/web/web-python/echo");
    let id1 = first.header("x-scf-request-id").unwrap().to_owned();
    let id2 = second.header("x-scf-request-id").unwrap().to_owned();

    let log1 = log_of(&p, "web-python", &id1);
    let lines: Vec<&str> = log1.lines().collect();
    assert_eq!(lines[0], format!("START RequestId:{id1}"));
    assert!(
        lines[1].starts_with(&format!("Init Report RequestId: {id1} Coldstart: "))
            && lines[1].contains(" InitFunction: "),
        "{log1}"
    );
    assert!(lines[2].starts_with("Network: "), "{log1}");
    assert!(
        log1.contains("listening on "),
        "output during init goes to the first request"
    );
    assert!(
        log1.contains("hello-log\n") && log1.contains("to stderr\n"),
        "{log1}"
    );
    let n = lines.len();
    assert_eq!(
        lines[n - 3],
        format!("Response RequestId:{id1} RetMsg:HTTP 200")
    );
    assert_eq!(lines[n - 2], format!("END RequestId:{id1}"));
    assert!(lines[n - 1].starts_with(&format!("Report RequestId:{id1} Duration:")));

    let log2 = log_of(&p, "web-python", &id2);
    assert!(
        !log2.contains("Init Report"),
        "warm: no Init Report: {log2}"
    );
    assert!(log2.contains("GET /echo"), "{log2}");
    assert_eq!(
        first.json()["pid"],
        second.json()["pid"],
        "the instance is reused"
    );
    // The same logs through the CLI.
    let out = Command::new(bin("scf-local"))
        .args(["logs", "web-python", "--request-id", &id2, "--data-dir"])
        .arg(p.data_dir.as_path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("END RequestId:{id2}")));
}

#[test]
fn size_limits_refuse_large_requests_responses_and_headers() {
    let f = example("web-python", None);
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let a = &p.addr;
    let over = vec![b'a'; 6 * 1024 * 1024 + 1];
    send(a, "POST", "/web/web-python/echo", &[], &over, false).expect_error(
        413,
        "RequestTooLarge",
        406,
    );
    send(a, "POST", "/web/web-python/echo", &[], &over, true).expect_error(
        413,
        "RequestTooLarge",
        406,
    );
    let at_limit = get(a, &format!("/web/web-python/big?bytes={}", 6 * 1024 * 1024));
    assert_eq!(
        (at_limit.status, at_limit.body.len()),
        (200, 6 * 1024 * 1024)
    );
    get(
        a,
        &format!("/web/web-python/big?bytes={}", 6 * 1024 * 1024 + 1),
    )
    .expect_error(502, "ResponseTooLarge", 407);
    let e = get(a, "/web/web-python/big-headers").expect_error(502, "ResponseTooLarge", 407);
    assert!(e["errorMessage"].as_str().unwrap().contains("4KB"));
    // The function keeps serving.
    assert_eq!(get(a, "/web/web-python/").status, 200);
}

#[test]
fn a_request_past_the_timeout_gets_433_and_the_next_one_is_served() {
    let f = python_web("slowweb", "  timeout: 1\n");
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let first = get(&p.addr, "/web/slowweb/echo").json()["pid"].clone();
    let e = get(&p.addr, "/web/slowweb/sleep?s=10").expect_error(504, "Timeout", 433);
    assert_eq!(e["errorMessage"], "Invoking task timed out after 1 seconds");
    let next = get(&p.addr, "/web/slowweb/echo");
    assert_eq!(next.status, 200);
    assert_ne!(
        next.json()["pid"],
        first,
        "an instance that takes one request at a time is killed on a timeout"
    );
}

#[test]
fn one_instance_takes_several_requests_at_once_and_a_timeout_fails_only_its_own() {
    let f = python_web(
        "multi",
        "  timeout: 2\n  instanceConcurrencyConfig:\n    enable: true\n    maxConcurrency: 4\n",
    );
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let pid = get(&p.addr, "/web/multi/").json()["pid"].clone();
    let addr = p.addr.clone();
    let slow = std::thread::spawn(move || get(&addr, "/web/multi/sleep?s=10"));
    let quick: Vec<_> = (0..3)
        .map(|_| {
            let addr = p.addr.clone();
            std::thread::spawn(move || get(&addr, "/web/multi/sleep?s=0.5"))
        })
        .collect();
    for q in quick {
        let r = q.join().unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json()["pid"], pid, "all on the one instance");
    }
    slow.join().unwrap().expect_error(504, "Timeout", 433);
    let after = get(&p.addr, "/web/multi/");
    assert_eq!(
        after.json()["pid"],
        pid,
        "the timeout failed only its own request: the instance lives on"
    );
}

#[test]
fn node_web_function_with_multi_concurrency_serves_concurrent_requests_on_one_instance() {
    let f = example("web-node", None);
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let first = get(&p.addr, "/web/web-node/");
    assert_eq!(first.json()["message"], "Hello from a Node.js web function");
    let r = send(
        &p.addr,
        "PUT",
        "/web/web-node/echo?k=v",
        &[("X-Custom", "n")],
        b"12345",
        false,
    )
    .json();
    assert_eq!(
        (
            r["method"].as_str(),
            r["path"].as_str(),
            r["query"]["k"].as_str(),
            r["headers"]["x-custom"].as_str(),
            r["body_bytes"].as_u64()
        ),
        (Some("PUT"), Some("/echo"), Some("v"), Some("n"), Some(5))
    );
    assert_eq!(r["headers"]["x-scf-name"], "web-node");
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let addr = p.addr.clone();
            std::thread::spawn(move || get(&addr, "/web/web-node/sleep?s=1"))
        })
        .collect();
    for t in threads {
        let r = t.join().unwrap();
        assert_eq!(r.json()["pid"], first.json()["pid"], "{r:?}");
    }
}

#[test]
fn rust_web_function_built_with_hyper() {
    let f = example("web-rust", None);
    std::fs::copy(bin("web-rust"), f.path().join("web-rust")).unwrap();
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    assert_eq!(
        get(&p.addr, "/web/web-rust/").json()["message"],
        "Hello from a Rust web function"
    );
    let r = send(
        &p.addr,
        "POST",
        "/web/web-rust/echo?q=1",
        &[("X-Custom", "r")],
        b"abc",
        false,
    )
    .json();
    assert_eq!(
        (
            r["method"].as_str(),
            r["query"].as_str(),
            r["headers"]["x-custom"].as_str(),
            r["body_bytes"].as_u64()
        ),
        (Some("POST"), Some("q=1"), Some("r"), Some(3))
    );
    assert_eq!(r["headers"]["x-scf-name"], "web-rust");
}
