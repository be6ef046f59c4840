//! The request log in SCF's format (`docs/scf-platform.md` §4): `START`, the cold start's `Init Report`, the
//! function's own lines, then `ERROR`/`Response`, `END` and `Report`.
//!
//! The log is bounded: the function's lines are capped by the capture (`MAX_INVOCATION_LOG_BYTES`, with a line
//! saying what was dropped), and the platform's own `ERROR` and `Response` lines, which carry the result or
//! the error body (up to 6 MB), are cut at the line limit (8 KB) with a note of how much was cut; the whole
//! result stays in the answer and in the log record's `RetMsg`.

use std::time::Duration;

use bytes::Bytes;
use scf_protocol::ErrorKind;
use scf_protocol::limits::MAX_LOG_LINE_BYTES;

/// A new request id: a UUID, of version 7 (its first 48 bits are the time in milliseconds, the rest random), so
/// ids made one after another sort in that order. The store indexes request logs by request id: in-order ids
/// are added at the end of that index, where random ones (version 4) dirty a page of it at random for every
/// record, which is most of a batch's write-ahead log and about half its CPU.
pub(crate) fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `line` cut at the line limit (on a character boundary), saying how many bytes were cut.
fn clip(mut line: String) -> String {
    if line.len() <= MAX_LOG_LINE_BYTES {
        return line;
    }
    let total = line.len();
    let mut end = MAX_LOG_LINE_BYTES - 64;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line.truncate(end);
    line.push_str(&format!(
        "… ({} more bytes cut at the 8 KB line limit)",
        total - end
    ));
    line
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

/// A stored request log, read back ([`RequestLog::parse`]).
#[derive(Debug, Default, PartialEq)]
pub struct ParsedLog {
    /// It has an `Init Report`: a cold start served the request.
    pub cold: bool,
    /// The function's own lines.
    pub user_lines: Vec<String>,
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

    /// `ERROR`, `Response`, `END` and `Report` lines closing the request: the result (`RetMsg`), or the
    /// error body.
    pub fn finish(
        &mut self,
        request_id: &str,
        result: &Result<Bytes, (ErrorKind, Bytes)>,
        duration: Duration,
        memory_mb: u32,
        mem_usage: u64,
    ) {
        match result {
            Ok(body) => {
                self.lines.push(clip(format!(
                    "Response RequestId:{request_id} RetMsg:{}",
                    String::from_utf8_lossy(body)
                )));
            }
            Err((_, body)) => {
                let error = String::from_utf8_lossy(body);
                self.lines
                    .push(clip(format!("ERROR RequestId:{request_id} Result:{error}")));
                self.lines.push(clip(format!(
                    "Response RequestId:{request_id} RetMsg:{error}"
                )));
            }
        }
        self.lines.push(format!("END RequestId:{request_id}"));
        self.lines.push(format!(
            "Report RequestId:{request_id} Duration:{} Memory:{memory_mb}MB MemUsage:{}",
            ms(duration),
            mb(mem_usage)
        ));
    }

    /// Reads a stored log of request `request_id` back: whether it was a cold start (it has an `Init Report`)
    /// and the function's own lines (everything but the platform's lines of this request).
    pub fn parse(text: &str, request_id: &str) -> ParsedLog {
        let ours = [
            format!("START RequestId:{request_id}"),
            format!("Init Report RequestId: {request_id} "),
            format!("ERROR RequestId:{request_id} "),
            format!("Response RequestId:{request_id} "),
            format!("END RequestId:{request_id}"),
            format!("Report RequestId:{request_id} "),
        ];
        let mut parsed = ParsedLog::default();
        for line in text.lines() {
            match ours.iter().position(|p| line.starts_with(p.as_str())) {
                Some(1) => parsed.cold = true,
                Some(_) => {}
                None => parsed.user_lines.push(line.to_owned()),
            }
        }
        parsed
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
    fn request_log_order() {
        let mut log = RequestLog::start("r");
        log.init_report("r", &ColdStart::default(), 128, 0);
        log.user_lines(vec!["hi".into()]);
        log.finish(
            "r",
            &Err((ErrorKind::UnhandledError, Bytes::from_static(b"{}"))),
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
        let parsed = RequestLog::parse(&log.text(), "r");
        assert_eq!(
            parsed,
            ParsedLog {
                cold: true,
                user_lines: vec!["hi".into()]
            }
        );
    }

    #[test]
    fn a_large_result_is_cut_in_the_log_only() {
        let mut log = RequestLog::start("r");
        let big = format!("\"{}\"", "é".repeat(MAX_LOG_LINE_BYTES));
        log.finish("r", &Ok(Bytes::from(big.clone())), Duration::ZERO, 128, 0);
        let line = &log.lines()[1];
        assert!(line.len() <= MAX_LOG_LINE_BYTES, "{}", line.len());
        assert!(line.starts_with("Response RequestId:r RetMsg:\"éé"));
        let cut = line.len() - line.find('…').unwrap_or(0);
        assert!(
            line.ends_with("more bytes cut at the 8 KB line limit)"),
            "{}",
            &line[line.len() - cut..]
        );
    }
}
