//! An instance's private directory: mode 0700, with `tmp/` for its temporary files (what `/tmp` is on the
//! cloud). It is made and removed off the thread that serves requests, and its size is checked after
//! invocations in the background ([`TmpCheck`]).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The most entries [`InstanceDir::tmp_bytes`] looks at.
pub(crate) const TMP_WALK_ENTRIES: usize = 100_000;

/// A private directory that is removed with its instance (off the event loop when dropped in one).
#[derive(Debug)]
pub(crate) struct InstanceDir(Option<PathBuf>);

impl InstanceDir {
    /// Makes `parent/scf-instance-<id>` (mode 0700) and its `tmp/`. Blocking: call it off the event loop.
    pub(crate) fn create(parent: &Path, id: &str) -> std::io::Result<InstanceDir> {
        let dir = parent.join(format!("scf-instance-{id}"));
        std::fs::create_dir_all(dir.join("tmp"))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(InstanceDir(Some(dir)))
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// Bytes the files under `dir/tmp/` (an instance directory's) take on disk (allocated blocks),
    /// counted up to `cap` + 1 and over at most [`TMP_WALK_ENTRIES`] entries (more entries than that count
    /// as over the cap). Blocking.
    pub(crate) fn tmp_bytes_at(dir: &Path, cap: u64) -> u64 {
        use std::os::unix::fs::MetadataExt as _;
        let mut total = 0u64;
        let mut entries = 0usize;
        let mut todo = vec![dir.join("tmp")];
        while let Some(dir) = todo.pop() {
            let Ok(list) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in list.flatten() {
                entries += 1;
                if entries > TMP_WALK_ENTRIES || total > cap {
                    return cap + 1;
                }
                let Ok(meta) = e.metadata() else { continue };
                if meta.is_dir() {
                    todo.push(e.path());
                } else {
                    total = total.saturating_add(meta.blocks().saturating_mul(512));
                }
            }
        }
        total
    }

    /// Removes the directory now (blocking).
    pub(crate) fn remove_now(mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for InstanceDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            crate::off_loop(move || {
                let _ = std::fs::remove_dir_all(dir);
            });
        }
    }
}

/// The check of a private `TMPDIR`, run off the event loop after invocations: one walk at a time, at most one
/// per [`TMP_CHECK_EVERY`], and one after the last invocation.
#[derive(Debug, Default)]
pub(crate) struct TmpCheck {
    /// The checking task runs.
    pub(crate) running: AtomicBool,
    /// An invocation ended since the last walk began.
    pub(crate) again: AtomicBool,
    /// What the last finished walk counted, bytes.
    pub(crate) used: AtomicU64,
}

/// The shortest time between two walks of one instance's private `TMPDIR`: back-to-back invocations cost one
/// walk per this, not one each.
const TMP_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

impl TmpCheck {
    /// Walks `dir` while invocations have ended since the last walk began, each walk at least
    /// [`TMP_CHECK_EVERY`] after the one before.
    pub(crate) async fn run(self: Arc<Self>, dir: PathBuf) {
        loop {
            while self.again.swap(false, Ordering::SeqCst) {
                let began = tokio::time::Instant::now();
                let at = dir.clone();
                let used = tokio::task::spawn_blocking(move || {
                    InstanceDir::tmp_bytes_at(&at, crate::TMP_BYTES)
                })
                .await
                .unwrap_or(0);
                self.used.store(used, Ordering::Relaxed);
                tokio::time::sleep_until(began + TMP_CHECK_EVERY).await;
            }
            self.running.store(false, Ordering::SeqCst);
            // An invocation that ended after the last look and before `running` was cleared found it set.
            if !self.again.load(Ordering::SeqCst) || self.running.swap(true, Ordering::SeqCst) {
                return;
            }
        }
    }
}
