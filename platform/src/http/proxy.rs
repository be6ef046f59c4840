//! The web function's proxy: a caller's request streamed to its instance with the `X-Scf-*` headers, the
//! response streamed back, cut off past its limits or at the timeout.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};
use scf_protocol::limits::MAX_SYNC_EVENT_BYTES;
use scf_protocol::{ErrorKind, FunctionError, MAX_RESPONSE_BYTES};
use scf_runtime_api::conn::content_length;
use scf_store::now_ms;

use super::{
    BoxError, Done, HttpRoute, MAX_RESPONSE_HEADER_BYTES, REQUEST_ID, SCF_HEADERS, WebBody, empty,
    error_response, request_id_value, request_too_large, response_head_too_large,
};
use crate::pool::{Finished, Pool, Source};

/// A request body of at most this many bytes (by its `Content-Length`) is read whole before it goes to the
/// instance, in one write with its head.
const BUFFERED_BODY_BYTES: u64 = 64 * 1024;

/// Hop-by-hop headers: they belong to one connection and are not forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

impl Pool<HttpRoute> {
    /// Proxies one HTTP request to the function (`path` is what the function sees: `/<path>?<query>`).
    pub async fn handle(self: &Arc<Self>, req: Request<Incoming>, path: &str) -> Response<WebBody> {
        let request_id = crate::requestlog::new_request_id();
        let start_ms = now_ms();
        if let Some(len) = content_length(req.headers())
            && len > MAX_SYNC_EVENT_BYTES as u64
        {
            let e = request_too_large(len);
            self.refuse(&request_id, start_ms, e.clone(), None, Source::SYNC)
                .await;
            return error_response(&request_id, &e);
        }
        let lease = match self.place(&request_id, start_ms).await {
            Ok(lease) => lease,
            Err(refused) => return refused_response(&refused),
        };
        let log = self.open_log(&request_id, &lease);
        let work = lease.instance.process.work();
        let started = Instant::now(); // the duration does not include the cold start
        // Made once, for the request to the instance and the answer to the caller.
        let id_value = request_id_value(&request_id);
        let done = Done {
            pool: self.clone(),
            request_id,
            start_ms,
            started,
            log,
            lease,
            work,
        };

        let (parts, body) = req.into_parts();
        // A small body of a known length is read whole first, so the instance gets the request in one write
        // (streamed, the head went out before the body had come through, and a server such as Node's woke
        // twice per request). A larger one streams to the instance, cut off past 6 MB.
        let body: WebBody = match content_length(&parts.headers) {
            Some(len) if len <= BUFFERED_BODY_BYTES => {
                match http_body_util::Limited::new(body, BUFFERED_BODY_BYTES as usize)
                    .collect()
                    .await
                {
                    Ok(b) => Full::new(b.to_bytes()).map_err(|e| match e {}).boxed(),
                    Err(e) => {
                        let e = FunctionError::new(
                            ErrorKind::InvalidParameter,
                            format!("reading the request's body: {e}"),
                            "",
                        );
                        return done.fail(e);
                    }
                }
            }
            _ => http_body_util::Limited::new(body, MAX_SYNC_EVENT_BYTES).boxed(),
        };
        let mut up = Request::builder().method(parts.method).uri(path);
        if let Some(h) = up.headers_mut() {
            copy_headers(&parts.headers, h, SCF_HEADERS.len());
            self.set_scf_headers(&done.lease.instance, id_value.as_ref(), h);
        }
        let up = match up.body(body) {
            Ok(r) => r,
            Err(e) => {
                let e = FunctionError::new(ErrorKind::InvalidParameter, format!("{e}"), "");
                return done.fail(e);
            }
        };
        // One timer for the request: its response head, then its body.
        let mut deadline = Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
            started + self.config.timeout,
        )));
        let exchanged = done
            .lease
            .instance
            .exchange(up, deadline.as_mut(), self.instance_concurrency())
            .await;
        let (resp, sender) = match exchanged {
            Ok(r) => r,
            Err(e) => return done.fail(e),
        };
        let (parts, body) = resp.into_parts();
        let head = head_size(&parts.headers);
        if head > MAX_RESPONSE_HEADER_BYTES {
            return done.fail(response_head_too_large(format!("{head} bytes of headers")));
        }
        if let Some(len) = content_length(&parts.headers)
            && len > MAX_RESPONSE_BYTES as u64
        {
            let e = FunctionError::response_too_large(usize::try_from(len).unwrap_or(usize::MAX));
            return done.fail(e);
        }
        let status = parts.status;
        let mut out = Response::builder().status(status).version(parts.version);
        if let Some(h) = out.headers_mut() {
            copy_headers(&parts.headers, h, 1);
            if let Some(v) = id_value {
                h.insert(REQUEST_ID, v);
            }
        }
        let down = Downstream {
            inner: body,
            deadline,
            sent: 0,
            finish: Some(Finish {
                done,
                status,
                sender: Some(sender),
            }),
        };
        out.body(down.boxed())
            .unwrap_or_else(|_| Response::new(empty()))
    }
}

