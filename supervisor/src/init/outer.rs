//! The init's outer process: the namespaces it makes, the instance's own `/tmp` and `/dev/shm`, its
//! loopback; and its end, exactly as the function's process ended.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::path::Path;

use super::Want;
use super::mount::{mount, open_path};
use super::os_err;

/// What the outer process set up, for the inner one.
pub(super) struct Setup {
    pub(super) pid: bool,
    pub(super) net: bool,
    /// The machine's `/tmp`, opened before the instance's own was mounted over it.
    pub(super) host_tmp: Option<OwnedFd>,
    /// The outer process's pid on the machine.
    pub(super) host_pid: libc::pid_t,
}

pub(super) fn set_up(want: Want, tmp_bytes: u64) -> Result<Setup, String> {
    if want.user {
        // SAFETY: geteuid/getegid have no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        // SAFETY: unshare(2) of this single-threaded process.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            return Err(os_err("unshare(CLONE_NEWUSER)"));
        }
        // The same ids inside as outside: files keep their owner; the function is not root inside.
        write("/proc/self/setgroups", "deny")?;
        write("/proc/self/uid_map", &format!("{uid} {uid} 1"))?;
        write("/proc/self/gid_map", &format!("{gid} {gid} 1"))?;
    }
    let mut flags = 0;
    if want.pid {
        flags |= libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC;
    }
    if want.net {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: unshare(2) of this single-threaded process.
    if flags != 0 && unsafe { libc::unshare(flags) } != 0 {
        return Err(os_err(&format!("unshare({})", want.arg())));
    }
    let mut host_tmp = None;
    if want.pid {
        mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
        host_tmp = Some(open_path(Path::new("/tmp"), libc::O_DIRECTORY)?);
        let opts = format!("size={tmp_bytes},mode=1777");
        let flags = libc::MS_NOSUID | libc::MS_NODEV;
        mount(Some("tmpfs"), "/tmp", Some("tmpfs"), flags, Some(&opts))?;
        if Path::new("/dev/shm").is_dir() {
            let opts = format!("size={},mode=1777", crate::SHM_BYTES);
            mount(Some("tmpfs"), "/dev/shm", Some("tmpfs"), flags, Some(&opts))?;
        }
    }
    if want.net {
        loopback_up()?;
    }
    Ok(Setup {
        pid: want.pid,
        net: want.net,
        host_tmp,
        // SAFETY: getpid has no preconditions.
        host_pid: unsafe { libc::getpid() },
    })
}

fn write(path: &str, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {path}: {e}"))
}

fn loopback_up() -> Result<(), String> {
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_err("socket"));
    }
    // SAFETY: the socket just made, owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data (an array and a union of integers and arrays); all zeroes is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    ifr.ifr_name[0] = b'l' as libc::c_char;
    ifr.ifr_name[1] = b'o' as libc::c_char;
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own, on the socket above.
    let rc = unsafe {
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut ifr) == 0 {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS as _, &ifr)
        } else {
            -1
        }
    };
    if rc != 0 {
        return Err(os_err("bringing up lo"));
    }
    Ok(())
}

/// Ends this process the way `status` says a process ended: the same exit code, or the same signal.
pub(super) fn reproduce(status: i32) -> ! {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit/signal/sigprocmask/kill on this process only, with valid arguments; a
        // default-action signal sent to ourselves ends us like the function's process ended.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
        }
        // SAFETY: _exit(2) ends the process at once (a signal whose default is to be ignored).
        unsafe { libc::_exit(128 + sig) }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    };
    // SAFETY: _exit(2) ends the process at once.
    unsafe { libc::_exit(code) }
}
