//! `scf-store`: the local platform's durable state in one SQLite database: the async event queues, the
//! dead-letter store and the request logs.
//!
//! The database lives on its own thread; [`Store`] is a handle that sends it requests over a channel and
//! awaits the replies, so no SQLite call ever runs on a thread that serves requests.
//!
//! Writes are grouped: whatever waits on the thread at once is one transaction. An accepted event is
//! committed with `synchronous=FULL` (the write-ahead log fsynced) before [`Store::enqueue`] returns, so an
//! event the platform acknowledged survives power loss, not only the platform being killed; the accepts
//! waiting at once share one transaction and one fsync (group commit, up to [`MAX_ACCEPT_BATCH`]), and
//! that transaction holds only them: every page it writes is flushed while its callers wait. What nobody
//! waits on to be durable (the outcome of a delivered event, a request log) waits for the next batch: it is
//! written before the thread answers a read (so a read sees it), at [`MAX_WAITING_OUTCOMES`] outcomes, or at
//! the latest [`WRITE_BATCH`] after it came, with `synchronous=NORMAL` (it survives `kill -9`; a power loss
//! at worst runs an event again), and the next accepts' fsync makes it durable too. Outcomes join the
//! accepts' transaction only when one of its queues may be full, so that a delivered event makes room for
//! an accepted one. Request logs are
//! sent without a reply; a batch that cannot be written is kept and tried again; at most
//! [`MAX_PENDING_LOGS`] records and [`MAX_PENDING_LOG_BYTES`] of them wait, after which `record_log` waits for
//! room. An outcome's caller is answered once it is written (or could not be: it tries again).
//!
//! A lease is not durable state: the thread keeps the leased events in memory, so taking an event writes
//! nothing, and after a restart every event that was running is due again (at-least-once delivery). A
//! leased event stays leased until its outcome is written. A dispatcher's lease that finds nothing more due
//! is parked, and the commit that accepts the function's next event hands that event over ([`Store::lease`]):
//! the event reaches its dispatcher without another request to the thread or a read of the database.

mod db;
mod lease;
mod thread;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use db::{Accept, Db, Outcome};
pub use lease::{Lease, Parked, Then};

/// The database's file in the data directory.
const DB_FILE: &str = "scf-local.db";
/// Log records that may wait for the store's thread at once.
pub const MAX_PENDING_LOGS: usize = 10_000;
/// Bytes of log records (their log and result text) that may wait for the store's thread at once.
pub const MAX_PENDING_LOG_BYTES: usize = 64 * 1024 * 1024;
/// How long the first write nobody waits on to be durable (an outcome, a log) waits for others before they
/// are written, if no accept or read comes first (group commit: one transaction, one wake-up of the store's
/// thread, for every outcome and log of a busy moment).
pub const WRITE_BATCH: Duration = Duration::from_millis(50);
/// The most events accepted in one synced commit: the events whose callers wait at once share one fsync.
pub const MAX_ACCEPT_BATCH: usize = 1024;
/// The most outcomes that wait for a batch; the next is written at once with them. Their events stay leased
/// until then, and taking the next event steps over the leased ones: this bounds that walk (besides the
/// events running), and costs one transaction per this many outcomes at most.
pub const MAX_WAITING_OUTCOMES: usize = 64;
/// How soon a log batch that failed to be written is tried again.
const WRITE_RETRY: Duration = Duration::from_millis(500);

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
    pub body: Bytes,
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
    /// Memory of the instance at the end, bytes.
    pub mem_usage: i64,
    /// 0 on success, else the error's status code.
    pub ret_code: i64,
    /// The result or the error body.
    pub ret_msg: String,
    /// The log text.
    pub log: String,
    /// `RequestResponse`, `Event` or `Provisioned`.
    pub invocation_type: String,
    /// Which attempt this was (0 for the first).
    pub retry_num: i64,
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
    /// Stop once the records' `log` and `ret_msg` hold this many bytes (the first record is always
    /// returned): a bound on the answer, whatever `limit` says.
    pub max_bytes: Option<usize>,
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
            max_bytes: None,
        }
    }
}

