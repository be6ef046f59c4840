//! The platform's durable state in one SQLite database: the async event queues, the dead-letter store and
//! the request logs.
//!
//! The database runs in WAL mode with `synchronous=NORMAL`: a committed write survives the platform's
//! process being killed (`kill -9`), which is the promise the platform makes: an event it acknowledged is
//! never lost. Events are leased while they run; leases are cleared when the platform starts, so an event
//! that was running when the platform died runs again (at-least-once delivery).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::PlatformError;

/// An async event waiting in a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    /// Position in the queue (FIFO order).
    pub seq: i64,
    /// The function it is for.
    pub function: String,
    /// Its request id, returned to the caller when it was accepted.
    pub request_id: String,
    /// The event.
    pub body: Vec<u8>,
    /// When it was accepted, ms since the epoch.
    pub enqueued_ms: i64,
    /// Failed attempts so far that count against the retry limit.
    pub attempts: i64,
}

/// An event that exhausted its retries or its maximum age.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetter {
    /// The event's request id.
    pub request_id: String,
    /// The last error's status code.
    pub error_code: i64,
    /// The last error's message (the error body).
    pub error_message: String,
    /// The message body in the platform's dead-letter shape.
    pub body: serde_json::Value,
}

/// One request's log record.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LogRecord {
    /// The function.
    pub function: String,
    /// The request id.
    pub request_id: String,
    /// Start, ms since the epoch.
    pub start_ms: i64,
    /// Duration, ms.
    pub duration_ms: f64,
    /// Resident memory at the end, bytes.
    pub mem_usage: i64,
    /// 0 on success, else the error's status code.
    pub ret_code: i64,
    /// The result or the error body.
    pub ret_msg: String,
    /// The log text.
    pub log: String,
    /// `RequestResponse` or `Event`.
    pub invocation_type: String,
    /// Which attempt this was (0 for the first).
    pub retry_num: i64,
}

/// Why an event was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnqueueError {
    /// The function's queue holds its maximum number of events.
    #[error("the async queue of function {function} is full ({limit} events)")]
    Full {
        /// The function.
        function: String,
        /// The limit.
        limit: usize,
    },
    /// The database failed.
    #[error("the event store failed: {0}")]
    Store(String),
}

/// The database.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    /// Events in each function's queue, counted once from the table and then kept up to date, so that
    /// accepting an event does not count the queue (which holds up to 100,000).
    queued: Mutex<std::collections::HashMap<String, usize>>,
    /// The background log writer, once started ([`Store::start_log_writer`]).
    writer: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<LogMsg>>,
}

