//! A blocking HTTP/1.1 client of the runtime API: one kept-alive connection (reopened when the platform closes
//! it), Unix socket or TCP with `TCP_NODELAY`, read and written on the calling thread with no event loop.
//!
//! **Pipelining.** [`Client::call`] may be given the request that follows the one it sends when the platform
//! accepts it (after a result, the next `next`): both are written back to back, the first one's answer is read
//! and returned, and the second one's answer is read by the next [`Client::call`] for that same request,
//! without writing it again. Any HTTP/1.1 server reads the same bytes in the same order; one that answers each
//! request before reading the next still works (the second request waits in its socket), and so does one that
//! closes the connection after an answer: a request whose answer never came is written again on a new
//! connection, once, if it may be repeated (`next`: a repeated `next` returns the same invocation) or it was
//! written on a kept connection that the server had closed meanwhile.
//!
//! **On another event loop.** A host whose thread must not block (Node.js: the JS thread) waits for the
//! socket's readability on its own loop ([`Client::socket`]) and then asks [`Client::buffered`] whether the
//! answer to a request is all here, reading only what the socket already holds (`MSG_DONTWAIT`). When it is,
//! [`Client::call`] returns it without a system call; an answer this cannot decide without waiting (a body
//! larger than the buffer, chunked or close-delimited, a closing connection, the end of the stream) is left
//! to a blocking [`Client::call`] on a thread that may block. The same parser and bounds serve both.
//!
//! Bounds: an answer's head is at most [`MAX_HEAD_BYTES`], its body at most [`MAX_BODY_BYTES`] (the largest
//! event); past either the answer is a protocol error. A `next` waits as long as the platform has no
//! invocation (a long poll): there is no read timeout, the platform ends the wait by answering or closing.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::ops::Range;
use std::os::unix::net::UnixStream;

use bytes::Bytes;
use scf_protocol::api::Call;

use crate::core::Request;
use crate::{Endpoint, ShimError};

/// The largest answer head (status line and headers) read.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The largest answer body read: the largest event of a synchronous invocation.
pub(crate) const MAX_BODY_BYTES: usize = scf_protocol::limits::MAX_SYNC_EVENT_BYTES;
/// Headers of one answer, at most.
const MAX_HEADERS: usize = 64;
/// A body up to this size is written in the same `write` as its head (and the request after it).
const INLINE_BODY_BYTES: usize = 16 * 1024;

/// An answer of the platform: status, headers and the whole body.
pub(crate) struct Answer {
    pub status: u16,
    headers: Headers,
    pub body: Bytes,
}

