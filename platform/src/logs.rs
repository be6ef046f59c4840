//! The instance's output, and the request log in SCF's format (`docs/scf-platform.md` §4).
//!
//! The instance's stdout and stderr share one pipe, so the function's lines keep the order it wrote them
//! in. A task reads the pipe as output arrives; [`Capture::take_lines`] first drains whatever is still in
//! the pipe. Because every host flushes the function's output before posting a result, draining when the
//! result arrives puts every line printed before it into that request's log.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scf_protocol::limits::MAX_LOG_LINE_BYTES;
use tokio::net::unix::pipe;

use crate::PlatformError;

#[derive(Default)]
struct Buffer {
    lines: Vec<String>,
    partial: Vec<u8>,
    eof: bool,
}

impl Buffer {
    fn push_bytes(&mut self, mut bytes: &[u8]) {
        while let Some(pos) = bytes.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&bytes[..pos]);
            self.finish_line();
            bytes = &bytes[pos + 1..];
        }
        self.partial.extend_from_slice(bytes);
    }

    fn finish_line(&mut self) {
        let mut raw = std::mem::take(&mut self.partial);
        if raw.last() == Some(&b'\r') {
            raw.pop();
        }
        // 8 KB per line; the rest of the line is dropped, as on the platform.
        raw.truncate(MAX_LOG_LINE_BYTES);
        self.lines.push(String::from_utf8_lossy(&raw).into_owned());
    }
}

/// The read end of the instance's output pipe, and the lines read from it so far.
#[derive(Clone)]
pub struct Capture {
    fd: Arc<pipe::Receiver>,
    buffer: Arc<Mutex<Buffer>>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").finish_non_exhaustive()
    }
}

/// A pipe for the instance's stdout and stderr: the write end to give the child, the capture to keep.
pub fn pipe() -> Result<(OwnedFd, Capture), PlatformError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(PlatformError::Io {
            context: "creating the log pipe".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let fd =
        pipe::Receiver::from_owned_fd(read).map_err(PlatformError::io("watching the log pipe"))?;
    let capture = Capture {
        fd: Arc::new(fd),
        buffer: Arc::new(Mutex::new(Buffer::default())),
    };
    let reader = capture.clone();
    tokio::spawn(async move { reader.read_loop().await });
    Ok((write, capture))
}

/// Gives `cmd` the pipe's write end as both stdout and stderr (one pipe keeps the lines in order).
pub fn attach(cmd: &mut tokio::process::Command, write: OwnedFd) -> std::io::Result<()> {
    let stderr = write.try_clone()?;
    cmd.stdout(std::process::Stdio::from(write))
        .stderr(std::process::Stdio::from(stderr));
    Ok(())
}

impl Capture {
    async fn read_loop(&self) {
        loop {
            if self.fd.readable().await.is_err() || self.drain() {
                return;
            }
        }
    }

    /// Reads everything the pipe holds now. Returns whether the write end is closed.
    fn drain(&self) -> bool {
        let Ok(mut buf) = self.buffer.lock() else {
            return true;
        };
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
        let Ok(mut buf) = self.buffer.lock() else {
            return Vec::new();
        };
        if flush_partial && !buf.partial.is_empty() {
            buf.finish_line();
        }
        std::mem::take(&mut buf.lines)
    }

    /// Waits (at most `limit`) until the write end is closed and everything is read: after the instance
    /// process is gone, for its last words.
    pub async fn wait_closed(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self.drain() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Milliseconds as the log shows them: two decimals (the real platform rounds to whole ms; locally the
/// fraction is the interesting part).
pub fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

/// Megabytes as the log shows them.
pub fn mb(bytes: u64) -> String {
    format!("{:.2}MB", bytes as f64 / (1024.0 * 1024.0))
}

/// The phases of a cold start.
#[derive(Debug, Clone, Copy, Default)]
pub struct ColdStart {
    /// Preparing the code and the instance's directories.
    pub pull_code: Duration,
    /// Spawn until the language runtime was ready.
    pub init_runtime: Duration,
    /// Loading the function's code.
    pub init_function: Duration,
}

impl ColdStart {
    /// The whole cold start.
    pub fn total(&self) -> Duration {
        self.pull_code + self.init_runtime + self.init_function
    }
}

/// One request's log, built line by line in the platform's order.
#[derive(Debug, Default)]
pub struct RequestLog {
    lines: Vec<String>,
}

impl RequestLog {
    /// `START RequestId:<id>`.
    pub fn start(request_id: &str) -> Self {
        RequestLog {
            lines: vec![format!("START RequestId:{request_id}")],
        }
    }

    /// The `Init Report` line of a cold start.
    pub fn init_report(
        &mut self,
        request_id: &str,
        cold: &ColdStart,
        memory_mb: u32,
        mem_usage: u64,
    ) {
        self.lines.push(format!(
            "Init Report RequestId: {request_id} Coldstart: {} (PullCode: {} InitRuntime: {} InitFunction: {}) Memory: {memory_mb}MB MemUsage: {}",
            ms(cold.total()),
            ms(cold.pull_code),
            ms(cold.init_runtime),
            ms(cold.init_function),
            mb(mem_usage)
        ));
    }

    /// The function's own lines.
    pub fn user_lines(&mut self, lines: Vec<String>) {
        self.lines.extend(lines);
    }

    /// `ERROR`, `Response`, `END` and `Report` lines closing the request.
    pub fn finish(
        &mut self,
        request_id: &str,
        result: &Result<Vec<u8>, String>,
        duration: Duration,
        memory_mb: u32,
        mem_usage: u64,
    ) {
        match result {
            Ok(body) => {
                self.lines.push(format!(
                    "Response RequestId:{request_id} RetMsg:{}",
                    String::from_utf8_lossy(body)
                ));
            }
            Err(error) => {
                self.lines
                    .push(format!("ERROR RequestId:{request_id} Result:{error}"));
                self.lines
                    .push(format!("Response RequestId:{request_id} RetMsg:{error}"));
            }
        }
        self.lines.push(format!("END RequestId:{request_id}"));
        self.lines.push(format!(
            "Report RequestId:{request_id} Duration:{} Memory:{memory_mb}MB MemUsage:{}",
            ms(duration),
            mb(mem_usage)
        ));
    }

    /// The lines.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The log as text, one line each.
    pub fn text(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
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
    fn request_log_order() {
        let mut log = RequestLog::start("r");
        log.init_report("r", &ColdStart::default(), 128, 0);
        log.user_lines(vec!["hi".into()]);
        log.finish(
            "r",
            &Err("{}".into()),
            Duration::from_millis(3),
            128,
            1024 * 1024,
        );
        let l = log.lines();
        assert!(
            l[0] == "START RequestId:r"
                && l[1].starts_with("Init Report RequestId: r Coldstart: 0.00ms (PullCode:")
        );
        assert_eq!(
            &l[2..5],
            [
                "hi",
                "ERROR RequestId:r Result:{}",
                "Response RequestId:r RetMsg:{}"
            ]
        );
        assert_eq!(
            l[6],
            "Report RequestId:r Duration:3.00ms Memory:128MB MemUsage:1.00MB"
        );
    }
}
