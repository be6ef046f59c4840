//! The fsync that makes accepted events durable, on a thread of its own.
//!
//! The store's thread commits accepts with `synchronous=NORMAL` (SQLite writes the transaction's pages to
//! the write-ahead log and does not fsync it) and hands the callers to this thread, which fsyncs the log
//! and only then answers them. A caller is answered after an fsync that began after its commit ended, so
//! its event is on disk when it is acknowledged; the callers waiting at once share one fsync (group
//! commit). Meanwhile the store's thread goes on: the delivery of the events already accepted (a lease, an
//! outcome) does not wait for the disk. Accepts that come during an fsync wait for it ([`Syncer::wait_idle`])
//! and are then committed together, so a busy moment makes one transaction per fsync, not one per caller.
//!
//! The log is the database's `-wal` file (SQLite checkpoints it into the database file, fsynced, before
//! it starts it over). The file is opened here once, and again if the path names another file (a log
//! removed and made anew); where there is none, the database file itself is fsynced.

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, mpsc};

use tokio::sync::oneshot;

use crate::{EnqueueError, StoreError};

/// A caller waiting for its accepted event to be durable.
pub(crate) type Waiter = oneshot::Sender<Result<(), EnqueueError>>;

/// The handle of the fsync thread. The thread ends, after answering everyone handed to it, when the handle
/// is dropped.
#[derive(Debug)]
pub(crate) struct Syncer {
    tx: mpsc::Sender<Vec<Waiter>>,
    /// Waiters handed over and not answered yet, and a signal when that falls to zero.
    pending: Arc<(Mutex<usize>, Condvar)>,
}

impl Syncer {
    /// Starts the thread for the database file `db` (its log is `db` + `-wal`).
    pub(crate) fn start(db: &Path) -> Result<Syncer, StoreError> {
        let (tx, rx) = mpsc::channel::<Vec<Waiter>>();
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let files = Files {
            wal: PathBuf::from(wal),
            db: db.to_path_buf(),
            open: None,
        };
        let pending: Arc<(Mutex<usize>, Condvar)> = Arc::default();
        let answered = pending.clone();
        std::thread::Builder::new()
            .name("scf-fsync".into())
            .spawn(move || run(files, &rx, &answered))
            .map_err(StoreError::Thread)?;
        Ok(Syncer { tx, pending })
    }

    /// Waits until every waiter handed over is answered (its fsync done). The store's thread calls it before
    /// it commits accepts: the accepts that come during an fsync then share the next commit, as they share
    /// the next fsync, instead of each making a transaction of its own.
    pub(crate) fn wait_idle(&self) {
        let (count, idle) = &*self.pending;
        let mut n = count
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *n > 0 {
            n = idle
                .wait(n)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Answers `waiters` once what has been committed so far is on disk.
    pub(crate) fn after_sync(&self, waiters: Vec<Waiter>) {
        if waiters.is_empty() {
            return;
        }
        let n = waiters.len();
        *self
            .pending
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += n;
        if let Err(mpsc::SendError(waiters)) = self.tx.send(waiters) {
            answered(&self.pending, n);
            for w in waiters {
                let _ = w.send(Err(EnqueueError::Store(StoreError::Closed)));
            }
        }
    }
}

/// The files the thread fsyncs, and the log as it has it open (with the device and inode it had then).
struct Files {
    wal: PathBuf,
    db: PathBuf,
    open: Option<(File, (u64, u64))>,
}

impl Files {
    /// Fsyncs the log (opening it again if its path names another file now), or the database file where
    /// there is no log.
    fn sync(&mut self) -> std::io::Result<()> {
        let now = match std::fs::metadata(&self.wal) {
            Ok(m) => (m.dev(), m.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.open = None;
                return File::open(&self.db)?.sync_data();
            }
            Err(e) => return Err(e),
        };
        match &self.open {
            Some((f, id)) if *id == now => f.sync_data(),
            _ => {
                let f = File::open(&self.wal)?;
                let id = {
                    let m = f.metadata()?;
                    (m.dev(), m.ino())
                };
                f.sync_data()?;
                self.open = Some((f, id));
                Ok(())
            }
        }
    }
}

/// `n` waiters were answered.
fn answered(pending: &(Mutex<usize>, Condvar), n: usize) {
    let (count, idle) = pending;
    let mut c = count
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *c = c.saturating_sub(n);
    if *c == 0 {
        idle.notify_all();
    }
}

fn run(mut files: Files, rx: &mpsc::Receiver<Vec<Waiter>>, pending: &(Mutex<usize>, Condvar)) {
    while let Ok(mut waiting) = rx.recv() {
        // Everyone handed over by now shares this fsync.
        while let Ok(more) = rx.try_recv() {
            waiting.extend(more);
        }
        let synced = files.sync().map_err(|e| e.to_string());
        let n = waiting.len();
        for w in waiting {
            let _ = w.send(synced.clone().map_err(|e| {
                EnqueueError::Store(StoreError::Batch(format!(
                    "the event was committed but its fsync failed ({e}): it may run, but is not known to be on disk"
                )))
            }));
        }
        answered(pending, n);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("scf-sync-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    async fn synced(s: &Syncer) -> Result<(), EnqueueError> {
        let (tx, rx) = oneshot::channel();
        s.after_sync(vec![tx]);
        rx.await.unwrap()
    }

    #[tokio::test]
    async fn callers_are_answered_after_the_log_or_the_database_is_synced() {
        let dir = temp_dir("answers");
        let db = dir.join("x.db");
        std::fs::write(&db, b"db").unwrap();
        let s = Syncer::start(&db).unwrap();
        // No log: the database file is synced.
        synced(&s).await.unwrap();
        // A log, then another file at its path: each is opened and synced.
        let wal = dir.join("x.db-wal");
        std::fs::write(&wal, b"one").unwrap();
        synced(&s).await.unwrap();
        std::fs::remove_file(&wal).unwrap();
        std::fs::write(&wal, b"two").unwrap();
        synced(&s).await.unwrap();
        // Many callers at once: every one is answered, and by the time `wait_idle` returns.
        let rxs: Vec<_> = (0..100)
            .map(|_| {
                let (tx, rx) = oneshot::channel();
                s.after_sync(vec![tx]);
                rx
            })
            .collect();
        let s = tokio::task::spawn_blocking(move || {
            s.wait_idle();
            s
        })
        .await
        .unwrap();
        for mut rx in rxs {
            rx.try_recv().unwrap().unwrap();
        }
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_failed_fsync_is_an_error_for_its_callers() {
        let dir = temp_dir("fails");
        // Neither a log nor a database file: nothing can be synced.
        let s = Syncer::start(&dir.join("missing.db")).unwrap();
        let e = synced(&s).await.unwrap_err();
        assert!(e.to_string().contains("fsync failed"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
