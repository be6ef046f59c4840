//! Mounts in the instance's mount namespace: what it must see of the machine's `/tmp`, and the covers over
//! what it must not see of the machine.

use std::ffi::CString;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use super::{cstr, os_err};

pub(super) fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), String> {
    let c = |s: Option<&str>| s.map(|s| cstr(s.as_bytes())).transpose();
    let (src, tgt, fs, dat) = (c(source)?, cstr(target.as_bytes())?, c(fstype)?, c(data)?);
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: mount(2) with NUL-terminated strings (or null) that live for the call.
    let rc = unsafe { libc::mount(ptr(&src), tgt.as_ptr(), ptr(&fs), flags, ptr(&dat).cast()) };
    if rc != 0 {
        return Err(os_err(&format!(
            "mount {} on {target}",
            fstype.or(source).unwrap_or("(propagation)")
        )));
    }
    Ok(())
}

pub(super) fn open_path(path: &Path, extra: libc::c_int) -> Result<OwnedFd, String> {
    let p = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: open(2) of a NUL-terminated path; the result is checked.
    let fd = unsafe { libc::open(p.as_ptr(), libc::O_PATH | libc::O_CLOEXEC | extra) };
    if fd < 0 {
        return Err(os_err(&format!("opening {}", path.display())));
    }
    // SAFETY: a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds the paths the instance needs from the machine's `/tmp` (its code, the runtime's files) into its
/// own `/tmp`, at the same places. The paths are canonical (the platform resolved them); `/tmp` itself is
/// never bound, and a path inside one already bound is covered by it.
pub(super) fn bind_visible(host_tmp: &OwnedFd, mut paths: Vec<PathBuf>) -> Result<(), String> {
    paths.retain(|p| p.starts_with("/tmp") && p != Path::new("/tmp"));
    paths.sort();
    paths.dedup();
    let mut bound: Vec<PathBuf> = Vec::new();
    for path in paths {
        if bound.iter().any(|b| path.starts_with(b)) {
            continue;
        }
        let Ok(rel) = path.strip_prefix("/tmp") else {
            continue;
        };
        let crel = cstr(rel.as_os_str().as_bytes())?;
        // SAFETY: openat(2) below the machine's /tmp (opened before the instance's was mounted), O_PATH:
        // nothing is read; the result is checked.
        let src = unsafe {
            libc::openat(
                host_tmp.as_raw_fd(),
                crel.as_ptr(),
                libc::O_PATH | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            )
        };
        if src < 0 {
            continue; // not there: nothing to show
        }
        // SAFETY: a new descriptor nobody else owns.
        let src = unsafe { OwnedFd::from_raw_fd(src) };
        let is_dir = std::fs::metadata(format!("/proc/self/fd/{}", src.as_raw_fd()))
            .map(|m| m.is_dir())
            .unwrap_or(false);
        if is_dir {
            std::fs::create_dir_all(&path)
        } else {
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            std::fs::File::create(&path).map(drop)
        }
        .map_err(|e| format!("making {} in the instance's /tmp: {e}", path.display()))?;
        let from = format!("/proc/self/fd/{}", src.as_raw_fd());
        let to = path.to_string_lossy().into_owned();
        mount(Some(&from), &to, None, libc::MS_BIND | libc::MS_REC, None)?;
        bound.push(path);
    }
    Ok(())
}

/// Covers each of `paths` (canonical) in the instance's mount namespace: a directory with an empty read-only
/// `tmpfs` (mode 0), a file with `/dev/null`, read-only. A path that holds `cwd` (the function's code) is left
/// as it is, and one that is not there (under the instance's own `/tmp`, say) has nothing to cover.
pub(super) fn hide(paths: &[PathBuf], cwd: &Path) -> Result<(), String> {
    let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
    for path in paths {
        if cwd.starts_with(path) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        let target = path.to_string_lossy().into_owned();
        let ro = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        if meta.is_dir() {
            mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                ro,
                Some("size=4k,mode=0"),
            )?;
        } else if meta.is_file() {
            // Without MS_NODEV: the cover is a device node, read as empty.
            let ro = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NOEXEC;
            mount(Some("/dev/null"), &target, None, libc::MS_BIND, None)?;
            mount(
                None,
                &target,
                None,
                libc::MS_BIND | libc::MS_REMOUNT | ro,
                None,
            )?;
        }
    }
    Ok(())
}
