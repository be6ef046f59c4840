//! The database itself: one SQLite connection and its statements. Only the store's thread touches it.

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{DeadLetter, EnqueueError, LogQuery, LogRecord, QueuedEvent, StoreError};

/// How long a statement waits for another process's lock on the database before it fails. The store's
/// thread is the database's one writer; another writer is a short external job or a mistake, and the
/// writes the platform must not lose are tried again (logs by this thread, queue changes by the
/// dispatcher; an event that cannot be accepted is refused, so the caller knows).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

const SCHEMA: &str = "PRAGMA journal_mode=WAL;
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
     CREATE INDEX IF NOT EXISTS events_fifo ON events(function, leased, seq);
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
     CREATE INDEX IF NOT EXISTS logs_by_request ON logs(request_id);";

/// The oldest due event of a function (see [`Db::lease_next`]).
const LEASE_NEXT: &str = "SELECT seq, function, request_id, body, enqueued_ms, attempts FROM events INDEXED BY events_fifo
     WHERE function = ?1 AND leased = 0 AND next_ms <= ?2 ORDER BY seq LIMIT 1";

/// The statement of [`Db::logs`] for `q`. One request's records are found through `logs_by_request` (a
/// look-up, whatever the number of records stored); the others through `logs_by_function`, in order.
fn logs_sql(q: &LogQuery) -> String {
    let order = if q.newest_first { "DESC" } else { "ASC" };
    let (index, request) = if q.request_id.is_some() {
        ("logs_by_request", "request_id = ?2")
    } else {
        ("logs_by_function", "?2 IS NULL")
    };
    format!(
        "SELECT seq, function, request_id, start_ms, duration_ms, mem_usage, ret_code, ret_msg, log, invocation_type, retry_num
         FROM logs INDEXED BY {index} WHERE function = ?1 AND {request} AND start_ms >= ?3 AND start_ms <= ?4 AND seq > ?5
         AND (?6 IS NULL OR (?6 = 0 AND ret_code = 0) OR (?6 = 1 AND ret_code != 0))
         ORDER BY start_ms {order}, seq {order} LIMIT ?7 OFFSET ?8"
    )
}

/// One event to accept: [`Db::accept`].
#[derive(Debug, Clone)]
pub(crate) struct Accept {
    pub(crate) function: String,
    pub(crate) request_id: String,
    pub(crate) body: bytes::Bytes,
    pub(crate) now_ms: i64,
    /// The most events the function's queue holds.
    pub(crate) limit: usize,
}

/// Events in `function`'s queue (leased ones included).
fn count_queue(conn: &Connection, function: &str) -> Result<usize, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM events WHERE function = ?1",
        params![function],
        |r| r.get(0),
    )?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// The connection, and the length of each function's queue (counted once, then kept up to date, so that
/// accepting an event does not count a queue of up to 100,000).
pub(crate) struct Db {
    pub(crate) conn: Connection,
    queued: HashMap<String, usize>,
}

