//! A blocking HTTP/1.1 client of the runtime API: hyper on a current-thread tokio runtime, one kept-alive
//! connection (reopened if the platform closes it between calls), Unix socket or TCP with `TCP_NODELAY`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::{Endpoint, ShimError};

/// An answer of the platform: status, headers and the whole body.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

pub(crate) struct Client {
    rt: tokio::runtime::Runtime,
    endpoint: Endpoint,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// Whether a connection was ever made: failing to reconnect after that means the platform went away.
    connected_once: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub(crate) fn connect(endpoint: Endpoint) -> Result<Client, ShimError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let mut client = Client {
            rt,
            endpoint,
            sender: None,
            connected_once: false,
        };
        client.ensure_connected()?;
        Ok(client)
    }

    fn ensure_connected(&mut self) -> Result<(), ShimError> {
        let usable = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        if !usable {
            let endpoint = self.endpoint.clone();
            match self.rt.block_on(async move { open(&endpoint).await }) {
                Ok(sender) => {
                    self.sender = Some(sender);
                    self.connected_once = true;
                }
                Err(ShimError::Connect { .. }) if self.connected_once => {
                    return Err(ShimError::Disconnected);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends one request and reads the whole answer. Blocks until the platform answers (`next` long-polls).
    pub(crate) fn call(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Answer, ShimError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "runtime");
        for (k, v) in headers {
            builder = builder.header(*k, v.as_str());
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| ShimError::Protocol(e.to_string()))?;
        self.ensure_connected()?;
        let mut sender = self
            .sender
            .take()
            .ok_or_else(|| ShimError::Protocol("no connection".into()))?;
        let result: Result<Answer, ShimError> = self.rt.block_on(async {
            sender.ready().await?;
            let response: Response<hyper::body::Incoming> = sender.send_request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        });
        if result.is_ok() {
            self.sender = Some(sender);
        }
        result
    }
}

async fn open(endpoint: &Endpoint) -> Result<SendRequest<Full<Bytes>>, ShimError> {
    let connect_err = |source| ShimError::Connect {
        endpoint: endpoint.to_string(),
        source,
    };
    match endpoint {
        Endpoint::Unix(path) => {
            let stream = match path.to_str().and_then(|p| p.strip_prefix('@')) {
                // `unix:@NAME`: an abstract socket (one namespace of names per network namespace).
                Some(name) => {
                    use std::os::linux::net::SocketAddrExt as _;
                    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                        .map_err(connect_err)?;
                    let s = std::os::unix::net::UnixStream::connect_addr(&addr)
                        .and_then(|s| s.set_nonblocking(true).map(|()| s))
                        .map_err(connect_err)?;
                    tokio::net::UnixStream::from_std(s).map_err(connect_err)?
                }
                None => tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect_err)?,
            };
            handshake(stream).await
        }
        Endpoint::Tcp(addr) => {
            let stream = tokio::net::TcpStream::connect(addr.as_str())
                .await
                .map_err(connect_err)?;
            stream.set_nodelay(true)?;
            handshake(stream).await
        }
    }
}

async fn handshake<S>(stream: S) -> Result<SendRequest<Full<Bytes>>, ShimError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection task runs whenever the runtime is driven, i.e. during every `block_on` of a call.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
