//! The store's thread: the database's one user. It runs requests in order and writes in batches: the accepts
//! waiting at once together, in a commit of their own (synced); what the handles left (outcomes and logs)
//! for a read, at [`MAX_WAITING_OUTCOMES`](crate::MAX_WAITING_OUTCOMES) outcomes, or
//! [`WRITE_BATCH`](crate::WRITE_BATCH) after the first of it came, whichever comes first.

use std::io::Write as _;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::db::{Accept, Db, Outcome};
use crate::{
    EnqueueError, Left, LogRecord, MAX_ACCEPT_BATCH, Msg, Pending, Room, StoreError, WRITE_BATCH,
    WRITE_RETRY,
};

/// The store's thread: runs requests in order. Accepts waiting at once are written together, on their own:
/// their commit is fsynced while their callers wait, and every page it writes is on that wait, so outcomes
/// and logs join it only when one of its queues may be full (a delivered event makes room). Outcomes and
/// logs wait for a read, for [`MAX_WAITING_OUTCOMES`](crate::MAX_WAITING_OUTCOMES) outcomes, or for
/// [`WRITE_BATCH`] after the first of them came, whichever comes first.
pub(crate) fn run(mut db: Db, rx: &mpsc::Receiver<Msg>, left: &std::sync::Mutex<Left>) {
    let mut waiting = Waiting::default();
    // When the batch that has begun is due.
    let mut due: Option<std::time::Instant> = None;
    // A message taken from the channel while gathering accepts, handled next.
    let mut carried: Option<Msg> = None;
    let begun = |due: &mut Option<std::time::Instant>| {
        due.get_or_insert_with(|| std::time::Instant::now() + WRITE_BATCH);
    };
    loop {
        let now = std::time::Instant::now();
        let msg = match (carried.take(), due, waiting.failing) {
            // The batch's time has come, however busy the channel is.
            (m, Some(at), false) if at <= now => {
                carried = m;
                Err(mpsc::RecvTimeoutError::Timeout)
            }
            (Some(m), _, _) => Ok(m),
            (None, None, false) => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            (None, Some(at), false) => rx.recv_timeout(at.saturating_duration_since(now)),
            (None, _, true) => rx.recv_timeout(WRITE_RETRY),
        };
        match msg {
            Ok(Msg::Batch) => begun(&mut due),
            Ok(Msg::WriteNow) => waiting.write(&mut db, left, false),
            Ok(Msg::Accept(first, reply)) => {
                // Group commit: every accept already waiting joins this one's transaction and fsync.
                let mut accepts = vec![(first, reply)];
                let mut write_now = false;
                while accepts.len() < MAX_ACCEPT_BATCH {
                    match rx.try_recv() {
                        Ok(Msg::Accept(a, r)) => accepts.push((a, r)),
                        Ok(Msg::Batch) => begun(&mut due),
                        Ok(Msg::WriteNow) => write_now = true,
                        Ok(other) => {
                            carried = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                waiting.accept(&mut db, left, accepts);
                if write_now {
                    waiting.write(&mut db, left, false);
                }
            }
            Ok(Msg::Lease(job)) => job(&mut db),
            Ok(Msg::Call(job)) => {
                waiting.write(&mut db, left, false);
                job(&mut db);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                waiting.write(&mut db, left, true);
                due = None;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                waiting.write(&mut db, left, true);
                return;
            }
        }
    }
}

/// What the store's thread has taken to write and not written yet.
#[derive(Default)]
struct Waiting {
    /// Log records (kept until written).
    logs: Pending,
    /// The last write of logs failed: they are tried again on their own (at the batch's time, or before a
    /// read), and outcomes are written without them meanwhile (what cannot be written must not hold them
    /// up).
    failing: bool,
}

/// Accepts to write, with their callers.
type Accepts = Vec<(Accept, oneshot::Sender<Result<(), EnqueueError>>)>;
/// Outcomes to write, with their callers.
type Outcomes = (Vec<Outcome>, Vec<oneshot::Sender<Result<(), StoreError>>>);

impl Waiting {
    /// Writes `accepts` in one synced transaction and answers their callers (on failure with the error: the
    /// events were not taken). The outcomes left join it when a queue of the batch may be full, so that a
    /// delivered event makes room for an accepted one as it would have had it been written already; else
    /// they wait for their batch, off the accepts' fsync.
    fn accept(&mut self, db: &mut Db, left: &std::sync::Mutex<Left>, accepts: Accepts) {
        let outcomes = if db.may_refuse(accepts.iter().map(|(a, _)| a)) {
            let mut l = left
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (
                std::mem::take(&mut l.outcomes),
                std::mem::take(&mut l.outcome_replies),
            )
        } else {
            Outcomes::default()
        };
        self.commit(db, accepts, outcomes, false);
    }

    /// Writes what is left (taken first; `at_batch_time`: this is the batch's time, so the next thing left
    /// begins a new batch) in one transaction, and answers every caller of it. On failure the logs are kept
    /// (and that is said once); the callers of outcomes get the error (the dispatcher tries them again).
    fn write(&mut self, db: &mut Db, left: &std::sync::Mutex<Left>, at_batch_time: bool) {
        let outcomes = {
            let mut l = left
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.logs.append(&mut l.logs);
            if at_batch_time {
                l.told = false;
            }
            (
                std::mem::take(&mut l.outcomes),
                std::mem::take(&mut l.outcome_replies),
            )
        };
        if !self.failing {
            self.commit(db, Vec::new(), outcomes, true);
            return;
        }
        self.commit(db, Vec::new(), outcomes, false);
        self.commit(db, Vec::new(), Outcomes::default(), true);
    }

    /// One transaction: `accepts`, `outcomes` and (`with_logs`) the logs; answers their callers.
    fn commit(&mut self, db: &mut Db, accepts: Accepts, outcomes: Outcomes, with_logs: bool) {
        let (accepts, replies): (Vec<Accept>, Vec<_>) = accepts.into_iter().unzip();
        let (outcomes, outcome_replies) = outcomes;
        let logs: &[(LogRecord, Room)] = if with_logs { &self.logs } else { &[] };
        if accepts.is_empty() && outcomes.is_empty() && logs.is_empty() {
            if with_logs {
                self.failing = false;
            }
            return;
        }
        let logs_n = logs.len();
        match db.write(&accepts, &outcomes, logs.iter().map(|(r, _)| r)) {
            Ok(results) => {
                let mut seqs = Vec::with_capacity(results.len());
                for (reply, result) in replies.into_iter().zip(results) {
                    seqs.push(result.as_ref().ok().copied());
                    let _ = reply.send(result.map(|_| ()));
                }
                // After the answers: a caller's ack goes out before the delivery this begins.
                db.hand_over(&accepts, &seqs);
                for reply in outcome_replies {
                    let _ = reply.send(Ok(()));
                }
                if with_logs {
                    if self.failing {
                        let _ = writeln!(
                            std::io::stderr(),
                            "scf-local: the store writes request logs again"
                        );
                    }
                    self.failing = false;
                    self.logs.clear();
                }
            }
            Err(e) => {
                let why = format!("accepting {} events: {e}", accepts.len());
                for reply in replies {
                    let _ = reply.send(Err(EnqueueError::Store(StoreError::Batch(why.clone()))));
                }
                for reply in outcome_replies {
                    let _ = reply.send(Err(StoreError::Batch(e.to_string())));
                }
                if logs_n > 0 {
                    if !self.failing {
                        let _ = writeln!(
                            std::io::stderr(),
                            "scf-local: the store could not write {logs_n} request logs ({e}); they are kept and tried again"
                        );
                    }
                    self.failing = true;
                }
            }
        }
    }
}