/// A message to the background log writer.
#[derive(Debug)]
enum LogMsg {
    Record(Box<LogRecord>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

fn db_err(e: rusqlite::Error) -> PlatformError {
    PlatformError::Config(format!("database: {e}"))
}

impl Store {
    /// Opens (creating if needed) `dir/scf-local.db`, and clears the leases of a previous run.
    pub fn open(dir: &Path) -> Result<Store, PlatformError> {
        std::fs::create_dir_all(dir)
            .map_err(PlatformError::io(format!("creating {}", dir.display())))?;
        let conn = Connection::open(dir.join("scf-local.db")).map_err(db_err)?;
        Self::init(conn)
    }

    /// Opens the database of `dir` for reading what a running platform writes (logs, dead letters).
    pub fn open_existing(dir: &Path) -> Result<Store, PlatformError> {
        let path = dir.join("scf-local.db");
        if !path.is_file() {
            return Err(PlatformError::Config(format!(
                "no platform data in {} (is this the --data-dir of scf-local serve?)",
                dir.display()
            )));
        }
        let conn = Connection::open(path).map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_err)?;
        Ok(Store {
            conn: Mutex::new(conn),
            queued: Mutex::new(std::collections::HashMap::new()),
            writer: std::sync::OnceLock::new(),
        })
    }

    fn init(conn: Connection) -> Result<Store, PlatformError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS events (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 function TEXT NOT NULL,
                 request_id TEXT NOT NULL UNIQUE,
                 body BLOB NOT NULL,
                 enqueued_ms INTEGER NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 next_ms INTEGER NOT NULL,
                 leased INTEGER NOT NULL DEFAULT 0
             );
             CREATE INDEX IF NOT EXISTS events_due ON events(function, leased, next_ms, seq);
             CREATE TABLE IF NOT EXISTS dead_letters (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 function TEXT NOT NULL,
                 request_id TEXT NOT NULL,
                 error_code INTEGER NOT NULL,
                 error_message TEXT NOT NULL,
                 body TEXT NOT NULL,
                 died_ms INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS logs (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 function TEXT NOT NULL,
                 request_id TEXT NOT NULL,
                 start_ms INTEGER NOT NULL,
                 duration_ms REAL NOT NULL,
                 mem_usage INTEGER NOT NULL,
                 ret_code INTEGER NOT NULL,
                 ret_msg TEXT NOT NULL,
                 log TEXT NOT NULL,
                 invocation_type TEXT NOT NULL,
                 retry_num INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS logs_by_function ON logs(function, start_ms);
             CREATE INDEX IF NOT EXISTS logs_by_request ON logs(request_id);
             UPDATE events SET leased = 0 WHERE leased = 1;",
        )
        .map_err(db_err)?;
        Ok(Store {
            conn: Mutex::new(conn),
            queued: Mutex::new(std::collections::HashMap::new()),
            writer: std::sync::OnceLock::new(),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, PlatformError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| PlatformError::Config("database lock poisoned".into()))?;
        f(&conn).map_err(db_err)
    }

    /// Accepts an event into `function`'s queue, unless it holds `limit` events already.
    pub fn enqueue(
        &self,
        function: &str,
        request_id: &str,
        body: &[u8],
        now_ms: i64,
        limit: usize,
    ) -> Result<(), EnqueueError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| EnqueueError::Store("lock poisoned".into()))?;
        let mut queued = self
            .queued
            .lock()
            .map_err(|_| EnqueueError::Store("lock poisoned".into()))?;
        let count = match queued.get(function) {
            Some(n) => *n,
            None => {
                let n: i64 = conn
                    .query_row(
                        "SELECT COUNT(*) FROM events WHERE function = ?1",
                        params![function],
                        |r| r.get(0),
                    )
                    .map_err(|e| EnqueueError::Store(e.to_string()))?;
                usize::try_from(n).unwrap_or(usize::MAX)
            }
        };
        if count >= limit {
            return Err(EnqueueError::Full {
                function: function.to_owned(),
                limit,
            });
        }
        conn.prepare_cached(
            "INSERT INTO events (function, request_id, body, enqueued_ms, next_ms) VALUES (?1, ?2, ?3, ?4, ?4)",
        )
        .and_then(|mut st| st.execute(params![function, request_id, body, now_ms]))
        .map_err(|e| EnqueueError::Store(e.to_string()))?;
        queued.insert(function.to_owned(), count + 1);
        Ok(())
    }

    /// One event of `function` left its queue.
    fn dequeued(&self, function: &str) {
        if let Ok(mut queued) = self.queued.lock()
            && let Some(n) = queued.get_mut(function)
        {
            *n = n.saturating_sub(1);
        }
    }