impl Answer {
    /// The value of header `name` (any case), trimmed, if present and text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}

/// An answer's headers: a copy of its head and where each header's name and (trimmed, text) value are in it,
/// two allocations for all of them.
struct Headers {
    head: Box<[u8]>,
    fields: Vec<(Range<usize>, Range<usize>)>,
}

impl Headers {
    /// The headers `response` parsed out of `head` (a header whose value is not text is left out).
    fn of(response: &httparse::Response<'_, '_>, head: &[u8]) -> Headers {
        let base = head.as_ptr() as usize;
        // httparse's names and values are slices of `head`: their places in it are their addresses' offsets.
        let at = |part: &[u8]| {
            let start = (part.as_ptr() as usize).saturating_sub(base);
            start..start + part.len()
        };
        let fields = response
            .headers
            .iter()
            .filter_map(|h| {
                let value = std::str::from_utf8(h.value).ok()?.trim();
                Some((at(h.name.as_bytes()), at(value.as_bytes())))
            })
            .collect();
        Headers {
            head: head.into(),
            fields,
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find_map(|(n, v)| {
            let field = self.head.get(n.clone())?;
            if field.eq_ignore_ascii_case(name.as_bytes()) {
                std::str::from_utf8(self.head.get(v.clone())?).ok()
            } else {
                None
            }
        })
    }
}

pub(crate) struct Client {
    endpoint: Endpoint,
    conn: Option<Conn>,
    /// Whether a connection was ever made: failing to reconnect after that means the platform went away.
    connected_once: bool,
    /// The heads of the requests written on `conn` whose answers are not read yet, in order (at most two: a
    /// result and the `next` behind it).
    owed: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Whether the answer to a request can be read without waiting ([`Client::buffered`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Buffered {
    /// All of it is here: [`Client::call`] returns it with no system call.
    Complete,
    /// Not all of it yet: wait for the socket to be readable, then ask again.
    Wait,
    /// Only a blocking [`Client::call`] can read it (see the module's documentation).
    Blocking,
}

/// Why an exchange failed, before it becomes a [`ShimError`].
enum Failure {
    /// The connection ended before any byte of the answer: the request may not have been read.
    Unanswered,
    /// The connection failed, or ended in the middle of an answer.
    Broken(std::io::Error),
    /// The answer is not HTTP/1.1 the client reads, or is over a bound.
    Protocol(String),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Broken(e)
    }
}

impl Client {
    pub(crate) fn connect(endpoint: Endpoint) -> Result<Client, ShimError> {
        let mut client = Client {
            endpoint,
            conn: None,
            connected_once: false,
            owed: Vec::new(),
        };
        client.ensure_connected()?;
        Ok(client)
    }

    fn ensure_connected(&mut self) -> Result<&mut Conn, ShimError> {
        if self.conn.is_none() {
            self.owed.clear();
            match Conn::open(&self.endpoint) {
                Ok(conn) => {
                    self.conn = Some(conn);
                    self.connected_once = true;
                }
                Err(_) if self.connected_once => return Err(ShimError::Disconnected),
                Err(source) => {
                    return Err(ShimError::Connect {
                        endpoint: self.endpoint.to_string(),
                        source,
                    });
                }
            }
        }
        self.conn
            .as_mut()
            .ok_or_else(|| ShimError::Protocol("no connection".into()))
    }

    /// The socket of the connection, for waiting for its readability on another event loop; `None` when there
    /// is none (the next call connects).
    pub(crate) fn socket(&self) -> Option<std::os::fd::RawFd> {
        self.conn.as_ref().map(|c| c.stream.as_raw_fd())
    }

    /// Whether [`Client::call`]`(request, then)` would return without any I/O: the connection carries both
    /// requests already, and `request`'s whole answer, one that keeps the connection, is in the buffer. With
    /// `readable`, reads what the socket holds without waiting, at most up to [`MAX_HEAD_BYTES`] buffered;
    /// without, looks only at what is buffered already.
    pub(crate) fn buffered(
        &mut self,
        request: &Request,
        then: Option<&Request>,
        readable: bool,
    ) -> Buffered {
        let Ok(head) = encode_head(request) else {
            return Buffered::Blocking;
        };
        let then = then.and_then(|t| encode_head(t).ok());
        let carried = self.owed.first() == Some(&head)
            && (then.is_none() || self.owed.get(1) == then.as_ref());
        match self.conn.as_mut() {
            Some(conn) if carried => conn.buffered(readable),
            _ => Buffered::Blocking,
        }
    }

    /// Writes `request` and `then` behind it now, without reading an answer, if they can be written at once:
    /// the connection is open, owes no answer, and the body is small (so the write lands in the socket's buffer
    /// and does not wait for the platform). The next [`Client::call`] for `request` reads its answer. Best
    /// effort: if nothing is written (or the write fails, which drops the connection), that call writes them.
    pub(crate) fn send_early(&mut self, request: &Request, then: Option<&Request>) {
        if !self.owed.is_empty() || request.body.len() > INLINE_BODY_BYTES {
            return;
        }
        let (Ok(head), Ok(then)) = (encode_head(request), then.map(encode_head).transpose()) else {
            return;
        };
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        match conn.write_requests(&head, &request.body, then.as_deref().unwrap_or_default()) {
            Ok(()) => {
                self.owed.push(head);
                self.owed.extend(then);
            }
            Err(_) => self.conn = None,
        }
    }

    /// Sends `request` (unless it was written already, by [`Client::send_early`] or as the `then` of the last
    /// call) and reads its whole answer; with `then`, writes that request right after it (unless it was written
    /// already too), whose answer the next call for it reads. Blocks until the platform answers (`next`
    /// long-polls).
    pub(crate) fn call(
        &mut self,
        request: &Request,
        then: Option<&Request>,
    ) -> Result<Answer, ShimError> {
        let head = encode_head(request)?;
        let then = then.map(encode_head).transpose()?;
        // A request that follows one with a large body is not pipelined (only `next` follows, and it has none).
        let then = then.filter(|_| request.body.len() <= INLINE_BODY_BYTES);
        let mut written = false;
        if !self.owed.is_empty() {
            if self.conn.is_some() && self.owed[0] == head {
                self.owed.remove(0);
                written = true;
            } else {
                // The connection owes the answer to another request than this one: it cannot be used.
                self.conn = None;
                self.owed.clear();
            }
        }
        // A request the connection ended before answering is written again once on a new connection, if it
        // may be repeated (`next`) or the connection was a kept one (closed while idle, as servers may: the
        // request was not read, or the server could not answer it).
        let mut retries = 1;
        loop {
            let reused = self.conn.is_some();
            // What to write: the request and `then`; or, with the request written already, only `then` if the
            // connection does not carry it yet.
            let empty: &[u8] = &[];
            let (h, b, t) = match (written, &then) {
                (false, _) => (
                    &head[..],
                    &request.body[..],
                    then.as_deref().unwrap_or_default(),
                ),
                (true, Some(t)) if self.owed.first() != Some(t) => (empty, empty, &t[..]),
                (true, _) => (empty, empty, empty),
            };
            let conn = self.ensure_connected()?;
            let wrote = if h.is_empty() && t.is_empty() {
                Ok(())
            } else {
                conn.write_requests(h, b, t)
            };
            // A connection found closed on writing was not answered either.
            let outcome = wrote
                .map_err(|e| {
                    if is_disconnect(&e) {
                        Failure::Unanswered
                    } else {
                        Failure::Broken(e)
                    }
                })
                .and_then(|()| conn.read_answer());
            if !t.is_empty() {
                self.owed.insert(0, t.to_vec());
            }
            match outcome {
                Ok((answer, keep)) => {
                    if !keep {
                        self.conn = None;
                        self.owed.clear();
                    }
                    return Ok(answer);
                }
                Err(Failure::Unanswered)
                    if retries > 0 && (reused || request.call == Call::Next) =>
                {
                    retries -= 1;
                    self.conn = None;
                    self.owed.clear();
                    written = false;
                }
                Err(failure) => {
                    self.conn = None;
                    self.owed.clear();
                    return Err(match failure {
                        Failure::Unanswered => ShimError::Disconnected,
                        Failure::Broken(e) if is_disconnect(&e) => ShimError::Disconnected,
                        Failure::Broken(e) => ShimError::Io(e),
                        Failure::Protocol(m) => ShimError::Protocol(m),
                    });
                }
            }
        }
    }
}

/// Whether `e` says the peer went away.
fn is_disconnect(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::NotConnected
    )
}

/// The request line and headers of `request`, with `Host` and (for a body, or a method that has one)
/// `Content-Length`. A path or header value that cannot be written in HTTP/1.1 is a protocol error.
fn encode_head(request: &Request) -> Result<Vec<u8>, ShimError> {
    let visible = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
    if !visible(&request.path) || !visible(request.method) {
        return Err(ShimError::Protocol(format!(
            "the request {} {:?} cannot be written in HTTP/1.1",
            request.method, request.path
        )));
    }
    // Put together piece by piece (no formatting machinery: this runs twice per invocation).
    let mut head = Vec::with_capacity(128);
    for part in [
        request.method,
        " ",
        &request.path,
        " HTTP/1.1\r\nhost: runtime\r\n",
    ] {
        head.extend_from_slice(part.as_bytes());
    }
    if !request.body.is_empty() || request.method != "GET" {
        head.extend_from_slice(b"content-length: ");
        head.extend_from_slice(itoa::Buffer::new().format(request.body.len()).as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    for (name, value) in &request.headers {
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(ShimError::Protocol(format!(
                "the header {name} of {} cannot be written: {value:?}",
                request.path
            )));
        }
        for part in [name, ": ", value.as_str(), "\r\n"] {
            head.extend_from_slice(part.as_bytes());
        }
    }
    head.extend_from_slice(b"\r\n");
    Ok(head)
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd as _;
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
        }
    }

