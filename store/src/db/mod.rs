//! The database itself: one SQLite connection and its statements. Only the store's thread touches it.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, params};

use crate::lease::{Lease, ParkedLeases, Then};
use crate::{DeadLetter, EnqueueError, LogQuery, LogRecord, QueuedEvent, StoreError};

mod schema;

/// A function's due events, oldest first (see [`Db::lease_next`]): steps of `events_fifo` alone (it holds
/// `next_ms`), so stepping over a leased event or one waiting for its retry reads no row.
const DUE_IN_ORDER: &str = "SELECT seq, next_ms FROM events INDEXED BY events_fifo WHERE function = ?1 AND next_ms <= ?2 ORDER BY seq";

/// A function's events by due time, soonest first (see [`Db::lease_next`]).
const BY_DUE_TIME: &str =
    "SELECT seq, next_ms FROM events INDEXED BY events_due WHERE function = ?1 ORDER BY next_ms";

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

/// One event to accept: [`Db::write`].
#[derive(Debug, Clone)]
pub(crate) struct Accept {
    pub(crate) function: String,
    pub(crate) request_id: String,
    pub(crate) body: bytes::Bytes,
    pub(crate) now_ms: i64,
    /// The most events the function's queue holds.
    pub(crate) limit: usize,
}

/// What happened to a leased event, to be written: [`Db::write`].
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Delivered: the event is removed.
    Complete(i64),
    /// Failed: the event is due again at `next_ms`, with `attempts` counted.
    Retry {
        seq: i64,
        attempts: i64,
        next_ms: i64,
    },
    /// Out of retries or too old: the event moves to the dead letters.
    Bury {
        ev: Box<QueuedEvent>,
        letter: Box<DeadLetter>,
        now_ms: i64,
    },
}

impl Outcome {
    fn seq(&self) -> i64 {
        match self {
            Outcome::Complete(seq) | Outcome::Retry { seq, .. } => *seq,
            Outcome::Bury { ev, .. } => ev.seq,
        }
    }
}

/// What [`Db::lease_next`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Next {
    /// The oldest due event of the function that was not leased, now leased.
    pub(crate) event: Option<QueuedEvent>,
    /// When the oldest event not leased (besides `event`) is due, ms since the epoch: at or before the
    /// time asked about when one is due already (take it next); `None` when the queue holds no other.
    pub(crate) due_ms: Option<i64>,
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

/// The connection; the length of each function's queue (counted once, then kept up to date, so that
/// accepting an event does not count a queue of up to 100,000); the leased events.
pub(crate) struct Db {
    pub(crate) conn: Connection,
    queued: HashMap<String, usize>,
    /// Events taken by [`Db::lease_next`] whose outcome is not written yet. A lease is not durable state
    /// (after a restart every event is due again), so it lives here and costs no write.
    leased: HashSet<i64>,
    /// The connection's `synchronous` setting is `FULL` (else `NORMAL`).
    synced: bool,
    /// Leases waiting for their function's next accepted event.
    parked: ParkedLeases,
}

