//! Answers held for the next one on the same connection: the runtime API's result acknowledgement travels with
//! the next invocation.
//!
//! A runtime that pipelines (the shim writes its result and its next `next` back to back, `docs/protocol.md`)
//! needs the result's answer only before it reads the next invocation's, so the two can share one write.
//! Without that, the platform writes the result's answer at once and the instance wakes for it, reads it and
//! sleeps again until its next invocation: one more write for the platform and one more wake-up for the
//! instance on every warm invocation.
//!
//! How: the server flushes an answer late when the connection's next request is already read (hyper's
//! `pipeline_flush`), so a result's answer is still unwritten when the pipelined `next` begins; while a
//! request is being answered, [`Held`] keeps what is written to its connection, and the request's own answer
//! goes out with it, in one `writev`. An answer to a runtime that does not pipeline (a `curl` bootstrap) is
//! written at once, as before: nothing else is being answered on its connection when it is ready. An answer
//! that is not a success (a second result refused, say) is never held: the runtime may act on it (the shim
//! ends its instance) before it takes another invocation.
//!
//! Bounds: at most [`MAX_HELD`] bytes are held (past it they are written through, in order). Held bytes are
//! lost only when the connection closes while its request is unanswered, which happens when the instance is
//! torn down; an instance that is not killed reads the closed connection as the platform gone.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes a connection holds (answers to results are a few hundred bytes).
pub const MAX_HELD: usize = 16 * 1024;

/// Whether a request is being answered on a connection (what is written meanwhile is held), and whether an
/// answer that must not wait was written since the last successful one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answering(Arc<Flags>);

#[derive(Debug, Default)]
struct Flags {
    answering: AtomicBool,
    /// An answer that is not a success waits in the connection's buffer: it goes out at once, with everything
    /// before it (a runtime told its call failed acts on it before its next invocation).
    urgent: AtomicBool,
}

impl Answering {
    /// A request on the connection begins: what is written from now is held.
    pub(crate) fn begin(&self) {
        self.0.answering.store(true, Ordering::Release);
    }

    /// Its answer is ready: it goes out, with whatever was held. An answer that is not a `success` is never
    /// held, nor are the answers written after it until a successful one is ready.
    pub(crate) fn end(&self, success: bool) {
        self.0.urgent.store(!success, Ordering::Release);
        self.0.answering.store(false, Ordering::Release);
    }

    fn holding(&self) -> bool {
        self.0.answering.load(Ordering::Acquire) && !self.0.urgent.load(Ordering::Acquire)
    }
}

/// A connection that holds what is written to it while a request on it is being answered.
#[derive(Debug)]
pub(crate) struct Held<S> {
    inner: S,
    answering: Answering,
    held: Vec<u8>,
}

impl<S> Held<S> {
    pub(crate) fn new(inner: S, answering: Answering) -> Held<S> {
        Held {
            inner,
            answering,
            held: Vec::new(),
        }
    }
}

impl<S: AsyncWrite + Unpin> Held<S> {
    /// Writes `bufs` after what is held, as far as the connection takes them: how many of `bufs`' bytes it
    /// took (`Pending` until it took some of them, the held bytes first).
    fn write_after_held(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        while !self.held.is_empty() {
            let mut slices = Vec::with_capacity(bufs.len() + 1);
            slices.push(IoSlice::new(&self.held));
            slices.extend(bufs.iter().map(|b| IoSlice::new(b)));
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, &slices))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            if n >= self.held.len() {
                let past = n - self.held.len();
                self.held.clear();
                if past > 0 {
                    return Poll::Ready(Ok(past));
                }
            } else {
                self.held.drain(..n);
            }
        }
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    /// Keeps `bufs` if a request is being answered and they fit.
    fn hold(&mut self, bufs: &[IoSlice<'_>]) -> Option<usize> {
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if !self.answering.holding() || self.held.len() + len > MAX_HELD {
            return None;
        }
        for b in bufs {
            self.held.extend_from_slice(b);
        }
        Some(len)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Held<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Held<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.hold(bufs) {
            Some(n) => Poll::Ready(Ok(n)),
            None => self.write_after_held(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.answering.holding() {
            return Poll::Ready(Ok(()));
        }
        if !self.held.is_empty() {
            std::task::ready!(self.write_after_held(cx, &[]))?;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.held.is_empty() {
            std::task::ready!(self.write_after_held(cx, &[]))?;
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