    /// Reads what the socket holds now, without waiting (`MSG_DONTWAIT`: the socket itself stays blocking).
    fn read_now(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            // SAFETY: `buf` is a valid, writable region of `buf.len()` bytes for the whole call, and the
            // descriptor is this stream's own, open while `self` is borrowed.
            let n = unsafe {
                libc::recv(
                    self.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            match usize::try_from(n) {
                Ok(n) => return Ok(n),
                Err(_) => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let r = match self {
                Stream::Unix(s) => s.read(buf),
                Stream::Tcp(s) => s.read(buf),
            };
            match r {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// Appends to `into` what the socket gives, up to `limit` bytes or the end of the stream (whichever comes
    /// first), read straight into `into`'s spare capacity (the sockets' own `read_buf`: nothing is zero-filled
    /// first; `Interrupted` is retried); how many bytes it appended.
    fn read_into(&mut self, into: &mut Vec<u8>, limit: u64) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => Read::take(s, limit).read_to_end(into),
            Stream::Tcp(s) => Read::take(s, limit).read_to_end(into),
        }
    }

    /// Writes all of `buf` (`send` with `MSG_NOSIGNAL`: a closed peer is an error, not a signal).
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.write_all(buf),
            Stream::Tcp(s) => s.write_all(buf),
        }
    }
}

/// One connection and the bytes read from it but not consumed yet (`buf[start..end]`).
struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Conn {
    fn open(endpoint: &Endpoint) -> std::io::Result<Conn> {
        let stream = match endpoint {
            Endpoint::Unix(path) => {
                Stream::Unix(match path.to_str().and_then(|p| p.strip_prefix('@')) {
                    // `unix:@NAME`: an abstract socket (one namespace of names per network namespace).
                    Some(name) => {
                        use std::os::linux::net::SocketAddrExt as _;
                        let addr =
                            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                        UnixStream::connect_addr(&addr)?
                    }
                    None => UnixStream::connect(path)?,
                })
            }
            Endpoint::Tcp(addr) => {
                let s = TcpStream::connect(addr.as_str())?;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
        };
        Ok(Conn {
            stream,
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
        })
    }

    /// Writes one request (`head`, `body`) and the head of the one after it (`then`, empty for none), in one
    /// `write` when the body is small.
    fn write_requests(&mut self, head: &[u8], body: &[u8], then: &[u8]) -> std::io::Result<()> {
        if body.len() <= INLINE_BODY_BYTES {
            let mut out = Vec::with_capacity(head.len() + body.len() + then.len());
            out.extend_from_slice(head);
            out.extend_from_slice(body);
            out.extend_from_slice(then);
            return self.stream.write_all(&out);
        }
        self.stream.write_all(head)?;
        self.stream.write_all(body)?;
        self.stream.write_all(then)
    }

    /// Room at the end of the buffer for more bytes: the unread ones moved to its front, or the buffer grown up
    /// to the head bound (past it, a protocol error).
    fn make_room(&mut self) -> Result<(), Failure> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            } else if self.buf.len() < MAX_HEAD_BYTES {
                self.buf.resize((self.buf.len() * 2).min(MAX_HEAD_BYTES), 0);
            } else {
                return Err(Failure::Protocol(format!(
                    "an answer's head is over {MAX_HEAD_BYTES} bytes"
                )));
            }
        }
        Ok(())
    }