/// The answer to a request that was refused before reaching an instance.
fn refused_response(f: &Finished) -> Response<WebBody> {
    match &f.result {
        Err((_, body)) => match FunctionError::from_body(body) {
            Some((e, _)) => error_response(&f.request_id, &e),
            None => error_response(&f.request_id, &FunctionError::internal("")),
        },
        Ok(_) => error_response(&f.request_id, &FunctionError::internal("")),
    }
}

/// What closes a proxied request once its response body has been sent (or has failed, or was dropped).
struct Finish {
    done: Done,
    status: StatusCode,
    sender: Option<SendRequest<WebBody>>,
}

impl Finish {
    fn end(mut self, error: Option<FunctionError>) {
        let result = match error {
            None => {
                if let Some(sender) = self.sender.take() {
                    self.done.lease.instance.put_back(sender);
                }
                Ok(status_text(self.status))
            }
            Some(e) => Err((e.kind, Bytes::from(e.to_body(&self.done.request_id)))),
        };
        self.done.end(result);
    }
}

/// The instance's response body on its way to the caller: streamed, cut off past 6 MB or at the timeout.
struct Downstream {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    sent: usize,
    finish: Option<Finish>,
}

impl Downstream {
    fn end(&mut self, error: Option<FunctionError>) {
        if let Some(f) = self.finish.take() {
            f.end(error);
        }
    }
}

impl Body for Downstream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.finish.is_none() {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let e = match &self.finish {
                Some(f) => f
                    .done
                    .lease
                    .instance
                    .timed_out(f.done.pool.instance_concurrency()),
                None => FunctionError::timeout(0.0, false),
            };
            self.end(Some(e));
            return Poll::Ready(Some(Err("the function's execution timeout passed".into())));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    self.sent += d.len();
                    if self.sent > MAX_RESPONSE_BYTES {
                        let n = self.sent;
                        self.end(Some(FunctionError::response_too_large(n)));
                        return Poll::Ready(Some(Err("the response body is over 6 MB".into())));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.end(Some(FunctionError::new(
                    ErrorKind::UnhandledError,
                    "the function's server closed the connection during its answer",
                    e.to_string(),
                )));
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                self.end(None);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finish.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Downstream {
    fn drop(&mut self) {
        if self.finish.is_some() {
            if self.inner.is_end_stream() {
                self.end(None);
            } else {
                self.end(Some(FunctionError::new(
                    ErrorKind::InternalError,
                    "the caller closed the connection before the answer ended",
                    "",
                )));
            }
        }
    }
}

/// A web request's result as its log and record keep it: `HTTP <status>` (the usual one without formatting).
fn status_text(status: StatusCode) -> Bytes {
    match status {
        StatusCode::OK => Bytes::from_static(b"HTTP 200"),
        s => Bytes::from(format!("HTTP {}", s.as_u16())),
    }
}

fn head_size(h: &HeaderMap) -> usize {
    h.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum()
}

/// Copies end-to-end headers: not hop-by-hop ones, not those named in `Connection`, not `X-Scf-*` (the
/// platform's), into `to`, made room for `extra` more (one allocation for all).
fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, extra: usize) {
    let connection = from.get_all(hyper::header::CONNECTION);
    let named = |name: &str| {
        connection
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|n| n.trim().eq_ignore_ascii_case(name))
    };
    to.reserve(from.len() + extra);
    for (k, v) in from {
        let name = k.as_str();
        if HOP_BY_HOP.contains(&name) || SCF_HEADERS.contains(&name) || named(name) {
            continue;
        }
        to.append(k.clone(), v.clone());
    }
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    #[test]
    fn platform_headers_and_hop_by_hop_headers_are_not_forwarded() {
        let mut from = HeaderMap::new();
        from.insert("x-scf-request-id", HeaderValue::from_static("forged"));
        from.insert("connection", HeaderValue::from_static("close, x-private"));
        from.insert("x-private", HeaderValue::from_static("1"));
        from.insert("x-kept", HeaderValue::from_static("2"));
        let mut to = HeaderMap::new();
        copy_headers(&from, &mut to, 0);
        assert_eq!(to.len(), 1);
        assert_eq!(to.get("x-kept").and_then(|v| v.to_str().ok()), Some("2"));
    }

    #[test]
    fn a_result_is_its_status() {
        for code in [200, 201, 404, 500] {
            let status = StatusCode::from_u16(code).expect("a status");
            assert_eq!(status_text(status), format!("HTTP {code}").as_bytes());
        }
    }
}
