//! Opening the database: its files private, its settings and tables, the queue's table migrated to the
//! current version.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use rusqlite::Connection;

use super::Db;
use crate::StoreError;

/// How long a statement waits for another process's lock on the database before it fails. The store's
/// thread is the database's one writer; another writer is a short external job or a mistake, and the
/// writes the platform must not lose are tried again (logs by this thread, queue changes by the
/// dispatcher; an event that cannot be accepted is refused, so the caller knows).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// The settings and every table but the queue's (whose table [`migrate`] makes).
const SCHEMA: &str = "PRAGMA journal_mode=WAL;
     PRAGMA synchronous=NORMAL;
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

/// The queue's table (schema version 1). A lease is not stored (the store's thread keeps it in memory), so
/// taking an event writes nothing. `seq` is the rowid: a new event gets one more than the largest there,
/// so queue order is rowid order without `AUTOINCREMENT`'s extra page per commit. Request ids are the
/// platform's own UUIDs, so no index enforces their uniqueness. `events_fifo` holds `next_ms` so that
/// stepping over events not yet due reads no row; `events_due` finds the next due time.
const EVENTS: &str = "CREATE TABLE events (
         seq INTEGER PRIMARY KEY,
         function TEXT NOT NULL,
         request_id TEXT NOT NULL,
         body BLOB NOT NULL,
         enqueued_ms INTEGER NOT NULL,
         attempts INTEGER NOT NULL DEFAULT 0,
         next_ms INTEGER NOT NULL
     );
     CREATE INDEX events_fifo ON events(function, seq, next_ms);
     CREATE INDEX events_due ON events(function, next_ms);";

/// The version [`migrate`] brings a database to (`PRAGMA user_version`).
pub(super) const SCHEMA_VERSION: i64 = 1;

/// Brings the queue's table to [`SCHEMA_VERSION`] in one transaction: makes it in a new database; in one
/// of version 0 (a `leased` column, `AUTOINCREMENT`, a unique request id) copies its events, in order and
/// with their attempts and due times, into the new table. Leases of version 0 are dropped with the column:
/// an event that was running when that platform stopped runs again.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction()?;
    let old: i64 = tx.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'",
        [],
        |r| r.get(0),
    )?;
    if old > 0 {
        tx.execute_batch(
            "ALTER TABLE events RENAME TO events_v0;
             DROP INDEX IF EXISTS events_due;
             DROP INDEX IF EXISTS events_fifo;",
        )?;
    }
    tx.execute_batch(EVENTS)?;
    if old > 0 {
        tx.execute_batch(
            "INSERT INTO events (seq, function, request_id, body, enqueued_ms, attempts, next_ms)
                 SELECT seq, function, request_id, body, enqueued_ms, attempts, next_ms FROM events_v0 ORDER BY seq;
             DROP TABLE events_v0;",
        )?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

impl Db {
    /// Opens (creating or migrating if needed) `dir/scf-local.db`. No event is leased.
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
        let mut conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch(SCHEMA)?;
        private_files(&path)?;
        migrate(&mut conn)?;
        Ok(Db::with(conn))
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
        Ok(Db::with(conn))
    }

    fn with(conn: Connection) -> Db {
        Db {
            conn,
            queued: HashMap::new(),
            leased: HashSet::new(),
            synced: false,
            parked: Default::default(),
        }
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

/// The database file and its WAL and SHM files, where they exist, 0600. A file that is not there (or no longer:
/// SQLite removes the WAL and SHM files when the last connection to the database closes, which another
/// process, or this one's previous store, may be doing right now) has nothing to make private.
fn private_files(db: &Path) -> Result<(), StoreError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        match private(&std::path::PathBuf::from(name), 0o600) {
            Err(StoreError::Private { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}