    /// Reads more bytes into the buffer (growing it up to the head bound); 0 at the end of the stream.
    ///
    /// A plain blocking read, on purpose: on a Unix socket it is also woken when the platform takes what was
    /// written (the result and the `next`), which keeps the instance's CPU from halting just before a
    /// back-to-back invocation arrives. Waiting with `poll(POLLIN)` first (bytes only) made warm invocations
    /// slower on a VM whose idle CPUs halt (`docs/node.md`, *Woken as a blocking read is*).
    fn fill(&mut self) -> Result<usize, Failure> {
        self.make_room()?;
        let n = self.stream.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// [`Client::buffered`] on this connection: parses the buffered bytes with the reader's own rules, reading
    /// what the socket holds now (with `readable`) until the answer is whole or the socket is empty.
    fn buffered(&mut self, readable: bool) -> Buffered {
        loop {
            let parsed = {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut response = httparse::Response::new(&mut headers);
                match response.parse(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete(len)) => match Head::of(&response, len) {
                        Ok(head) => Some(head),
                        Err(_) => return Buffered::Blocking,
                    },
                    Ok(httparse::Status::Partial) => None,
                    // The blocking read reports it, as it does any malformed answer.
                    Err(_) => return Buffered::Blocking,
                }
            };
            if let Some(head) = parsed {
                let body = match head.framing {
                    _ if (100..200).contains(&head.status) || !head.keep_alive => {
                        return Buffered::Blocking;
                    }
                    Framing::Length(n) => n,
                    Framing::None => 0,
                    Framing::Chunked | Framing::UntilClose => return Buffered::Blocking,
                };
                let whole = head.len.saturating_add(body);
                if self.end - self.start >= whole {
                    return Buffered::Complete;
                }
                if whole > MAX_HEAD_BYTES {
                    // Read straight into the body's own allocation by the blocking reader.
                    return Buffered::Blocking;
                }
            }
            if !readable {
                return Buffered::Wait;
            }
            if self.make_room().is_err() {
                return Buffered::Blocking;
            }
            match self.stream.read_now(&mut self.buf[self.end..]) {
                Ok(0) => return Buffered::Blocking,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Buffered::Wait,
                Err(_) => return Buffered::Blocking,
            }
        }
    }

