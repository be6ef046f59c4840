//! The platform's events: the one source the terminal printer (`terminal.rs`), the web console
//! (`console.rs`) and the reloads (`watch.rs`) read and write. Instances starting, ready, busy, idle and
//! retired; invocations finished (the same record the store keeps, which `scf-local logs --follow` reads from
//! another process); the async queues changing; reloads and builds.
//!
//! A broadcast channel of [`CAPACITY`] events: a reader that falls behind is told how many it missed (and
//! the console resynchronises from a snapshot), and a writer never waits. Nothing is built while nobody
//! reads. A finished request is handed over as its record ([`Finished`]): the reader summarises it (the
//! terminal on its own thread), not the event loop that sent it; records in flight hold at most
//! [`MAX_RECORD_BYTES_IN_FLIGHT`] of logs, past which the sender summarises as before.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use scf_store::LogRecord;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::requestlog::RequestLog;

/// Events a reader may fall behind by before it misses some.
pub const CAPACITY: usize = 1024;

/// The bytes of logs (and error bodies) that finished requests' records handed to readers may hold before
/// they are summarised: past it (readers far behind), a request is sent as its [`Invocation`], summarised by
/// the sender as it was before records were handed over, and what readers see is the same.
pub const MAX_RECORD_BYTES_IN_FLIGHT: usize = 32 * 1024 * 1024;

/// Lines of a function's own output an [`Invocation`] keeps for the terminal (the full log is in the store).
pub const MAX_SHOWN_LINES: usize = 200;

/// One thing that happened on the platform.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A cold start began (`ticket` names it until it has an instance id).
    InstanceStarting {
        /// The function.
        function: String,
        /// Numbers the start within the function.
        ticket: u64,
    },
    /// A cold start ended with a running instance.
    InstanceStarted {
        /// Which start it was.
        ticket: u64,
        /// The instance.
        instance: InstanceView,
    },
    /// A cold start failed.
    InstanceFailed {
        /// The function.
        function: String,
        /// Which start it was.
        ticket: u64,
        /// The error's message.
        error: String,
    },
    /// An instance took a request (`busy` of its `capacity` places are taken).
    InstanceBusy {
        /// The function.
        function: String,
        /// The instance.
        id: String,
        /// Places taken.
        busy: usize,
    },
    /// An instance is idle.
    InstanceIdle {
        /// The function.
        function: String,
        /// The instance.
        id: String,
        /// Its memory, bytes.
        memory: u64,
    },
    /// An instance was retired (it takes nothing more; its process is stopped).
    InstanceRetired {
        /// The function.
        function: String,
        /// The instance.
        id: String,
        /// Why.
        why: Retired,
    },
    /// A request finished (its log is in the store).
    Invocation(Finished),
    /// A function's async queue or dead letters changed.
    Queue {
        /// The function.
        function: String,
    },
    /// A function's code or configuration changed, and what the platform did about it.
    Reload(Reload),
    /// A line of a function's build (cargo, or its `src.hook`).
    Build {
        /// The function.
        function: String,
        /// The line.
        line: String,
    },
}

/// Why an instance was retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Retired {
    /// Idle for longer than its idle timeout.
    Idle,
    /// Its process exited, or the platform killed it (timeout, memory).
    Died,
    /// Its function's code or configuration changed.
    Reload,
    /// The platform is stopping.
    Shutdown,
}

/// One instance as the console shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    /// The function.
    pub function: String,
    /// The instance's id.
    pub id: String,
    /// Its process id.
    pub pid: u32,
    /// Requests it is serving.
    pub busy: usize,
    /// Requests it takes at once.
    pub capacity: usize,
    /// A provisioned instance.
    pub provisioned: bool,
    /// Started under a debugger (its timeouts are suspended).
    pub debug: bool,
    /// When it became ready, ms since the epoch.
    pub started_ms: i64,
    /// Its cold start, ms.
    pub cold_start_ms: f64,
    /// Its memory now, bytes.
    pub memory: u64,
}

/// A reload of one function, as the terminal and the console show it.
#[derive(Debug, Clone, Serialize)]
pub struct Reload {
    /// The function.
    pub function: String,
    /// What changed (paths relative to the function's directory; at most a few).
    pub changed: Vec<String>,
    /// How many paths changed in all.
    pub changes: usize,
    /// What the platform did: `reloaded`, `build failed` (the old instances stay), `config error` (the old
    /// configuration stays).
    pub outcome: String,
    /// Idle instances retired at once.
    pub retired: usize,
    /// Busy instances that finish their requests first.
    pub draining: usize,
    /// A detail: the build's error, the configuration's error, or settings that apply at the next start.
    pub detail: Option<String>,
}