impl Db {
    /// Writes a batch in one transaction: the `outcomes` of leased events first (so an event delivered
    /// makes room for one accepted in the same batch), then the `accepts` (each into its function's queue
    /// unless that queue is full), then the `logs`. With accepts, the commit is synced to disk
    /// (`synchronous=FULL`: the write-ahead log is fsynced, with every commit before it), so an acknowledged
    /// event survives power loss, and every caller of the batch, and every outcome and log in it, shares one
    /// fsync. Without, it is committed with `synchronous=NORMAL` (it survives the platform's death; after a
    /// power loss an event may run again, never vanish). One result per accept, in order (its place in its
    /// queue); if the batch cannot be committed nothing of it is written, and the outcomes' events stay
    /// leased.
    pub(crate) fn write<'a>(
        &mut self,
        accepts: &[Accept],
        outcomes: &[Outcome],
        logs: impl ExactSizeIterator<Item = &'a LogRecord>,
    ) -> Result<Vec<Result<i64, EnqueueError>>, StoreError> {
        let synced = !accepts.is_empty();
        if self.synced != synced {
            let mode = if synced { "FULL" } else { "NORMAL" };
            self.conn.pragma_update(None, "synchronous", mode)?;
            self.synced = synced;
        }
        match self.write_in_transaction(accepts, outcomes, logs) {
            Ok((results, counts)) => {
                self.queued.extend(counts);
                for o in outcomes {
                    self.leased.remove(&o.seq());
                }
                Ok(results)
            }
            Err(e) => {
                // Counts of the batch's functions are read again next time.
                for a in accepts {
                    self.queued.remove(&a.function);
                }
                Err(e)
            }
        }
    }

    /// Whether accepting `accepts` may find one of their queues full: its length is not known yet, or it
    /// would pass its limit with every accept of the batch.
    pub(crate) fn may_refuse<'a>(
        &self,
        mut accepts: impl ExactSizeIterator<Item = &'a Accept>,
    ) -> bool {
        let n = accepts.len();
        accepts.any(|a| self.queued.get(&a.function).is_none_or(|q| q + n > a.limit))
    }

    /// The batch's statements and commit; the queue lengths after it, applied by the caller once committed.
    #[allow(clippy::type_complexity, reason = "a private pair of results")]
    fn write_in_transaction<'a>(
        &self,
        accepts: &[Accept],
        outcomes: &[Outcome],
        logs: impl ExactSizeIterator<Item = &'a LogRecord>,
    ) -> Result<(Vec<Result<i64, EnqueueError>>, HashMap<String, usize>), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let mut counts: HashMap<String, usize> = HashMap::new();
        let removed = |counts: &mut HashMap<String, usize>, function: String| {
            if let Some(n) = counts
                .get(&function)
                .or_else(|| self.queued.get(&function))
                .copied()
            {
                counts.insert(function, n.saturating_sub(1));
            }
        };
        for o in outcomes {
            match o {
                Outcome::Complete(seq) => {
                    let function: Option<String> = tx
                        .prepare_cached("DELETE FROM events WHERE seq = ?1 RETURNING function")?
                        .query_row(params![seq], |r| r.get(0))
                        .optional()?;
                    if let Some(f) = function {
                        removed(&mut counts, f);
                    }
                }
                Outcome::Retry {
                    seq,
                    attempts,
                    next_ms,
                } => {
                    tx.prepare_cached(
                        "UPDATE events SET attempts = ?2, next_ms = ?3 WHERE seq = ?1",
                    )?
                    .execute(params![seq, attempts, next_ms])?;
                }
                Outcome::Bury { ev, letter, now_ms } => {
                    tx.prepare_cached(
                        "INSERT INTO dead_letters (function, request_id, error_code, error_message, body, died_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![ev.function, letter.request_id, letter.error_code, letter.error_message, letter.body.to_string(), now_ms])?;
                    let gone = tx
                        .prepare_cached("DELETE FROM events WHERE seq = ?1")?
                        .execute(params![ev.seq])?;
                    if gone > 0 {
                        removed(&mut counts, ev.function.clone());
                    }
                }
            }
        }
        let mut results = Vec::with_capacity(accepts.len());
        if !accepts.is_empty() {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (function, request_id, body, enqueued_ms, next_ms) VALUES (?1, ?2, ?3, ?4, ?4)",
            )?;
            for a in accepts {
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
                results.push(Ok(tx.last_insert_rowid()));
            }
        }
        if logs.len() > 0 {
            let mut st = tx.prepare_cached(
                "INSERT INTO logs (function, request_id, start_ms, duration_ms, mem_usage, ret_code, ret_msg, log, invocation_type, retry_num)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for rec in logs {
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
        Ok((results, counts))
    }

    pub(crate) fn queue_len(&self, function: &str) -> Result<usize, StoreError> {
        count_queue(&self.conn, function)
    }

    /// Takes the oldest due event of `function` that is not leased, and leases it (in memory: no write), and
    /// says when the next one is due (so that a caller need not ask again to learn that none is). Both walk
    /// an index in order and step only over leased events (at most the events in flight) and, in queue
    /// order, events waiting for a retry: never a sort of the backlog.
    pub(crate) fn lease_next(&mut self, function: &str, now_ms: i64) -> Result<Next, StoreError> {
        // Its reads in one read transaction: SQLite's locks taken and released once, not once per statement.
        let tx = self.conn.unchecked_transaction()?;
        let (mut found, mut due_ms) = (None, None);
        {
            let mut st = tx.prepare_cached(DUE_IN_ORDER)?;
            let mut rows = st.query(params![function, now_ms])?;
            while let Some(r) = rows.next()? {
                let seq: i64 = r.get(0)?;
                if self.leased.contains(&seq) {
                    continue;
                }
                if found.is_some() {
                    due_ms = Some(r.get(1)?);
                    break;
                }
                found = Some(seq);
            }
        }
        let event = match found {
            None => None,
            Some(seq) => {
                let ev = tx
                    .prepare_cached(
                        "SELECT function, request_id, body, enqueued_ms, attempts FROM events WHERE seq = ?1",
                    )?
                    .query_row(params![seq], |r| {
                        Ok(QueuedEvent {
                            seq,
                            function: r.get(0)?,
                            request_id: r.get(1)?,
                            body: r.get::<_, Vec<u8>>(2)?.into(),
                            enqueued_ms: r.get(3)?,
                            attempts: r.get(4)?,
                        })
                    })?;
                self.leased.insert(seq);
                Some(ev)
            }
        };
        if due_ms.is_none() {
            let mut st = tx.prepare_cached(BY_DUE_TIME)?;
            let mut rows = st.query(params![function])?;
            while let Some(r) = rows.next()? {
                let seq: i64 = r.get(0)?;
                if !self.leased.contains(&seq) {
                    due_ms = Some(r.get(1)?);
                    break;
                }
            }
        }
        if let Err(e) = tx.commit() {
            if let Some(ev) = &event {
                self.leased.remove(&ev.seq);
            }
            return Err(e.into());
        }
        Ok(Next { event, due_ms })
    }

    /// Hands the events just accepted (`seqs`: each accept's place in its queue, `None` if refused) to the
    /// leases parked for them ([`crate::lease`]).
    pub(crate) fn hand_over(&mut self, accepts: &[Accept], seqs: &[Option<i64>]) {
        self.parked.hand_over(accepts, seqs, &mut self.leased);
    }

    /// [`Db::lease_next`], and when no other event is due, a lease parked for the function's next accepted
    /// event (see [`crate::lease`]).
    pub(crate) fn lease(&mut self, function: &str, now_ms: i64) -> Result<Lease, StoreError> {
        let next = self.lease_next(function, now_ms)?;
        let then = match next.due_ms {
            Some(due) if due <= now_ms => Then::Again,
            due_ms => Then::Wait(self.parked.park(function, due_ms)),
        };
        Ok(Lease {
            event: next.event,
            then,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (Db, std::path::PathBuf) {
        let dir = crate::tests::temp_dir("db");
        (Db::open(&dir).expect("open"), dir)
    }

    fn accept(id: &str, body: &'static [u8], now_ms: i64, limit: usize) -> Accept {
        Accept {
            function: "f".into(),
            request_id: id.into(),
            body: bytes::Bytes::from_static(body),
            now_ms,
            limit,
        }
    }

    /// One event into function `f`'s queue.
    fn enqueue(
        s: &mut Db,
        id: &str,
        body: &'static [u8],
        now_ms: i64,
        limit: usize,
    ) -> Result<(), EnqueueError> {
        s.write(&[accept(id, body, now_ms, limit)], &[], [].iter())
            .expect("written")
            .remove(0)
            .map(|_| ())
    }

    fn outcome(s: &mut Db, o: Outcome) {
        s.write(&[], &[o], [].iter()).expect("written");
    }

    fn leased(next: Next) -> QueuedEvent {
        next.event
            .unwrap_or_else(|| panic!("nothing leased (next due {:?})", next.due_ms))
    }

    fn none_due(due_ms: Option<i64>) -> Next {
        Next {
            event: None,
            due_ms,
        }
    }

    fn plan(s: &Db, sql: &str, args: impl rusqlite::Params) -> Vec<String> {
        s.conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("plan")
            .query_map(args, |r| r.get::<_, String>(3))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("plan rows")
    }

    /// An accept may find its queue full when the queue's length is not known yet or the batch would pass
    /// the limit; below it, it cannot.
    #[test]
    fn accepts_that_may_find_their_queue_full() {
        let (mut s, dir) = db();
        let one = [accept("r0", b"{}", 1, 10)];
        assert!(s.may_refuse(one.iter()), "the length is not known yet");
        enqueue(&mut s, "r1", b"{}", 1, 10).expect("enqueued");
        assert!(!s.may_refuse(one.iter()), "1 of 10");
        let ten: Vec<_> = (0..10)
            .map(|i| accept(&format!("b{i}"), b"{}", 1, 10))
            .collect();
        assert!(s.may_refuse(ten.iter()), "1 + 10 passes 10");
        assert!(!s.may_refuse(ten[..9].iter()), "1 + 9 does not");
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Taking the next event walks the queue's index in order and stops at the first due event that is not
    /// leased, and the next due time is found by walking the due-time index: no sort of the backlog, no row
    /// read to step over one, whatever its size (the plans are the proof; timings would be noise).
    #[test]
    fn the_next_event_is_one_index_step_not_a_sort() {
        let (s, dir) = db();
        let fifo = plan(&s, DUE_IN_ORDER, params!["f", 1]);
        assert!(
            fifo.iter()
                .any(|p| p.contains("COVERING INDEX events_fifo")),
            "{fifo:?}"
        );
        let due = plan(&s, BY_DUE_TIME, params!["f"]);
        assert!(
            due.iter().any(|p| p.contains("COVERING INDEX events_due")),
            "{due:?}"
        );
        for p in [fifo, due] {
            assert!(!p.iter().any(|p| p.contains("TEMP B-TREE")), "{p:?}");
        }
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// One request's log is a look-up by its id, not a scan of the function's records.
    #[test]
    fn a_request_s_log_is_found_by_its_index() {
        let (s, dir) = db();
        let mut q = LogQuery::all("f");
        q.request_id = Some("r1".into());
        let plan = plan(
            &s,
            &logs_sql(&q),
            params!["f", "r1", 0, i64::MAX, 0, None::<i64>, 10, 0],
        );
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
        let ids: Vec<String> = (0..limit).map(|i| format!("r{i}")).collect();
        let mut batch: Vec<Accept> = ids
            .iter()
            .map(|id| Accept {
                request_id: id.clone(),
                ..accept("", b"{}", 1, limit)
            })
            .collect();
        batch.push(accept("one-more", b"{}", 1, limit));
        let results = s.write(&batch, &[], [].iter()).expect("written");
        assert!(results[..limit].iter().all(Result::is_ok), "accepted");
        assert!(matches!(
            results[limit],
            Err(EnqueueError::Full { limit: 100_000, .. })
        ));
        let first = leased(s.lease_next("f", 1).expect("ok"));
        assert_eq!(first.request_id, "r0", "FIFO");
        // The delivered event's removal and the next accepts in one batch: it made room for one of them.
        let results = s
            .write(
                &[
                    accept("now-there-is-room", b"{}", 1, limit),
                    accept("and-none-for-this", b"{}", 1, limit),
                ],
                &[Outcome::Complete(first.seq)],
                [].iter(),
            )
            .expect("written");
        assert!(matches!(
            results[..],
            [Ok(_), Err(EnqueueError::Full { .. })]
        ));
        assert_eq!(s.queue_len("f").expect("len"), limit);
        assert_eq!(
            leased(s.lease_next("f", 1).expect("ok")).request_id,
            "r1",
            "FIFO"
        );
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
        let writes = s.conn.total_changes();
        let next = s.lease_next("f", 100).expect("ok");
        assert_eq!(next.due_ms, Some(11), "r2 is due too");
        let a = leased(next);
        assert_eq!((a.request_id.as_str(), &a.body[..]), ("r1", &b"1"[..]));
        let next = s.lease_next("f", 100).expect("ok");
        assert_eq!(next.due_ms, None, "no other event");
        let b = leased(next);
        assert_eq!(b.request_id, "r2");
        assert_eq!(s.conn.total_changes(), writes, "a lease writes nothing");
        assert_eq!(
            s.lease_next("f", 100).expect("ok"),
            none_due(None),
            "both leased"
        );
        outcome(
            &mut s,
            Outcome::Retry {
                seq: a.seq,
                attempts: 1,
                next_ms: 500,
            },
        );
        assert_eq!(
            s.lease_next("f", 499).expect("ok"),
            none_due(Some(500)),
            "not due yet, and when it is"
        );
        let again = leased(s.lease_next("f", 500).expect("ok"));
        assert_eq!((again.seq, again.attempts), (a.seq, 1));
        outcome(&mut s, Outcome::Complete(b.seq));
        assert_eq!(s.queue_len("f").expect("len"), 1);
        drop(s);
        // A restart forgets leases: the leased event runs again.
        let mut s = Db::open(&dir).expect("reopen");
        assert_eq!(
            leased(s.lease_next("f", 1000).expect("ok")).request_id,
            "r1"
        );
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// An outcome that cannot be written (another process holds the database's write lock) leaves its event
    /// leased and nothing of its batch written; written later, it releases the event.
    #[test]
    fn an_outcome_not_written_keeps_its_event_leased() {
        let (mut s, dir) = db();
        enqueue(&mut s, "r1", b"1", 10, 10).expect("1");
        let a = leased(s.lease_next("f", 100).expect("ok"));
        let other = Connection::open(dir.join(crate::DB_FILE)).expect("second connection");
        other.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let retry = Outcome::Retry {
            seq: a.seq,
            attempts: 1,
            next_ms: 100,
        };
        assert!(
            s.write(&[], std::slice::from_ref(&retry), [].iter())
                .is_err()
        );
        other.execute_batch("ROLLBACK").expect("unlock");
        assert_eq!(
            s.lease_next("f", 100).expect("ok"),
            none_due(None),
            "still leased"
        );
        outcome(&mut s, retry);
        assert_eq!(leased(s.lease_next("f", 100).expect("ok")).attempts, 1);
        drop((s, other));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A database of schema version 0 (leases stored in a column) keeps its events, in order, with their
    /// attempts and due times; its leased event is due again; new events come after.
    #[test]
    fn a_version_0_queue_is_migrated_with_its_events_in_order() {
        let dir = crate::tests::temp_dir("db");
        std::fs::create_dir_all(&dir).expect("dir");
        {
            let old = Connection::open(dir.join(crate::DB_FILE)).expect("old");
            old.execute_batch(
                "PRAGMA journal_mode=WAL;
                 CREATE TABLE events (
                     seq INTEGER PRIMARY KEY AUTOINCREMENT,
                     function TEXT NOT NULL,
                     request_id TEXT NOT NULL UNIQUE,
                     body BLOB NOT NULL,
                     enqueued_ms INTEGER NOT NULL,
                     attempts INTEGER NOT NULL DEFAULT 0,
                     next_ms INTEGER NOT NULL,
                     leased INTEGER NOT NULL DEFAULT 0
                 );
                 CREATE INDEX events_due ON events(function, leased, next_ms, seq);
                 CREATE INDEX events_fifo ON events(function, leased, seq);
                 INSERT INTO events (seq, function, request_id, body, enqueued_ms, attempts, next_ms, leased) VALUES
                     (7, 'f', 'a', x'31', 1, 0, 1, 1),
                     (9, 'f', 'b', x'32', 2, 2, 5000, 0),
                     (12, 'f', 'c', x'33', 3, 0, 3, 0);",
            )
            .expect("old schema");
        }
        let mut s = Db::open(&dir).expect("migrated");
        let version: i64 = s
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(version, schema::SCHEMA_VERSION);
        enqueue(&mut s, "d", b"4", 4, 10).expect("a new event");
        let order: Vec<(String, i64)> = std::iter::from_fn(|| match s.lease_next("f", 10_000) {
            Ok(Next { event, .. }) => event.map(|ev| (ev.request_id, ev.attempts)),
            Err(_) => None,
        })
        .collect();
        let order: Vec<(&str, i64)> = order.iter().map(|(r, n)| (r.as_str(), *n)).collect();
        assert_eq!(order, [("a", 0), ("b", 2), ("c", 0), ("d", 0)]);
        drop(s);
        // Opened again, nothing is migrated twice.
        let mut s = Db::open(&dir).expect("reopened");
        assert_eq!(s.queue_len("f").expect("len"), 4);
        assert_eq!(
            s.lease_next("f", 4).expect("ok"),
            Next {
                event: Some(QueuedEvent {
                    seq: 7,
                    function: "f".into(),
                    request_id: "a".into(),
                    body: bytes::Bytes::from_static(b"1"),
                    enqueued_ms: 1,
                    attempts: 0,
                }),
                due_ms: Some(3),
            },
            "the next due is c (b waits for 5000)"
        );
        assert_eq!(
            leased(s.lease_next("f", 4).expect("ok")).request_id,
            "c",
            "b is due at 5000"
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
        s.write(&[], &[], recs.iter()).expect("insert");
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
        s.write(&[], &[], [rec(20, 10_000)].iter()).expect("insert");
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