    /// Reads one whole answer (skipping informational ones); `keep` is whether the connection stays usable
    /// after it.
    fn read_answer(&mut self) -> Result<(Answer, bool), Failure> {
        let mut any_byte = self.end > self.start;
        loop {
            let parsed = {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut response = httparse::Response::new(&mut headers);
                let buffered = &self.buf[self.start..self.end];
                match response.parse(buffered) {
                    Ok(httparse::Status::Complete(len)) => {
                        let head = Head::of(&response, len)?;
                        Some((head, Headers::of(&response, &buffered[..len])))
                    }
                    Ok(httparse::Status::Partial) => None,
                    Err(e) => return Err(Failure::Protocol(format!("a malformed answer: {e}"))),
                }
            };
            let Some((head, headers)) = parsed else {
                // The end of the connection (or its reset: a peer that closed with our request unread) before
                // any byte of the answer means the request was not answered.
                match self.fill() {
                    Ok(0) if !any_byte => return Err(Failure::Unanswered),
                    Ok(0) => return Err(Failure::Broken(ErrorKind::UnexpectedEof.into())),
                    Ok(_) => any_byte = true,
                    Err(Failure::Broken(e)) if !any_byte && is_disconnect(&e) => {
                        return Err(Failure::Unanswered);
                    }
                    Err(e) => return Err(e),
                }
                continue;
            };
            self.start += head.len;
            if (100..200).contains(&head.status) {
                continue;
            }
            let (body, to_eof) = match head.framing {
                Framing::Length(n) => (self.read_exact_body(n)?, false),
                Framing::Chunked => (self.read_chunked_body()?, false),
                Framing::None => (Bytes::new(), false),
                Framing::UntilClose => (self.read_body_to_eof()?, true),
            };
            let answer = Answer {
                status: head.status,
                headers,
                body,
            };
            return Ok((answer, head.keep_alive && !to_eof));
        }
    }