/// One finished request, summarised from its log record: the terminal's line, the console's row.
#[derive(Debug, Clone, Serialize)]
pub struct Invocation {
    /// The function.
    pub function: String,
    /// The request id.
    pub request_id: String,
    /// Its start, ms since the epoch.
    pub start_ms: i64,
    /// Its duration, ms.
    pub duration_ms: f64,
    /// How it was made: `sync`, `async`, or `provisioned` (an instance started ahead, no request).
    pub trigger: &'static str,
    /// Which attempt of an async event (0 for the first).
    pub retry_num: i64,
    /// 0, or the error's status code.
    pub ret_code: i64,
    /// `ok`, `HTTP <status>` for a web request, or `<status code> <error type>`.
    pub status: String,
    /// The error's message.
    pub error: Option<String>,
    /// A cold start served it.
    pub cold: bool,
    /// Memory at its end, bytes.
    pub mem_usage: i64,
    /// The function's own output (at most [`MAX_SHOWN_LINES`]).
    #[serde(skip)]
    pub lines: Vec<String>,
    /// Output lines beyond those kept.
    #[serde(skip)]
    pub more_lines: usize,
    /// The error's stack trace, if any.
    #[serde(skip)]
    pub stack_trace: Option<String>,
}

impl Invocation {
    /// The summary of one stored log record.
    pub fn of(rec: &LogRecord) -> Invocation {
        let parsed = RequestLog::parse(&rec.log, &rec.request_id);
        let trigger = match rec.invocation_type.as_str() {
            "Event" => "async",
            "Provisioned" => "provisioned",
            _ => "sync",
        };
        let (status, error, stack_trace) = if rec.ret_code == 0 {
            let status = if rec.ret_msg.starts_with("HTTP ") {
                rec.ret_msg.clone()
            } else {
                "ok".to_owned()
            };
            (status, None, None)
        } else {
            let body: serde_json::Value =
                serde_json::from_str(&rec.ret_msg).unwrap_or(serde_json::Value::Null);
            let text = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            let kind = text("errorType").unwrap_or_else(|| "Error".to_owned());
            let message = text("errorMessage").or_else(|| Some(rec.ret_msg.clone()));
            let trace = text("stackTrace").filter(|t| !t.is_empty() && t != "null");
            (format!("{} {kind}", rec.ret_code), message, trace)
        };
        let more_lines = parsed.user_lines.len().saturating_sub(MAX_SHOWN_LINES);
        let mut lines = parsed.user_lines;
        lines.truncate(MAX_SHOWN_LINES);
        Invocation {
            function: rec.function.clone(),
            request_id: rec.request_id.clone(),
            start_ms: rec.start_ms,
            duration_ms: rec.duration_ms,
            trigger,
            retry_num: rec.retry_num,
            ret_code: rec.ret_code,
            status,
            error,
            cold: parsed.cold,
            mem_usage: rec.mem_usage,
            lines,
            more_lines,
            stack_trace,
        }
    }
}

/// A finished request as readers get it: its record, which a reader summarises ([`Finished::summary`]), or,
/// with too many records in flight, its summary. Serialised as its summary.
#[derive(Debug)]
pub struct Finished(Held);

#[derive(Debug)]
enum Held {
    Record {
        rec: LogRecord,
        /// Counted in the senders' [`MAX_RECORD_BYTES_IN_FLIGHT`] until dropped.
        bytes: usize,
        in_flight: Arc<AtomicUsize>,
    },
    Summary(Invocation),
}

impl Finished {
    /// The request's summary: made from its record here (on the reader's thread), or the one it came with.
    pub fn summary(&self) -> Cow<'_, Invocation> {
        match &self.0 {
            Held::Record { rec, .. } => Cow::Owned(Invocation::of(rec)),
            Held::Summary(i) => Cow::Borrowed(i),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Held::Record {
            bytes, in_flight, ..
        } = self
        {
            in_flight.fetch_sub(*bytes, Ordering::Relaxed);
        }
    }
}

impl Serialize for Finished {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.summary().serialize(s)
    }
}

/// The platform's events: cheap to clone; every clone sends to the same readers.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<Arc<Event>>,
    /// Bytes held by the records of [`Event::Invocation`]s not yet dropped by every reader.
    in_flight: Arc<AtomicUsize>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(CAPACITY).0,
            in_flight: Arc::default(),
        }
    }
}