    /// Events waiting in `function`'s queue (leased ones included).
    pub fn queue_len(&self, function: &str) -> Result<usize, PlatformError> {
        let n: i64 = self.with(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM events WHERE function = ?1",
                params![function],
                |r| r.get(0),
            )
        })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Takes the oldest due event of `function` and leases it, so no one else takes it.
    pub fn lease_next(
        &self,
        function: &str,
        now_ms: i64,
    ) -> Result<Option<QueuedEvent>, PlatformError> {
        self.with(|c| {
            let ev = c
                .query_row(
                    "SELECT seq, function, request_id, body, enqueued_ms, attempts FROM events
                     WHERE function = ?1 AND leased = 0 AND next_ms <= ?2 ORDER BY seq LIMIT 1",
                    params![function, now_ms],
                    |r| {
                        Ok(QueuedEvent {
                            seq: r.get(0)?,
                            function: r.get(1)?,
                            request_id: r.get(2)?,
                            body: r.get(3)?,
                            enqueued_ms: r.get(4)?,
                            attempts: r.get(5)?,
                        })
                    },
                )
                .optional()?;
            if let Some(ev) = &ev {
                c.execute(
                    "UPDATE events SET leased = 1 WHERE seq = ?1",
                    params![ev.seq],
                )?;
            }
            Ok(ev)
        })
    }

    /// When the next not-leased event of `function` is due, ms since the epoch.
    pub fn next_due_ms(&self, function: &str) -> Result<Option<i64>, PlatformError> {
        self.with(|c| {
            c.query_row(
                "SELECT MIN(next_ms) FROM events WHERE function = ?1 AND leased = 0",
                params![function],
                |r| r.get(0),
            )
        })
    }

    /// The event was delivered: remove it.
    pub fn complete(&self, seq: i64) -> Result<(), PlatformError> {
        let function: Option<String> = self.with(|c| {
            c.query_row(
                "DELETE FROM events WHERE seq = ?1 RETURNING function",
                params![seq],
                |r| r.get(0),
            )
            .optional()
        })?;
        if let Some(f) = function {
            self.dequeued(&f);
        }
        Ok(())
    }

    /// The event failed: release it to run again at `next_ms`, with `attempts` counted so far.
    pub fn retry_later(&self, seq: i64, attempts: i64, next_ms: i64) -> Result<(), PlatformError> {
        self.with(|c| {
            c.execute(
                "UPDATE events SET leased = 0, attempts = ?2, next_ms = ?3 WHERE seq = ?1",
                params![seq, attempts, next_ms],
            )
            .map(|_| ())
        })
    }

    /// Moves the event to the dead-letter store (one transaction).
    pub fn bury(
        &self,
        ev: &QueuedEvent,
        letter: &DeadLetter,
        now_ms: i64,
    ) -> Result<(), PlatformError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO dead_letters (function, request_id, error_code, error_message, body, died_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![ev.function, letter.request_id, letter.error_code, letter.error_message, letter.body.to_string(), now_ms],
            )?;
            let removed = tx.execute("DELETE FROM events WHERE seq = ?1", params![ev.seq])?;
            tx.commit()?;
            Ok(removed)
        })
        .map(|removed| {
            if removed > 0 {
                self.dequeued(&ev.function);
            }
        })
    }

    /// The dead letters of `function`, oldest first.
    pub fn dead_letters(&self, function: &str) -> Result<Vec<DeadLetter>, PlatformError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT request_id, error_code, error_message, body FROM dead_letters WHERE function = ?1 ORDER BY seq",
            )?;
            let rows = st.query_map(params![function], |r| {
                let body: String = r.get(3)?;
                Ok(DeadLetter {
                    request_id: r.get(0)?,
                    error_code: r.get(1)?,
                    error_message: r.get(2)?,
                    body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
                })
            })?;
            rows.collect()
        })
    }

    /// Stores one request's log now.
    pub fn insert_log(&self, rec: &LogRecord) -> Result<(), PlatformError> {
        self.insert_logs(std::slice::from_ref(rec))
    }

    /// Stores request logs in one transaction.
    pub fn insert_logs(&self, recs: &[LogRecord]) -> Result<(), PlatformError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO logs (function, request_id, start_ms, duration_ms, mem_usage, ret_code, ret_msg, log, invocation_type, retry_num)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?;
                for rec in recs {
                    st.execute(params![
                        rec.function, rec.request_id, rec.start_ms, rec.duration_ms, rec.mem_usage, rec.ret_code, rec.ret_msg,
                        rec.log, rec.invocation_type, rec.retry_num
                    ])?;
                }
            }
            tx.commit()
        })
    }

    /// Starts the background log writer on the current tokio runtime: from then on [`Store::record_log`]
    /// queues records, and a task writes whatever has queued up in one transaction, off the invocation's path.
    pub fn start_log_writer(self: &std::sync::Arc<Self>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<LogMsg>();
        if self.writer.set(tx).is_err() {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let (mut batch, mut flushed) = (Vec::new(), Vec::new());
                let mut next = Some(first);
                while let Some(msg) = next {
                    match msg {
                        LogMsg::Record(r) => batch.push(*r),
                        LogMsg::Flush(done) => flushed.push(done),
                    }
                    next = rx.try_recv().ok();
                }
                if !batch.is_empty() {
                    let _ = store.insert_logs(&batch);
                }
                for done in flushed {
                    let _ = done.send(());
                }
            }
        });
    }

    /// Stores one request's log: through the background writer when it runs, else now.
    pub fn record_log(&self, rec: LogRecord) {
        match self.writer.get() {
            Some(tx) => {
                if let Err(e) = tx.send(LogMsg::Record(Box::new(rec))) {
                    if let LogMsg::Record(rec) = e.0 {
                        let _ = self.insert_log(&rec);
                    }
                }
            }
            None => {
                let _ = self.insert_log(&rec);
            }
        }
    }

    /// Waits until every log queued so far is written (before answering a read of the logs).
    pub async fn flush_logs(&self) {
        if let Some(tx) = self.writer.get() {
            let (done, wait) = tokio::sync::oneshot::channel();
            if tx.send(LogMsg::Flush(done)).is_ok() {
                let _ = wait.await;
            }
        }
    }

    /// Log records of `function` (optionally of one request, and within `[from_ms, to_ms]`), ordered by start,
    /// after `after_seq`; returns them with their sequence numbers (for `--follow`).
    pub fn logs(&self, q: &LogQuery) -> Result<Vec<(i64, LogRecord)>, PlatformError> {
        self.with(|c| {
            let order = if q.newest_first { "DESC" } else { "ASC" };
            let sql = format!(
                "SELECT seq, function, request_id, start_ms, duration_ms, mem_usage, ret_code, ret_msg, log, invocation_type, retry_num
                 FROM logs WHERE function = ?1 AND (?2 IS NULL OR request_id = ?2) AND start_ms >= ?3 AND start_ms <= ?4 AND seq > ?5
                 AND (?6 IS NULL OR (?6 = 0 AND ret_code = 0) OR (?6 = 1 AND ret_code != 0))
                 ORDER BY start_ms {order}, seq {order} LIMIT ?7 OFFSET ?8"
            );
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map(
                params![
                    q.function,
                    q.request_id,
                    q.from_ms.unwrap_or(0),
                    q.to_ms.unwrap_or(i64::MAX),
                    q.after_seq,
                    q.failed.map(i64::from),
                    q.limit,
                    q.offset
                ],
                |r| {
                    Ok((
                        r.get(0)?,
                        LogRecord {
                            function: r.get(1)?,
                            request_id: r.get(2)?,
                            start_ms: r.get(3)?,
                            duration_ms: r.get(4)?,
                            mem_usage: r.get(5)?,
                            ret_code: r.get(6)?,
                            ret_msg: r.get(7)?,
                            log: r.get(8)?,
                            invocation_type: r.get(9)?,
                            retry_num: r.get(10)?,
                        },
                    ))
                },
            )?;
            rows.collect()
        })
    }
}