/// Failures of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be made.
    #[error("creating {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The data directory or a database file could not be made private to the platform's user.
    #[error("making {} private (mode {mode:o}): {source}", path.display())]
    Private {
        /// The directory or file.
        path: PathBuf,
        /// The mode it should have.
        mode: u32,
        /// The failure.
        source: std::io::Error,
    },
    /// The data directory holds no database.
    #[error("no platform data in {} (is this the --data-dir of scf-local serve?)", .0.display())]
    NoData(PathBuf),
    /// The database file could not be opened.
    #[error("opening the database {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A batch of accepted events could not be committed (each of its callers gets this).
    #[error("database: {0}")]
    Batch(String),
    /// The store's thread could not be started.
    #[error("starting the store's thread: {0}")]
    Thread(std::io::Error),
    /// The store's thread has stopped (the platform is shutting down).
    #[error("the store has stopped")]
    Closed,
}

/// Why an event was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The function's queue holds its maximum number of events.
    #[error("the async queue of function {function} is full ({limit} events)")]
    Full {
        /// The function.
        function: String,
        /// The limit.
        limit: usize,
    },
    /// The store failed.
    #[error("the event store failed: {0}")]
    Store(#[from] StoreError),
}

type Job = Box<dyn FnOnce(&mut Db) + Send>;

enum Msg {
    /// Write what waits, then run this on the database (it sends its own reply).
    Call(Job),
    /// Run this on the database, leaving what waits to be written waiting (a lease reads the queue and the
    /// thread's memory, which knows every outcome not written yet).
    Lease(Job),
    /// Accept an event (see [`MAX_ACCEPT_BATCH`]).
    Accept(Accept, oneshot::Sender<Result<(), EnqueueError>>),
    /// A batch of outcomes and logs has begun: write it [`WRITE_BATCH`] from now, unless something writes
    /// it sooner.
    Batch,
    /// [`MAX_WAITING_OUTCOMES`] outcomes wait: write them now.
    WriteNow,
}

/// Log records waiting for the store's thread, each holding its room (a place and its bytes).
type Pending = Vec<(LogRecord, Room)>;

/// What the handles leave for the store's thread to write with its next batch: nothing here wakes the
/// thread, but the first of a batch (which tells it when to write) and the [`MAX_WAITING_OUTCOMES`]th
/// outcome.
#[derive(Debug, Default)]
struct Left {
    logs: Pending,
    /// Outcomes of leased events, and their callers (in the same order).
    outcomes: Vec<Outcome>,
    outcome_replies: Vec<oneshot::Sender<Result<(), StoreError>>>,
    /// The thread has been sent [`Msg::Batch`] and has not yet written at that batch's time: whatever is
    /// left now is written by then at the latest.
    told: bool,
}

/// A waiting record's share of [`MAX_PENDING_LOGS`] and [`MAX_PENDING_LOG_BYTES`].
#[derive(Debug)]
struct Room {
    _place: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

/// A handle to the store's thread. Cheap to clone; the thread ends when every handle is gone, after writing
/// the logs still queued.
#[derive(Debug, Clone)]
pub struct Store {
    tx: mpsc::Sender<Msg>,
    log_room: Arc<Semaphore>,
    log_bytes: Arc<Semaphore>,
    left: Arc<std::sync::Mutex<Left>>,
}

/// What a record counts against [`MAX_PENDING_LOG_BYTES`].
fn record_bytes(rec: &LogRecord) -> u32 {
    let n = (rec.log.len() + rec.ret_msg.len()).min(MAX_PENDING_LOG_BYTES);
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Store {
    /// Opens (creating if needed) the database in `dir` on a new thread; no event is leased (those of a
    /// previous run are due again). Blocks until it is open.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let dir = dir.to_path_buf();
        Self::start(move || Db::open(&dir))
    }

    /// Opens the database of `dir`, for reading what a running platform writes (logs, dead letters).
    pub fn open_existing(dir: &Path) -> Result<Store, StoreError> {
        let dir = dir.to_path_buf();
        Self::start(move || Db::open_existing(&dir))
    }

    fn start(
        open: impl FnOnce() -> Result<Db, StoreError> + Send + 'static,
    ) -> Result<Store, StoreError> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let (opened_tx, opened_rx) = mpsc::channel();
        let left: Arc<std::sync::Mutex<Left>> = Arc::default();
        let batch = left.clone();
        std::thread::Builder::new()
            .name("scf-store".into())
            .spawn(move || match open() {
                Ok(db) => {
                    let _ = opened_tx.send(Ok(()));
                    thread::run(db, &rx, &batch);
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                }
            })
            .map_err(StoreError::Thread)?;
        opened_rx.recv().map_err(|_| StoreError::Closed)??;
        Ok(Store {
            tx,
            log_room: Arc::new(Semaphore::new(MAX_PENDING_LOGS)),
            log_bytes: Arc::new(Semaphore::new(MAX_PENDING_LOG_BYTES)),
            left,
        })
    }

