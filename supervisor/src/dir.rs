//! An instance's private directory: mode 0700, with `tmp/` for its temporary files (what `/tmp` is on the
//! cloud). It is made and removed off the thread that serves requests.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

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
