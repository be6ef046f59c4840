//! The request log in SCF's format (`docs/scf-platform.md` §4): `START`, the cold start's `Init Report`, the
//! function's own lines, then `ERROR`/`Response`, `END` and `Report`.
//!
//! The log is bounded: the function's lines are capped by the capture (`MAX_INVOCATION_LOG_BYTES`, with a line
//! saying what was dropped), and the platform's own `ERROR` and `Response` lines, which carry the result or
//! the error body (up to 6 MB), are cut at the line limit (8 KB) with a note of how much was cut; the whole
//! result stays in the answer and in the log record's `RetMsg`.

use std::fmt::Write as _;
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

/// Cuts the line that begins at `start` of `text` (its end) at the line limit, on a character boundary,
/// saying how many bytes were cut.
fn clip(text: &mut String, start: usize) {
    let total = text.len() - start;
    if total <= MAX_LOG_LINE_BYTES {
        return;
    }
    let mut end = start + MAX_LOG_LINE_BYTES - 64;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    let _ = write!(
        text,
        "… ({} more bytes cut at the 8 KB line limit)",
        total - (end - start)
    );
}

/// Milliseconds as the log shows them: two decimals (the real platform rounds to whole ms; locally the
/// fraction is the interesting part).
pub fn ms(d: Duration) -> String {
    Ms(d).to_string()
}

/// Megabytes as the log shows them.
pub fn mb(bytes: u64) -> String {
    Mb(bytes).to_string()
}

/// [`ms`], written where it goes.
struct Ms(Duration);

impl std::fmt::Display for Ms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2}ms", self.0.as_secs_f64() * 1000.0)
    }
}

/// [`mb`], written where it goes.
struct Mb(u64);

impl std::fmt::Display for Mb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2}MB", self.0 as f64 / (1024.0 * 1024.0))
    }
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

/// How the platform's lines of a request begin: each is `<head><request id><tail>` (the `Init Report` line
/// second).
const OURS: [(&str, &str); 6] = [
    ("START RequestId:", ""),
    ("Init Report RequestId: ", " "),
    ("ERROR RequestId:", " "),
    ("Response RequestId:", " "),
    ("END RequestId:", ""),
    ("Report RequestId:", " "),
];

/// Whether `line` begins with `head`, `request_id`, `tail` (without making that text).
fn is_ours(line: &str, head: &str, request_id: &str, tail: &str) -> bool {
    line.strip_prefix(head)
        .and_then(|rest| rest.strip_prefix(request_id))
        .is_some_and(|rest| rest.starts_with(tail))
}

/// One request's log, built line by line in the platform's order, as its text: each line ends with `\n`.
/// Written where it goes, one buffer for the whole log (no string per line, no join at the end).
#[derive(Debug, Default)]
pub struct RequestLog {
    text: String,
}

/// What a warm request's log usually takes (its `START`, `Response`, `END` and `Report` lines): one
/// allocation for them.
const USUAL_BYTES: usize = 320;

impl RequestLog {
    /// `START RequestId:<id>`.
    pub fn start(request_id: &str) -> Self {
        let mut text = String::with_capacity(USUAL_BYTES);
        let _ = writeln!(text, "START RequestId:{request_id}");
        RequestLog { text }
    }

    /// The `Init Report` line of a cold start.
    pub fn init_report(
        &mut self,
        request_id: &str,
        cold: &ColdStart,
        memory_mb: u32,
        mem_usage: u64,
    ) {
        let _ = writeln!(
            self.text,
            "Init Report RequestId: {request_id} Coldstart: {} (PullCode: {} InitRuntime: {} InitFunction: {}) Memory: {memory_mb}MB MemUsage: {}",
            Ms(cold.total()),
            Ms(cold.pull_code),
            Ms(cold.init_runtime),
            Ms(cold.init_function),
            Mb(mem_usage)
        );
    }

    /// The function's own lines.
    pub fn user_lines(&mut self, lines: Vec<String>) {
        for line in lines {
            self.text.push_str(&line);
            self.text.push('\n');
        }
    }