    /// Runs `f` on the store's thread, after what waits to be written, and returns what it returned.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        self.run_on(Msg::Call, f).await
    }

    async fn run_on<T: Send + 'static>(
        &self,
        kind: fn(Job) -> Msg,
        f: impl FnOnce(&mut Db) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(kind(Box::new(move |db| {
                let _ = reply.send(f(db));
            })))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)
    }

    /// Leaves `outcome` to be written with the next batch; returns once it is written.
    async fn outcome(&self, outcome: Outcome) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let msg = {
            let mut left = self.left();
            left.outcomes.push(outcome);
            left.outcome_replies.push(reply);
            if left.outcomes.len() >= MAX_WAITING_OUTCOMES {
                Some(Msg::WriteNow)
            } else {
                (!std::mem::replace(&mut left.told, true)).then_some(Msg::Batch)
            }
        };
        if let Some(msg) = msg {
            self.tx.send(msg).map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn left(&self) -> std::sync::MutexGuard<'_, Left> {
        self.left
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Accepts an event into `function`'s queue, unless the queue holds `limit` events already. When this
    /// returns `Ok` the event is on disk, fsynced (it survives power loss, not only the platform's death);
    /// the events of callers waiting at once are committed together, with one fsync (group commit).
    pub async fn enqueue(
        &self,
        function: &str,
        request_id: &str,
        body: Bytes,
        now_ms: i64,
        limit: usize,
    ) -> Result<(), EnqueueError> {
        let accept = Accept {
            function: function.to_owned(),
            request_id: request_id.to_owned(),
            body,
            now_ms,
            limit,
        };
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Accept(accept, reply))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Events waiting in `function`'s queue (leased ones included).
    pub async fn queue_len(&self, function: &str) -> Result<usize, StoreError> {
        let function = function.to_owned();
        self.call(move |db| db.queue_len(&function)).await?
    }

    /// Takes the oldest due event of `function` and leases it, so no one else takes it (until its outcome
    /// is written, or the platform restarts), and says what to do next: lease again at once ([`Then::Again`]:
    /// another is due), or wait. A lease is kept in the store thread's memory: it writes nothing. When no
    /// other event of `function` is due, the answer holds a lease parked on the store's thread
    /// ([`Then::Wait`]). Once the dispatcher waits on it
    /// ([`Parked::wait_from_now`]), the commit that accepts the function's next event hands that event to
    /// it, leased ([`Parked::handed_over`]); an event accepted before stays in its queue. Queue order is
    /// kept: an event waiting for its retry is due at [`Parked::due_ms`], and from then on no accepted
    /// event is handed over ahead of it.
    pub async fn lease(&self, function: &str, now_ms: i64) -> Result<Lease, StoreError> {
        let function = function.to_owned();
        self.run_on(Msg::Lease, move |db| db.lease(&function, now_ms))
            .await?
    }

    /// [`Store::lease`] without parking a lease (for tests that look at the queue without changing what a
    /// dispatcher waits on).
    #[cfg(test)]
    pub(crate) async fn lease_next(
        &self,
        function: &str,
        now_ms: i64,
    ) -> Result<db::Next, StoreError> {
        let function = function.to_owned();
        self.run_on(Msg::Lease, move |db| db.lease_next(&function, now_ms))
            .await?
    }

    /// The event was delivered: remove it. Written with the next batch (see [`WRITE_BATCH`]); returns once
    /// it is written, and until then the event stays leased.
    pub async fn complete(&self, seq: i64) -> Result<(), StoreError> {
        self.outcome(Outcome::Complete(seq)).await
    }

    /// The event failed: release it to run again at `next_ms`, with `attempts` counted so far. Written with
    /// the next batch, like [`Store::complete`].
    pub async fn retry_later(
        &self,
        seq: i64,
        attempts: i64,
        next_ms: i64,
    ) -> Result<(), StoreError> {
        self.outcome(Outcome::Retry {
            seq,
            attempts,
            next_ms,
        })
        .await
    }

    /// Moves the event to the dead-letter store (in one transaction). Written with the next batch, like
    /// [`Store::complete`].
    pub async fn bury(
        &self,
        ev: &QueuedEvent,
        letter: &DeadLetter,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.outcome(Outcome::Bury {
            ev: Box::new(ev.clone()),
            letter: Box::new(letter.clone()),
            now_ms,
        })
        .await
    }

    /// The dead letters of `function`, oldest first.
    pub async fn dead_letters(&self, function: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let function = function.to_owned();
        self.call(move |db| db.dead_letters(&function)).await?
    }

    /// Log records of `q.function` (optionally of one request, and within `[from_ms, to_ms]`), ordered by
    /// start, after `q.after_seq`; with their sequence numbers (for `--follow`). Every log recorded before
    /// this call is written first.
    pub async fn logs(&self, q: LogQuery) -> Result<Vec<(i64, LogRecord)>, StoreError> {
        self.call(move |db| db.logs(&q)).await?
    }

    /// Queues one request's log; the store's thread writes it with the next batch, off the invocation's path.
    /// Waits only when [`MAX_PENDING_LOGS`] records, or [`MAX_PENDING_LOG_BYTES`] of them, are waiting already.
    pub async fn record_log(&self, rec: LogRecord) {
        let (Ok(place), Ok(bytes)) = (
            self.log_room.clone().acquire_owned().await,
            self.log_bytes
                .clone()
                .acquire_many_owned(record_bytes(&rec))
                .await,
        ) else {
            return;
        };
        self.queue_log(
            rec,
            Room {
                _place: place,
                _bytes: bytes,
            },
        );
    }

    /// Queues one request's log now, unless [`MAX_PENDING_LOGS`] records or [`MAX_PENDING_LOG_BYTES`] are
    /// waiting already (then it is handed back).
    pub fn try_record_log(&self, rec: LogRecord) -> Result<(), Box<LogRecord>> {
        let place = self.log_room.clone().try_acquire_owned();
        let bytes = self
            .log_bytes
            .clone()
            .try_acquire_many_owned(record_bytes(&rec));
        match (place, bytes) {
            (Ok(place), Ok(bytes)) => {
                self.queue_log(
                    rec,
                    Room {
                        _place: place,
                        _bytes: bytes,
                    },
                );
                Ok(())
            }
            _ => Err(Box::new(rec)),
        }
    }

    fn queue_log(&self, rec: LogRecord, room: Room) {
        let tell = {
            let mut left = self.left();
            left.logs.push((rec, room));
            !std::mem::replace(&mut left.told, true)
        };
        if tell {
            let _ = self.tx.send(Msg::Batch);
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

    /// A directory of this test process's own for a test's store.
    /// A directory of its own for one test: the tests of this process run at once, and two of them can read
    /// the same clock (two stores in one directory lock each other out), so a counter tells them apart.
    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::env::temp_dir().join(format!(
            "scf-store-{name}-{}-{n}-{}",
            std::process::id(),
            now_ms()
        ))
    }

    /// Callers accepting at once share commits; each gets its own answer, the queue's limit holds across a
    /// batch, and what was acknowledged is there after a reopen.
    #[tokio::test]
    async fn concurrent_accepts_keep_the_limit_and_every_acknowledged_event() {
        let dir = temp_dir("accepts");
        let s = Store::open(&dir).expect("open");
        let calls: Vec<_> = (0..200)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.enqueue("f", &format!("r{i}"), Bytes::from_static(b"{}"), 1, 150)
                        .await
                })
            })
            .collect();
        let mut accepted = 0;
        for c in calls {
            match c.await.expect("joined") {
                Ok(()) => accepted += 1,
                Err(EnqueueError::Full { limit: 150, .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(accepted, 150);
        drop(s);
        let s = Store::open(&dir).expect("reopen");
        assert_eq!(s.queue_len("f").await.expect("len"), 150);
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_data_directory_is_0700_and_the_database_files_0600_also_when_they_existed() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| {
            std::fs::metadata(p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .permissions()
                .mode()
                & 0o777
        };
        let dir = temp_dir("modes");
        // An older run's files, made with the usual umask.
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let db = dir.join(DB_FILE);
        std::fs::write(&db, b"").expect("db");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let s = Store::open(&dir).expect("open");
        s.enqueue("f", "r1", Bytes::from_static(b"{}"), 1, 10)
            .await
            .expect("enqueued");
        assert_eq!(mode(&dir), 0o700);
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", db.display()));
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
        drop(s);
        // A fresh directory too.
        let fresh = temp_dir("modes-fresh");
        let s = Store::open(&fresh).expect("open");
        s.enqueue("f", "r1", Bytes::from_static(b"{}"), 1, 10)
            .await
            .expect("enqueued");
        assert_eq!(mode(&fresh), 0o700);
        assert_eq!(mode(&fresh.join(DB_FILE)), 0o600);
        assert_eq!(mode(&fresh.join(format!("{DB_FILE}-wal"))), 0o600);
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&fresh);
    }

    /// Outcomes are answered once written: many at once (more than [`MAX_WAITING_OUTCOMES`]) and a last one
    /// alone, with no other request to carry it. Another connection (as `scf-local logs` or a second process
    /// reads) sees them committed, and a lease answered meanwhile never hands out an event twice.
    #[tokio::test]
    async fn outcomes_are_written_in_batches_and_answered_once_written() {
        let dir = temp_dir("outcomes");
        let s = Store::open(&dir).expect("open");
        let n = MAX_WAITING_OUTCOMES * 2 + 1;
        for i in 0..n {
            s.enqueue("f", &format!("r{i}"), Bytes::from_static(b"{}"), 1, n)
                .await
                .expect("enqueued");
        }
        let mut seqs = Vec::new();
        while let Some(ev) = s.lease_next("f", 1).await.expect("lease").event {
            seqs.push(ev.seq);
        }
        assert_eq!(seqs.len(), n, "each event leased once");
        let last = seqs.pop().expect("one");
        let done: Vec<_> = seqs
            .into_iter()
            .map(|seq| {
                let s = s.clone();
                tokio::spawn(async move { s.complete(seq).await })
            })
            .collect();
        for d in done {
            d.await.expect("joined").expect("written");
        }
        s.complete(last).await.expect("written alone");
        let reader = Store::open_existing(&dir).expect("reader");
        assert_eq!(reader.queue_len("f").await.expect("len"), 0);
        drop((s, reader));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// An accept's commit leaves the outcomes waiting for their batch, except when its queue may be full:
    /// then a delivered event whose outcome is not written yet still makes room, as it would had its batch
    /// come first.
    #[tokio::test]
    async fn a_delivered_event_makes_room_in_a_full_queue_before_its_batch_is_written() {
        let dir = temp_dir("room");
        let s = Store::open(&dir).expect("open");
        for i in 0..2 {
            s.enqueue("f", &format!("r{i}"), Bytes::from_static(b"{}"), 1, 2)
                .await
                .expect("enqueued");
        }
        let ev = s
            .lease_next("f", 1)
            .await
            .expect("lease")
            .event
            .expect("r0 is due");
        let done = tokio::spawn({
            let s = s.clone();
            async move { s.complete(ev.seq).await }
        });
        // The outcome is left for its batch (nothing has written it: the batch is 50 ms away).
        while s.left().outcomes.is_empty() {
            tokio::task::yield_now().await;
        }
        s.enqueue("f", "r2", Bytes::from_static(b"{}"), 1, 2)
            .await
            .expect("the delivered event made room");
        done.await
            .expect("joined")
            .expect("written with the accept");
        assert!(matches!(
            s.enqueue("f", "r3", Bytes::from_static(b"{}"), 1, 2).await,
            Err(EnqueueError::Full { limit: 2, .. })
        ));
        let reader = Store::open_existing(&dir).expect("reader");
        assert_eq!(reader.queue_len("f").await.expect("len"), 2);
        drop((s, reader));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn requests_and_logs_go_through_the_thread_in_order() {
        let dir = temp_dir("thread");
        let s = Store::open(&dir).expect("open");
        s.enqueue("f", "r1", Bytes::from_static(b"{}"), 1, 10)
            .await
            .expect("enqueued");
        let ev = s
            .lease_next("f", 1)
            .await
            .expect("ok")
            .event
            .expect("r1 is due");
        assert_eq!((ev.request_id.as_str(), &ev.body[..]), ("r1", &b"{}"[..]));
        for i in 0..3 {
            s.record_log(LogRecord {
                function: "f".into(),
                request_id: format!("q{i}"),
                start_ms: i,
                duration_ms: 1.0,
                mem_usage: 0,
                ret_code: 0,
                ret_msg: String::new(),
                log: format!("line {i}\n"),
                invocation_type: "Event".into(),
                retry_num: 0,
            })
            .await;
        }
        // A read right after the records sees them: the thread writes them before it answers.
        let logs = s.logs(LogQuery::all("f")).await.expect("logs");
        assert_eq!(logs.len(), 3);
        assert_eq!(logs[2].1.log, "line 2\n");
        s.complete(ev.seq).await.expect("complete");
        assert_eq!(s.queue_len("f").await.expect("len"), 0);
        drop(s);
        let missing = Store::open_existing(&dir.join("nowhere"));
        assert!(matches!(missing, Err(StoreError::NoData(_))));
        let _ = std::fs::remove_dir_all(dir);
    }
}
