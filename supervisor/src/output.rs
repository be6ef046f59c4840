//! The instance's output: its stdout and stderr share one pipe, so the function's lines keep the order it
//! wrote them in. A task reads the pipe as output arrives; [`Output::take_lines`] first drains whatever is
//! still in the pipe. Because every host flushes the function's output before posting a result, draining
//! when the result arrives puts every line printed before it into that request's log.
//!
//! Lines are cut at the platform's line limit (8 KB). At most [`MAX_INVOCATION_LOG_BYTES`] of lines wait to be
//! taken (a request's log holds no more): past it, lines are read from the pipe and dropped (so the function
//! never blocks on a full pipe, and the capture never holds more than the cap), and the lines taken end with
//! one that says how many lines and bytes were dropped.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scf_protocol::limits::{MAX_INVOCATION_LOG_BYTES, MAX_LOG_LINE_BYTES};
use tokio::net::unix::pipe;
use tokio::sync::watch;

#[derive(Default)]
struct Buffer {
    lines: Vec<String>,
    /// Bytes of `lines`, a newline each included.
    bytes: usize,
    /// Lines dropped past the cap since the last take, and their bytes.
    dropped: usize,
    dropped_bytes: usize,
    partial: Vec<u8>,
    eof: bool,
}

/// The line that ends a log whose output passed the cap.
fn truncation_line(lines: usize, bytes: usize) -> String {
    format!(
        "(log truncated: {lines} more lines, {bytes} bytes, dropped past the {} MB a request's log holds)",
        MAX_INVOCATION_LOG_BYTES / (1024 * 1024)
    )
}

impl Buffer {
    fn push_bytes(&mut self, mut bytes: &[u8]) {
        while let Some(pos) = bytes.iter().position(|b| *b == b'\n') {
            self.extend_partial(&bytes[..pos]);
            self.finish_line();
            bytes = &bytes[pos + 1..];
        }
        self.extend_partial(bytes);
    }

    fn extend_partial(&mut self, bytes: &[u8]) {
        // Past the line limit the rest of the line is dropped, as on the platform (one byte more is kept
        // so a `\r` at the limit is still seen as the line's end).
        let room = (MAX_LOG_LINE_BYTES + 1).saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn finish_line(&mut self) {
        let mut raw = std::mem::take(&mut self.partial);
        if raw.last() == Some(&b'\r') {
            raw.pop();
        }
        raw.truncate(MAX_LOG_LINE_BYTES);
        if self.dropped > 0 || self.bytes + raw.len() + 1 > MAX_INVOCATION_LOG_BYTES {
            self.dropped += 1;
            self.dropped_bytes += raw.len() + 1;
            return;
        }
        self.bytes += raw.len() + 1;
        self.lines.push(String::from_utf8_lossy(&raw).into_owned());
    }

    fn take(&mut self, flush_partial: bool) -> Vec<String> {
        if flush_partial && !self.partial.is_empty() {
            self.finish_line();
        }
        let mut lines = std::mem::take(&mut self.lines);
        self.bytes = 0;
        if self.dropped > 0 {
            lines.push(truncation_line(self.dropped, self.dropped_bytes));
            self.dropped = 0;
            self.dropped_bytes = 0;
        }
        lines
    }
}

/// The read end of the instance's output pipe, and the lines read from it so far.
#[derive(Clone)]
pub struct Output {
    fd: Arc<pipe::Receiver>,
    buffer: Arc<Mutex<Buffer>>,
    closed: watch::Receiver<bool>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output").finish_non_exhaustive()
    }
}

/// A pipe for the instance's stdout and stderr: the write end to give the child, the output to keep.
pub(crate) fn pipe() -> std::io::Result<(OwnedFd, Output)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let fd = pipe::Receiver::from_owned_fd(read)?;
    let (closed_tx, closed) = watch::channel(false);
    let output = Output {
        fd: Arc::new(fd),
        buffer: Arc::new(Mutex::new(Buffer::default())),
        closed,
    };
    let reader = output.clone();
    tokio::spawn(async move {
        loop {
            if reader.fd.readable().await.is_err() || reader.drain() {
                let _ = closed_tx.send(true);
                return;
            }
        }
    });
    Ok((write, output))
}

impl Output {
    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads everything the pipe holds now. Returns whether the write end is closed.
    fn drain(&self) -> bool {
        let mut buf = self.buffer();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.fd.try_read(&mut chunk) {
                Ok(0) => {
                    buf.eof = true;
                    return true;
                }
                Ok(n) => buf.push_bytes(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return buf.eof,
            }
        }
    }

    /// The complete lines written since the last call. With `flush_partial`, an unterminated last line too.
    pub fn take_lines(&self, flush_partial: bool) -> Vec<String> {
        self.drain();
        self.buffer().take(flush_partial)
    }

    /// Waits (at most `limit`) until every write end is closed and everything is read: after the instance
    /// is gone, for its last words.
    pub async fn closed(&self, limit: Duration) {
        let mut closed = self.closed.clone();
        let _ = tokio::time::timeout(limit, closed.wait_for(|c| *c)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_and_truncate() {
        let mut b = Buffer::default();
        b.push_bytes(b"a\r\nb");
        b.push_bytes(b"c\n");
        b.push_bytes(&vec![b'x'; MAX_LOG_LINE_BYTES + 10]);
        b.push_bytes(b"\n");
        assert_eq!(b.lines[..2], ["a".to_owned(), "bc".to_owned()]);
        assert_eq!(b.lines[2].len(), MAX_LOG_LINE_BYTES);
    }

    #[test]
    fn a_request_keeps_at_most_the_cap_and_says_what_it_dropped() {
        let mut b = Buffer::default();
        let line = vec![b'y'; 1023]; // 1 KB with its newline
        let fit = MAX_INVOCATION_LOG_BYTES / 1024;
        for _ in 0..fit + 5 {
            b.push_bytes(&line);
            b.push_bytes(b"\n");
        }
        assert!(b.bytes <= MAX_INVOCATION_LOG_BYTES, "held {}", b.bytes);
        let lines = b.take(false);
        assert_eq!(lines.len(), fit + 1);
        assert_eq!(
            lines.last().map(String::as_str),
            Some(truncation_line(5, 5 * 1024).as_str())
        );
        assert!(lines[..fit].iter().all(|l| l.len() == 1023));
        // The next request starts afresh.
        b.push_bytes(b"again\n");
        assert_eq!(b.take(false), ["again"]);
    }

    #[tokio::test]
    async fn the_pipe_is_read_and_its_close_is_seen() {
        let (write, out) = pipe().expect("pipe");
        let mut w = std::fs::File::from(write);
        std::io::Write::write_all(&mut w, b"one\ntwo").expect("write");
        drop(w);
        out.closed(Duration::from_secs(60)).await;
        assert_eq!(out.take_lines(true), ["one", "two"]);
    }
}