impl Events {
    /// Sends the event `make` builds, if anyone reads (nothing is built otherwise).
    pub fn emit(&self, make: impl FnOnce() -> Event) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(make()));
        }
    }

    /// Sends that the request of `rec` finished, if anyone reads: a copy of its record, summarised by the
    /// readers, while the records in flight hold less than [`MAX_RECORD_BYTES_IN_FLIGHT`]; past that, its
    /// summary.
    pub fn finished(&self, rec: &LogRecord) {
        self.emit(|| {
            let bytes = rec.log.len() + rec.ret_msg.len();
            let before = self.in_flight.fetch_add(bytes, Ordering::Relaxed);
            let held = if before + bytes <= MAX_RECORD_BYTES_IN_FLIGHT {
                Held::Record {
                    rec: rec.clone(),
                    bytes,
                    in_flight: self.in_flight.clone(),
                }
            } else {
                self.in_flight.fetch_sub(bytes, Ordering::Relaxed);
                Held::Summary(Invocation::of(rec))
            };
            Event::Invocation(Finished(held))
        });
    }

    /// Whether anyone reads.
    pub fn watched(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// A reader of the events sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(log: &str, ret_code: i64, ret_msg: &str) -> LogRecord {
        LogRecord {
            function: "f".into(),
            request_id: "r".into(),
            start_ms: 0,
            duration_ms: 1.5,
            mem_usage: 0,
            ret_code,
            ret_msg: ret_msg.into(),
            log: log.into(),
            invocation_type: "RequestResponse".into(),
            retry_num: 0,
        }
    }

    #[test]
    fn a_record_is_summarised_with_its_own_lines_and_its_error() {
        let log = "START RequestId:r\nInit Report RequestId: r Coldstart: 1.00ms (PullCode: 0.10ms InitRuntime: 0.50ms InitFunction: 0.40ms) Memory: 128MB MemUsage: 1.00MB\nhello\nResponse RequestId:other\nERROR RequestId:r Result:{}\nResponse RequestId:r RetMsg:{}\nEND RequestId:r\nReport RequestId:r Duration:1.50ms Memory:128MB MemUsage:1.00MB\n";
        let body = r#"{"errorCode":-1,"errorMessage":"boom","errorType":"UnhandledError","requestId":"r","stackTrace":"at x","statusCode":430}"#;
        let i = Invocation::of(&record(log, 430, body));
        assert!(i.cold);
        assert_eq!(i.lines, ["hello", "Response RequestId:other"]);
        assert_eq!(
            (i.status.as_str(), i.error.as_deref()),
            ("430 UnhandledError", Some("boom"))
        );
        assert_eq!(i.stack_trace.as_deref(), Some("at x"));
        let warm = "START RequestId:r\nResponse RequestId:r RetMsg:1\nEND RequestId:r\nReport RequestId:r Duration:1.50ms Memory:128MB MemUsage:1.00MB\n";
        let i = Invocation::of(&record(warm, 0, "1"));
        assert!(!i.cold && i.lines.is_empty() && i.status == "ok");
        assert_eq!(
            Invocation::of(&record(warm, 0, "HTTP 404")).status,
            "HTTP 404"
        );
    }

    /// What a reader makes of a finished request's event: its summary, its lines, and whether the record came.
    fn received(rx: &mut broadcast::Receiver<Arc<Event>>) -> (String, Vec<String>, bool) {
        let event = rx.try_recv().expect("an event");
        let Event::Invocation(f) = &*event else {
            panic!("not an invocation: {event:?}");
        };
        let i = f.summary();
        let json = serde_json::to_string(&*event).expect("serialisable");
        (json, i.lines.clone(), matches!(f.0, Held::Record { .. }))
    }

    #[test]
    fn a_finished_request_goes_as_its_record_within_the_bound_and_as_its_summary_past_it() {
        let events = Events::default();
        let mut rx = events.subscribe();
        let log = "START RequestId:r\nhello\nResponse RequestId:r RetMsg:1\nEND RequestId:r\nReport RequestId:r Duration:1.50ms Memory:128MB MemUsage:1.00MB\n";
        let rec = record(log, 0, "1");
        let expected = Invocation::of(&rec);
        let expected_json = serde_json::to_string(&Event::Invocation(Finished(Held::Summary(
            expected.clone(),
        ))))
        .expect("serialisable");
        events.finished(&rec);
        assert_eq!(events.in_flight.load(Ordering::Relaxed), log.len() + 1);
        assert_eq!(
            received(&mut rx),
            (expected_json.clone(), expected.lines.clone(), true)
        );
        // Read by every reader: dropped, and no longer counted.
        assert_eq!(events.in_flight.load(Ordering::Relaxed), 0);
        // Records nobody has read yet hold the bound: the next goes summarised, and reads the same.
        let big = record(&"x".repeat(MAX_RECORD_BYTES_IN_FLIGHT - 1), 0, "1");
        events.finished(&big);
        events.finished(&rec);
        assert_eq!(
            events.in_flight.load(Ordering::Relaxed),
            MAX_RECORD_BYTES_IN_FLIGHT
        );
        assert!(received(&mut rx).2, "the first fits");
        assert_eq!(received(&mut rx), (expected_json, expected.lines, false));
        assert_eq!(events.in_flight.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn nothing_is_built_while_nobody_reads() {
        let events = Events::default();
        events.emit(|| unreachable!("nobody reads"));
        let mut rx = events.subscribe();
        events.emit(|| Event::Queue {
            function: "f".into(),
        });
        assert!(
            matches!(&*rx.try_recv().expect("an event"), Event::Queue { function } if function == "f")
        );
    }
}