    /// A line of the result or the error, cut at the line limit.
    fn clipped(&mut self, line: std::fmt::Arguments<'_>) {
        let start = self.text.len();
        let _ = self.text.write_fmt(line);
        clip(&mut self.text, start);
        self.text.push('\n');
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
                let ret = String::from_utf8_lossy(body);
                self.clipped(format_args!("Response RequestId:{request_id} RetMsg:{ret}"));
            }
            Err((_, body)) => {
                let error = String::from_utf8_lossy(body);
                self.clipped(format_args!("ERROR RequestId:{request_id} Result:{error}"));
                self.clipped(format_args!(
                    "Response RequestId:{request_id} RetMsg:{error}"
                ));
            }
        }
        let _ = writeln!(self.text, "END RequestId:{request_id}");
        let _ = writeln!(
            self.text,
            "Report RequestId:{request_id} Duration:{} Memory:{memory_mb}MB MemUsage:{}",
            Ms(duration),
            Mb(mem_usage)
        );
    }

    /// Reads a stored log of request `request_id` back: whether it was a cold start (it has an `Init Report`)
    /// and the function's own lines (everything but the platform's lines of this request).
    pub fn parse(text: &str, request_id: &str) -> ParsedLog {
        let mut parsed = ParsedLog::default();
        for line in text.lines() {
            match OURS
                .iter()
                .position(|(head, tail)| is_ours(line, head, request_id, tail))
            {
                Some(1) => parsed.cold = true,
                Some(_) => {}
                None => parsed.user_lines.push(line.to_owned()),
            }
        }
        parsed
    }

    /// The lines.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.lines()
    }

    /// The log as text, one line each.
    pub fn text(&self) -> String {
        if self.text.is_empty() {
            return "\n".to_owned();
        }
        self.text.clone()
    }

    /// [`RequestLog::text`], without a copy.
    pub fn into_text(self) -> String {
        if self.text.is_empty() {
            return "\n".to_owned();
        }
        self.text
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
        let l: Vec<&str> = log.lines().collect();
        assert!(
            l[0] == "START RequestId:r"
                && l[1].starts_with("Init Report RequestId: r Coldstart: 0.00ms (PullCode:")
        );
        assert_eq!(
            l[2..5],
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
        let lines: Vec<&str> = log.lines().collect();
        let line = lines[1];
        assert!(line.len() <= MAX_LOG_LINE_BYTES, "{}", line.len());
        assert!(line.starts_with("Response RequestId:r RetMsg:\"éé"));
        let cut = line.len() - line.find('…').unwrap_or(0);
        assert!(
            line.ends_with("more bytes cut at the 8 KB line limit)"),
            "{}",
            &line[line.len() - cut..]
        );
    }

    #[test]
    fn the_text_is_each_line_then_a_newline() {
        let mut log = RequestLog::start("r");
        log.user_lines(vec!["a".into(), "".into(), "b c".into()]);
        log.finish(
            "r",
            &Ok(Bytes::from_static(b"HTTP 200")),
            Duration::from_micros(1500),
            64,
            3 * 1024 * 1024 / 2,
        );
        let expected = "START RequestId:r\na\n\nb c\nResponse RequestId:r RetMsg:HTTP 200\nEND RequestId:r\nReport RequestId:r Duration:1.50ms Memory:64MB MemUsage:1.50MB\n";
        assert_eq!(log.text(), expected);
        assert_eq!(log.into_text(), expected);
        assert_eq!(RequestLog::default().text(), "\n");
    }

    #[test]
    fn an_error_cuts_both_its_lines_and_keeps_the_rest_whole() {
        let mut log = RequestLog::start("r");
        let big = "x".repeat(3 * MAX_LOG_LINE_BYTES);
        log.finish(
            "r",
            &Err((ErrorKind::UnhandledError, Bytes::from(big))),
            Duration::ZERO,
            128,
            0,
        );
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 5);
        for (line, prefix) in lines[1..3].iter().zip([
            "ERROR RequestId:r Result:x",
            "Response RequestId:r RetMsg:x",
        ]) {
            assert!(
                line.len() <= MAX_LOG_LINE_BYTES && line.starts_with(prefix),
                "{line}"
            );
            let cut = 3 * MAX_LOG_LINE_BYTES - (MAX_LOG_LINE_BYTES - 64 - (prefix.len() - 1));
            assert!(
                line.ends_with(&format!("… ({cut} more bytes cut at the 8 KB line limit)")),
                "{line}"
            );
        }
        assert_eq!(lines[3], "END RequestId:r");
    }
}