impl Db {
    /// Opens (creating if needed) `dir/scf-local.db` and clears the leases of a previous run.
    pub(crate) fn open(dir: &Path) -> Result<Db, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        private(dir, 0o700)?;
        let path = dir.join(crate::DB_FILE);
        // SQLite makes its WAL and SHM files with the database file's mode: a database made 0600 keeps them
        // 0600 too. Files of an older run are made private as well.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| StoreError::Private {
                path: path.clone(),
                mode: 0o600,
                source,
            })?;
        private_files(&path)?;
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch(SCHEMA)?;
        private_files(&path)?;
        conn.execute("UPDATE events SET leased = 0 WHERE leased = 1", [])?;
        Ok(Db {
            conn,
            queued: HashMap::new(),
        })
    }

    /// Opens the database of a platform that runs (or ran) with `dir` as its data directory.
    ///
    /// (Its files are private already: [`Db::open`] made them so.)
    pub(crate) fn open_existing(dir: &Path) -> Result<Db, StoreError> {
        let path = dir.join(crate::DB_FILE);
        if !path.is_file() {
            return Err(StoreError::NoData(dir.to_path_buf()));
        }
        let conn = Connection::open(&path).map_err(|source| StoreError::Open { path, source })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(Db {
            conn,
            queued: HashMap::new(),
        })
    }

    /// Accepts a batch of events, each into its function's queue unless that queue is full, in one
    /// transaction whose commit is synced to disk (`synchronous=FULL` for it: the write-ahead log is
    /// fsynced, with every commit before it): an acknowledged event survives power loss, and a batch of
    /// callers waiting together pays one fsync. One result per event, in order; if the batch cannot be
    /// committed, every event of it fails with that error and none is queued.
    pub(crate) fn accept(&mut self, batch: &[Accept]) -> Vec<Result<(), EnqueueError>> {
        match self.accept_synced(batch) {
            Ok(results) => results,
            Err(e) => {
                // Counts of the batch's functions are read again next time.
                for a in batch {
                    self.queued.remove(&a.function);
                }
                let why = format!("accepting {} events: {e}", batch.len());
                batch
                    .iter()
                    .map(|_| Err(EnqueueError::Store(StoreError::Batch(why.clone()))))
                    .collect()
            }
        }
    }

    fn accept_synced(
        &mut self,
        batch: &[Accept],
    ) -> Result<Vec<Result<(), EnqueueError>>, StoreError> {
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        let done = self.accept_in_transaction(batch);
        let normal = self.conn.pragma_update(None, "synchronous", "NORMAL");
        let (results, counts) = done?;
        normal?;
        self.queued.extend(counts);
        Ok(results)
    }

    /// The batch's inserts and commit; the queue lengths after it, applied by the caller once committed.
    #[allow(clippy::type_complexity, reason = "a private pair of results")]
    fn accept_in_transaction(
        &self,
        batch: &[Accept],
    ) -> Result<(Vec<Result<(), EnqueueError>>, HashMap<String, usize>), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut results = Vec::with_capacity(batch.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (function, request_id, body, enqueued_ms, next_ms) VALUES (?1, ?2, ?3, ?4, ?4)",
            )?;
            for a in batch {
                let count = match counts.get(&a.function) {
                    Some(n) => *n,
                    None => match self.queued.get(&a.function) {
                        Some(n) => *n,
                        None => count_queue(&tx, &a.function)?,
                    },
                };
                if count >= a.limit {
                    counts.insert(a.function.clone(), count);
                    results.push(Err(EnqueueError::Full {
                        function: a.function.clone(),
                        limit: a.limit,
                    }));
                    continue;
                }
                insert.execute(params![a.function, a.request_id, &a.body[..], a.now_ms])?;
                counts.insert(a.function.clone(), count + 1);
                results.push(Ok(()));
            }
        }
        tx.commit()?;
        Ok((results, counts))
    }

    fn dequeued(&mut self, function: &str) {
        if let Some(n) = self.queued.get_mut(function) {
            *n = n.saturating_sub(1);
        }
    }

    pub(crate) fn queue_len(&self, function: &str) -> Result<usize, StoreError> {
        count_queue(&self.conn, function)
    }

    pub(crate) fn lease_next(
        &self,
        function: &str,
        now_ms: i64,
    ) -> Result<Option<QueuedEvent>, StoreError> {
        let ev = self
            .conn
            .prepare_cached(
                // In queue order, skipping the events not yet due (those waiting for a retry): one index
                // step when the oldest is due. Left to itself SQLite would take every due event by
                // `events_due` and sort them, a cost that grows with the backlog (10 ms at 100,000).
                LEASE_NEXT,
            )?
            .query_row(params![function, now_ms], |r| {
                Ok(QueuedEvent {
                    seq: r.get(0)?,
                    function: r.get(1)?,
                    request_id: r.get(2)?,
                    body: r.get::<_, Vec<u8>>(3)?.into(),
                    enqueued_ms: r.get(4)?,
                    attempts: r.get(5)?,
                })
            })
            .optional()?;
        if let Some(ev) = &ev {
            self.conn
                .prepare_cached("UPDATE events SET leased = 1 WHERE seq = ?1")?
                .execute(params![ev.seq])?;
        }
        Ok(ev)
    }

    pub(crate) fn next_due_ms(&self, function: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT MIN(next_ms) FROM events WHERE function = ?1 AND leased = 0")?
            .query_row(params![function], |r| r.get(0))?)
    }

    pub(crate) fn complete(&mut self, seq: i64) -> Result<(), StoreError> {
        let function: Option<String> = self
            .conn
            .prepare_cached("DELETE FROM events WHERE seq = ?1 RETURNING function")?
            .query_row(params![seq], |r| r.get(0))
            .optional()?;
        if let Some(f) = function {
            self.dequeued(&f);
        }
        Ok(())
    }

    pub(crate) fn retry_later(
        &self,
        seq: i64,
        attempts: i64,
        next_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE events SET leased = 0, attempts = ?2, next_ms = ?3 WHERE seq = ?1",
            )?
            .execute(params![seq, attempts, next_ms])?;
        Ok(())
    }

    pub(crate) fn bury(
        &mut self,
        ev: &QueuedEvent,
        letter: &DeadLetter,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO dead_letters (function, request_id, error_code, error_message, body, died_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![ev.function, letter.request_id, letter.error_code, letter.error_message, letter.body.to_string(), now_ms],
        )?;
        let removed = tx.execute("DELETE FROM events WHERE seq = ?1", params![ev.seq])?;
        tx.commit()?;
        if removed > 0 {
            self.dequeued(&ev.function);
        }
        Ok(())
    }

    pub(crate) fn dead_letters(&self, function: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let mut st = self.conn.prepare(
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
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores request logs in one transaction.
    pub(crate) fn insert_logs(&mut self, recs: &[LogRecord]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO logs (function, request_id, start_ms, duration_ms, mem_usage, ret_code, ret_msg, log, invocation_type, retry_num)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for rec in recs {
                st.execute(params![
                    rec.function,
                    rec.request_id,
                    rec.start_ms,
                    rec.duration_ms,
                    rec.mem_usage,
                    rec.ret_code,
                    rec.ret_msg,
                    rec.log,
                    rec.invocation_type,
                    rec.retry_num
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn logs(&self, q: &LogQuery) -> Result<Vec<(i64, LogRecord)>, StoreError> {
        let mut st = self.conn.prepare_cached(&logs_sql(q))?;
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
        // Rows are read one by one: past the byte bound the rest are never read.
        let mut out: Vec<(i64, LogRecord)> = Vec::new();
        let mut bytes = 0usize;
        for row in rows {
            let (seq, rec) = row?;
            let size = rec.log.len() + rec.ret_msg.len();
            if let Some(max) = q.max_bytes
                && !out.is_empty()
                && bytes + size > max
            {
                break;
            }
            bytes += size;
            out.push((seq, rec));
        }
        Ok(out)
    }
}

/// Sets `path`'s mode to `mode` (the data directory 0700, the database's files 0600).
fn private(path: &Path, mode: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        StoreError::Private {
            path: path.to_path_buf(),
            mode,
            source,
        }
    })
}

/// The database file and its WAL and SHM files, where they exist, 0600.
fn private_files(db: &Path) -> Result<(), StoreError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let file = std::path::PathBuf::from(name);
        if file.exists() {
            private(&file, 0o600)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "scf-store-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        (Db::open(&dir).expect("open"), dir)
    }

    /// One event into function `f`'s queue.
    fn enqueue(
        s: &mut Db,
        id: &str,
        body: &'static [u8],
        now_ms: i64,
        limit: usize,
    ) -> Result<(), EnqueueError> {
        let accept = Accept {
            function: "f".into(),
            request_id: id.into(),
            body: bytes::Bytes::from_static(body),
            now_ms,
            limit,
        };
        s.accept(&[accept]).remove(0)
    }

    /// Taking the next event walks the queue's index in order and stops at the first due event: no sort of
    /// the backlog, whatever its size (the plan is the proof; timings would be noise).
    #[test]
    fn the_next_event_is_one_index_step_not_a_sort() {
        let (s, dir) = db();
        let plan: Vec<String> = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {LEASE_NEXT}"))
            .expect("plan")
            .query_map(params!["f", 1], |r| r.get::<_, String>(3))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        assert!(
            plan.iter().any(|p| p.contains("INDEX events_fifo")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// One request's log is a look-up by its id, not a scan of the function's records.
    #[test]
    fn a_request_s_log_is_found_by_its_index() {
        let (s, dir) = db();
        let mut q = LogQuery::all("f");
        q.request_id = Some("r1".into());
        let plan: Vec<String> = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", logs_sql(&q)))
            .expect("plan")
            .query_map(
                params!["f", "r1", 0, i64::MAX, 0, None::<i64>, 10, 0],
                |r| r.get::<_, String>(3),
            )
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        assert!(
            plan.iter()
                .any(|p| p.contains("INDEX logs_by_request (request_id=?")),
            "{plan:?}"
        );
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The platform's documented queue size, filled for real (the inserts in one transaction, as a burst of
    /// events over time would not be, but the limit is the same rule).
    #[test]
    fn the_default_queue_holds_100_000_events() {
        let (mut s, dir) = db();
        let limit = 100_000;
        let accept = |id: &str| Accept {
            function: "f".into(),
            request_id: id.into(),
            body: bytes::Bytes::from_static(b"{}"),
            now_ms: 1,
            limit,
        };
        let mut batch: Vec<Accept> = (0..limit).map(|i| accept(&format!("r{i}"))).collect();
        batch.push(accept("one-more"));
        let results = s.accept(&batch);
        assert!(results[..limit].iter().all(Result::is_ok), "accepted");
        assert!(matches!(
            results[limit],
            Err(EnqueueError::Full { limit: 100_000, .. })
        ));
        let first = s.lease_next("f", 1).expect("ok").expect("the oldest");
        assert_eq!(first.request_id, "r0", "FIFO");
        s.complete(first.seq).expect("done");
        assert!(matches!(
            s.accept(&[accept("now-there-is-room"), accept("and-none-for-this")])[..],
            [Ok(()), Err(EnqueueError::Full { .. })]
        ));
        assert_eq!(s.queue_len("f").expect("len"), limit);
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn fifo_lease_retry_and_limit() {
        let (mut s, dir) = db();
        enqueue(&mut s, "r1", b"1", 10, 2).expect("1");
        enqueue(&mut s, "r2", b"2", 11, 2).expect("2");
        assert!(matches!(
            enqueue(&mut s, "r3", b"3", 12, 2),
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
        let s = Db::open(&dir).expect("reopen");
        assert_eq!(
            s.lease_next("f", 1000).expect("ok").map(|e| e.request_id),
            Some("r1".into())
        );
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_log_query_stops_at_its_byte_bound_after_the_first_record() {
        let (mut s, dir) = db();
        let rec = |i: i64, n: usize| LogRecord {
            function: "f".into(),
            request_id: format!("r{i}"),
            start_ms: i,
            duration_ms: 1.0,
            mem_usage: 0,
            ret_code: 0,
            ret_msg: "1".into(),
            log: "x".repeat(n),
            invocation_type: "Event".into(),
            retry_num: 0,
        };
        let recs: Vec<LogRecord> = (0..10).map(|i| rec(i, 999)).collect();
        s.insert_logs(&recs).expect("insert");
        let mut q = LogQuery::all("f");
        q.max_bytes = Some(3500);
        let got = s.logs(&q).expect("logs");
        assert_eq!(got.len(), 3, "three records of 1,000 bytes fit in 3,500");
        q.offset = 3;
        assert_eq!(
            s.logs(&q).expect("logs")[0].1.request_id,
            "r3",
            "the next page"
        );
        // A record larger than the bound still comes back, alone.
        s.insert_logs(&[rec(20, 10_000)]).expect("insert");
        q.offset = 0;
        q.newest_first = true;
        let got = s.logs(&q).expect("logs");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.request_id, "r20");
        q.max_bytes = None;
        assert_eq!(s.logs(&q).expect("logs").len(), 11);
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }
}