/// What [`Store::logs`] selects.
#[derive(Debug, Clone)]
pub struct LogQuery {
    /// The function.
    pub function: String,
    /// Only this request.
    pub request_id: Option<String>,
    /// Started at or after, ms since the epoch.
    pub from_ms: Option<i64>,
    /// Started at or before, ms since the epoch.
    pub to_ms: Option<i64>,
    /// Only records after this sequence number.
    pub after_seq: i64,
    /// `Some(false)`: only successes; `Some(true)`: only failures.
    pub failed: Option<bool>,
    /// Newest first.
    pub newest_first: bool,
    /// At most this many.
    pub limit: i64,
    /// Skip this many.
    pub offset: i64,
}

impl LogQuery {
    /// Every record of `function`, oldest first.
    pub fn all(function: &str) -> LogQuery {
        LogQuery {
            function: function.to_owned(),
            request_id: None,
            from_ms: None,
            to_ms: None,
            after_seq: 0,
            failed: None,
            newest_first: false,
            limit: i64::MAX,
            offset: 0,
        }
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "scf-store-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        (Store::open(&dir).expect("open"), dir)
    }

    /// The platform's documented queue size, filled for real.
    #[test]
    fn the_default_queue_holds_100_000_events() {
        let (s, dir) = store();
        let limit = crate::config::ServeSettings::default().queue_limit;
        assert_eq!(limit, 100_000);
        for i in 0..limit {
            s.enqueue("f", &format!("r{i}"), b"{}", 1, limit)
                .expect("accepted");
        }
        assert!(matches!(
            s.enqueue("f", "one-more", b"{}", 1, limit),
            Err(EnqueueError::Full { limit: 100_000, .. })
        ));
        let first = s.lease_next("f", 1).expect("ok").expect("the oldest");
        assert_eq!(first.request_id, "r0", "FIFO");
        s.complete(first.seq).expect("done");
        s.enqueue("f", "now-there-is-room", b"{}", 1, limit)
            .expect("room for one");
        assert_eq!(s.queue_len("f").expect("len"), limit);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn fifo_lease_retry_and_limit() {
        let (s, dir) = store();
        s.enqueue("f", "r1", b"1", 10, 2).expect("1");
        s.enqueue("f", "r2", b"2", 11, 2).expect("2");
        assert!(matches!(
            s.enqueue("f", "r3", b"3", 12, 2),
            Err(EnqueueError::Full { limit: 2, .. })
        ));
        let a = s.lease_next("f", 100).expect("ok").expect("r1");
        assert_eq!(a.request_id, "r1");
        let b = s.lease_next("f", 100).expect("ok").expect("r2");
        assert_eq!(b.request_id, "r2");
        assert_eq!(s.lease_next("f", 100).expect("ok"), None, "both leased");
        s.retry_later(a.seq, 1, 500).expect("retry");
        assert_eq!(s.lease_next("f", 499).expect("ok"), None, "not due yet");
        assert_eq!(
            s.lease_next("f", 500).expect("ok").map(|e| e.attempts),
            Some(1)
        );
        s.complete(b.seq).expect("done");
        assert_eq!(s.queue_len("f").expect("len"), 1);
        drop(s);
        // A restart clears leases: the leased event runs again.
        let s = Store::open(&dir).expect("reopen");
        assert_eq!(
            s.lease_next("f", 1000).expect("ok").map(|e| e.request_id),
            Some("r1".into())
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
