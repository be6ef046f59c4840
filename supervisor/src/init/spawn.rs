//! The spawn of the function's process by the inner init: fork, then exec from data prepared before the fork.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};

use super::{pipe, read_full, wait_for};

/// Forks and execs the function's process: its own process group, the log pipe as stdout and stderr,
/// `/dev/null` as stdin, `cwd` as its directory, exactly `env`. Its pid, or why it could not start.
pub(super) fn start_instance(
    program: &[u8],
    cwd: &[u8],
    args: &[Vec<u8>],
    env: &[Vec<u8>],
    log: &OwnedFd,
) -> io::Result<libc::pid_t> {
    let bad = |_| io::Error::from_raw_os_error(libc::EINVAL);
    let candidates = candidates(program, env);
    let candidates: Vec<CString> = candidates
        .into_iter()
        .map(CString::new)
        .collect::<Result<_, _>>()
        .map_err(bad)?;
    let mut argv: Vec<CString> = vec![CString::new(program).map_err(bad)?];
    for a in args {
        argv.push(CString::new(a.as_slice()).map_err(bad)?);
    }
    let envp: Vec<CString> = env
        .iter()
        .map(|e| CString::new(e.as_slice()))
        .collect::<Result<_, _>>()
        .map_err(bad)?;
    let cwd = CString::new(cwd).map_err(bad)?;
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    let (err_r, err_w) = pipe()?;
    // SAFETY: fork(2) in a single-threaded process. The child only makes system calls on data prepared
    // above, then execs or exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the child: system calls on descriptors and strings prepared before the fork; every
        // path ends in execve(2) or _exit(2).
        unsafe {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            // The Rust runtime ignores SIGPIPE; the function starts with the default.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if null < 0
                || libc::dup2(null, 0) < 0
                || libc::dup2(log.as_raw_fd(), 1) < 0
                || libc::dup2(log.as_raw_fd(), 2) < 0
                || libc::chdir(cwd.as_ptr()) != 0
            {
                child_failed(err_w.as_raw_fd());
            }
            // As execvp(3): a file found but not executable (EACCES) is the answer unless another
            // candidate runs; any other failure stops the search.
            let (mut denied, mut fatal) = (false, None);
            for c in &candidates {
                libc::execve(c.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr());
                match *libc::__errno_location() {
                    libc::ENOENT | libc::ENOTDIR => {}
                    libc::EACCES => denied = true,
                    other => {
                        fatal = Some(other);
                        break;
                    }
                }
            }
            *libc::__errno_location() =
                fatal.unwrap_or(if denied { libc::EACCES } else { libc::ENOENT });
            child_failed(err_w.as_raw_fd());
        }
    }
    drop(err_w);
    let mut errno = [0u8; 4];
    if read_full(err_r.as_raw_fd(), &mut errno) {
        wait_for(pid);
        return Err(io::Error::from_raw_os_error(i32::from_le_bytes(errno)));
    }
    Ok(pid)
}

/// In the forked child: reports `errno` to the parent and exits.
///
/// # Safety
/// Call only in the child between fork and exec.
unsafe fn child_failed(fd: RawFd) -> ! {
    // SAFETY: reading errno, writing 4 bytes to the error pipe, _exit: all async-signal-safe.
    unsafe {
        let e = (*libc::__errno_location()).to_le_bytes();
        libc::write(fd, e.as_ptr().cast(), 4);
        libc::_exit(127)
    }
}

/// The files to try for `program`: itself when it has a `/`, else each directory of the instance's `PATH`.
fn candidates(program: &[u8], env: &[Vec<u8>]) -> Vec<Vec<u8>> {
    if program.contains(&b'/') {
        return vec![program.to_vec()];
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix(b"PATH="))
        .map(<[u8]>::to_vec)
        .unwrap_or_else(|| b"/usr/local/bin:/usr/bin:/bin".to_vec());
    path.split(|b| *b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
            let mut p = dir.to_vec();
            p.push(b'/');
            p.extend_from_slice(program);
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_looked_up_on_the_instances_path() {
        let env = vec![b"PATH=/a:/b/c".to_vec(), b"X=1".to_vec()];
        assert_eq!(
            candidates(b"python3", &env),
            [b"/a/python3".to_vec(), b"/b/c/python3".to_vec()]
        );
        assert_eq!(candidates(b"./bootstrap", &env), [b"./bootstrap".to_vec()]);
        assert_eq!(candidates(b"sh", &[])[2], b"/bin/sh".to_vec());
    }
}
