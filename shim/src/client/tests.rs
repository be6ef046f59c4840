//! The client's reading of answer bodies: whole in each framing, bounded, cut short.

#![allow(clippy::unwrap_used, reason = "tests")]
use super::*;
use std::io::BufRead as _;
use std::os::unix::net::UnixListener;

/// Answers one request on an abstract Unix socket with `answer` (then closes), and reads that answer
/// through a [`Client`]: its body, or the error's text.
fn fetch(name: &str, answer: Vec<u8>) -> Result<Vec<u8>, String> {
    use std::os::linux::net::SocketAddrExt as _;
    let name = format!("scf-shim-client-test-{name}-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut r = std::io::BufReader::new(s);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
            line.clear();
        }
        // The client may stop reading (a body over the bound) and close: not an error here.
        let _ = r.get_mut().write_all(&answer);
    });
    let mut client = Client::connect(Endpoint::Unix(format!("@{name}").into())).unwrap();
    let next = Request {
        call: Call::Next,
        method: "GET",
        path: "/runtime/invocation/next".into(),
        headers: Vec::new(),
        body: Bytes::new(),
    };
    let got = client
        .call(&next, None)
        .map(|a| a.body.to_vec())
        .map_err(|e| e.to_string());
    drop(client);
    server.join().unwrap();
    got
}

fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn head(framing: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nrequest_id: r\r\n{framing}\r\n").into_bytes()
}

#[test]
fn a_body_larger_than_the_buffer_is_read_whole_in_each_framing() {
    let big = body(1024 * 1024 + 3);
    let mut answer = head(&format!("content-length: {}\r\n", big.len()));
    answer.extend_from_slice(&big);
    assert_eq!(fetch("length", answer).unwrap(), big);

    let mut answer = head("transfer-encoding: chunked\r\n");
    let mut at = 0;
    for size in [300_000, 1, 70_000, big.len() - 370_001] {
        answer.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        answer.extend_from_slice(&big[at..at + size]);
        answer.extend_from_slice(b"\r\n");
        at += size;
    }
    answer.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(fetch("chunked", answer).unwrap(), big);

    let mut answer = head("connection: close\r\n");
    answer.extend_from_slice(&big);
    assert_eq!(fetch("close", answer).unwrap(), big);
}

#[test]
fn a_body_at_the_bound_is_read_and_one_byte_over_it_is_refused_in_each_framing() {
    for n in [MAX_BODY_BYTES, MAX_BODY_BYTES + 1] {
        let b = body(n);
        let over = |r: Result<Vec<u8>, String>| match r {
            Ok(got) => {
                assert_eq!(got.len(), MAX_BODY_BYTES);
                assert_eq!(got, b);
                false
            }
            Err(e) => {
                assert!(e.contains("is over"), "{e}");
                true
            }
        };
        let mut answer = head(&format!("content-length: {n}\r\n"));
        answer.extend_from_slice(&b);
        assert_eq!(over(fetch("bound-length", answer)), n > MAX_BODY_BYTES);

        let mut answer = head("transfer-encoding: chunked\r\n");
        for chunk in b.chunks(1024 * 1024) {
            answer.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            answer.extend_from_slice(chunk);
            answer.extend_from_slice(b"\r\n");
        }
        answer.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(over(fetch("bound-chunked", answer)), n > MAX_BODY_BYTES);

        let mut answer = head("connection: close\r\n");
        answer.extend_from_slice(&b);
        assert_eq!(over(fetch("bound-close", answer)), n > MAX_BODY_BYTES);
    }
}

#[test]
fn a_body_cut_short_by_the_end_of_the_connection_is_an_error() {
    let mut answer = head("content-length: 100000\r\n");
    answer.extend_from_slice(&body(99_999));
    assert!(fetch("short-length", answer).is_err());
    let mut answer = head("transfer-encoding: chunked\r\n");
    answer.extend_from_slice(b"186a0\r\n");
    answer.extend_from_slice(&body(99_999));
    assert!(fetch("short-chunked", answer).is_err());
}

#[test]
fn an_answers_headers_are_found_in_any_case_trimmed_and_only_when_text() {
    let headers = {
        // Parsed from a buffer that is gone before they are read: the headers keep their own copy.
        let buffer = b"HTTP/1.1 200 OK\r\nX-Scf-Request-Id:  abc-1 \r\ncontent-length: 2\r\n\
            X-Bin: \xff\xfe\r\nx-scf-request-id: second\r\nEmpty:\r\n\r\n"
            .to_vec();
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut fields);
        let len = match response.parse(&buffer).unwrap() {
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial => panic!("partial"),
        };
        Headers::of(&response, &buffer[..len])
    };
    // The first of two, as before.
    assert_eq!(headers.get("x-scf-request-id"), Some("abc-1"));
    assert_eq!(headers.get("X-SCF-REQUEST-ID"), Some("abc-1"));
    assert_eq!(headers.get("content-length"), Some("2"));
    assert_eq!(headers.get("empty"), Some(""));
    assert_eq!(headers.get("x-bin"), None);
    assert_eq!(headers.get("x-missing"), None);
}

#[test]
fn a_request_head_is_written_as_http_1_1() {
    let post = Request {
        call: Call::Next,
        method: "POST",
        path: "/runtime/invocation/r-1/response".into(),
        headers: vec![("x-scf-a", "one".into()), ("x-scf-b", String::new())],
        body: Bytes::from_static(b"{\"k\":1}"),
    };
    assert_eq!(
        String::from_utf8(encode_head(&post).unwrap()).unwrap(),
        "POST /runtime/invocation/r-1/response HTTP/1.1\r\nhost: runtime\r\ncontent-length: 7\r\n\
         x-scf-a: one\r\nx-scf-b: \r\n\r\n"
    );
    let next = Request {
        method: "GET",
        path: "/runtime/invocation/next".into(),
        headers: Vec::new(),
        body: Bytes::new(),
        ..post
    };
    assert_eq!(
        String::from_utf8(encode_head(&next).unwrap()).unwrap(),
        "GET /runtime/invocation/next HTTP/1.1\r\nhost: runtime\r\n\r\n"
    );
}