    /// `n` bytes of body: those buffered, then read straight into the body's own allocation.
    fn read_exact_body(&mut self, n: usize) -> Result<Bytes, Failure> {
        if n > MAX_BODY_BYTES {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(n);
        self.read_exact_into(&mut body, n)?;
        Ok(Bytes::from(body))
    }

    /// Appends `n` bytes of body to `body`: those buffered, then the rest read from the socket into `body`'s
    /// spare capacity (reserved here, growing as a `Vec` does; never zero-filled first).
    fn read_exact_into(&mut self, body: &mut Vec<u8>, n: usize) -> Result<(), Failure> {
        let buffered = (self.end - self.start).min(n);
        body.reserve(n);
        body.extend_from_slice(&self.buf[self.start..self.start + buffered]);
        self.start += buffered;
        let rest = n - buffered;
        if rest > 0 && self.stream.read_into(body, rest as u64)? < rest {
            return Err(Failure::Broken(ErrorKind::UnexpectedEof.into()));
        }
        Ok(())
    }

    /// One line (up to CRLF) of a chunked body's framing, without the CRLF.
    fn read_line(&mut self) -> Result<Vec<u8>, Failure> {
        loop {
            let window = &self.buf[self.start..self.end];
            if let Some(i) = window.windows(2).position(|w| w == b"\r\n") {
                let line = window[..i].to_vec();
                self.start += i + 2;
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(Failure::Broken(ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    fn read_chunked_body(&mut self) -> Result<Bytes, Failure> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size = line.split(|b| *b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| Failure::Protocol("a malformed chunk size".into()))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.read_line()?.is_empty() {}
                return Ok(Bytes::from(body));
            }
            if body.len() + size > MAX_BODY_BYTES {
                return Err(too_large());
            }
            self.read_exact_into(&mut body, size)?;
            if !self.read_line()?.is_empty() {
                return Err(Failure::Protocol("a chunk is longer than it says".into()));
            }
        }
    }

    fn read_body_to_eof(&mut self) -> Result<Bytes, Failure> {
        let mut body = self.buf[self.start..self.end].to_vec();
        self.start = self.end;
        if body.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        // One byte over the bound is enough to know the body is too large.
        let limit = (MAX_BODY_BYTES - body.len()) as u64 + 1;
        self.stream.read_into(&mut body, limit)?;
        if body.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        Ok(Bytes::from(body))
    }
}

fn too_large() -> Failure {
    Failure::Protocol(format!("an answer's body is over {MAX_BODY_BYTES} bytes"))
}

/// How an answer's body is delimited.
enum Framing {
    Length(usize),
    Chunked,
    /// No body (204, 304).
    None,
    /// Up to the end of the connection (no length given).
    UntilClose,
}

/// An answer's head, parsed: what reading it needs (its headers are kept apart, [`Headers`]).
struct Head {
    len: usize,
    status: u16,
    framing: Framing,
    keep_alive: bool,
}

impl Head {
    fn of(response: &httparse::Response<'_, '_>, len: usize) -> Result<Head, Failure> {
        let status = response.code.unwrap_or(0);
        let (mut length, mut chunked, mut close, mut keep) = (None, false, false, false);
        for h in response.headers.iter() {
            let Ok(value) = std::str::from_utf8(h.value) else {
                continue;
            };
            let value = value.trim();
            let tokens = || value.split(',').map(str::trim);
            let is = |name: &str| h.name.eq_ignore_ascii_case(name);
            match () {
                () if is("content-length") => {
                    let n = value.parse::<usize>().map_err(|_| {
                        Failure::Protocol(format!("a malformed content-length: {value:?}"))
                    })?;
                    if length.is_some_and(|m| m != n) {
                        return Err(Failure::Protocol("two content-lengths".into()));
                    }
                    length = Some(n);
                }
                () if is("transfer-encoding") => {
                    chunked = tokens().any(|t| t.eq_ignore_ascii_case("chunked"));
                }
                () if is("connection") => {
                    close |= tokens().any(|t| t.eq_ignore_ascii_case("close"));
                    keep |= tokens().any(|t| t.eq_ignore_ascii_case("keep-alive"));
                }
                () => {}
            }
        }
        let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
            Framing::None
        } else if chunked {
            Framing::Chunked
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            Framing::UntilClose
        };
        // HTTP/1.0 closes unless it says keep-alive; HTTP/1.1 keeps unless it says close.
        let keep_alive = !close && (response.version == Some(1) || keep);
        Ok(Head {
            len,
            status,
            framing,
            keep_alive,
        })
    }
}

#[cfg(test)]
mod tests;
