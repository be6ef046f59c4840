//! Network namespaces: each web instance gets its own, with only a loopback interface, so every instance can
//! listen on port 9000 as on the cloud. The platform reaches the instance's port by connecting from a thread
//! that has joined the instance's namespace.
//!
//! Where namespaces cannot be made (not root, a kernel or container without them, or `SCF_LOCAL_NETNS=off`)
//! the instances share the machine's network and each is told a free port in `PORT` (the fallback).

use std::io;
use std::os::fd::AsRawFd as _;
use std::sync::OnceLock;
use std::time::Duration;

/// How instances are given their port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetMode {
    /// A network namespace per instance; every instance listens on 9000.
    Namespace,
    /// No namespaces; each instance gets a free port of the machine in `PORT`, for the reason given.
    SharedPort(String),
}

impl NetMode {
    /// One line saying which mode runs, for the platform's banner and the cold start's log.
    pub fn describe(&self) -> String {
        match self {
            NetMode::Namespace => {
                "each instance has its own network namespace and listens on port 9000".to_owned()
            }
            NetMode::SharedPort(why) => format!(
                "no network namespaces ({why}): each instance listens on the free port given in PORT"
            ),
        }
    }
}

/// The mode this platform runs in, probed once: `SCF_LOCAL_NETNS=off` forces the fallback.
pub fn mode() -> &'static NetMode {
    static MODE: OnceLock<NetMode> = OnceLock::new();
    MODE.get_or_init(|| {
        if let Ok(v) = std::env::var("SCF_LOCAL_NETNS")
            && matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "off" | "no" | "false"
            )
        {
            return NetMode::SharedPort(format!("SCF_LOCAL_NETNS={v}"));
        }
        // A throwaway thread tries to make a namespace; only that thread enters it.
        let probe = std::thread::spawn(|| {
            // SAFETY: unshare(2) changes only the calling thread's network namespace; the thread ends next.
            let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
        match probe.join() {
            Ok(Ok(())) => NetMode::Namespace,
            Ok(Err(e)) => NetMode::SharedPort(format!("unshare(CLONE_NEWNET): {e}")),
            Err(_) => NetMode::SharedPort("the namespace probe failed".to_owned()),
        }
    })
}

/// Run in the instance's process between fork and exec: a new network namespace with its loopback up.
/// Uses only system calls (async-signal-safe).
pub fn enter_new() -> io::Result<()> {
    // SAFETY: unshare(2) on the forked child before exec; no memory is shared with the parent.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain data (an array and a union of integers and arrays); all zeroes is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    ifr.ifr_name[0] = b'l' as libc::c_char;
    ifr.ifr_name[1] = b'o' as libc::c_char;
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own; fd is the socket opened above.
    let rc = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut ifr) == 0 {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &ifr)
        } else {
            -1
        }
    };
    let err = io::Error::last_os_error();
    // SAFETY: fd is the socket opened above, closed once.
    unsafe { libc::close(fd) };
    if rc != 0 { Err(err) } else { Ok(()) }
}

type Job = (
    u16,
    tokio::sync::oneshot::Sender<io::Result<std::net::TcpStream>>,
);

/// Opens TCP connections to `127.0.0.1:PORT` inside one instance's network namespace, from a thread that
/// joined it. The thread ends when the connector is dropped.
#[derive(Debug)]
pub struct Connector {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Connector {
    /// A connector into the network namespace of process `pid`.
    pub fn new(pid: u32) -> io::Result<Connector> {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("scf-netns-{pid}"))
            .spawn(move || {
                // SAFETY: setns(2) moves only this thread (which serves this instance alone) into the
                // namespace the open descriptor names.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                let entered = if rc == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                };
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if !ok {
                    return;
                }
                drop(ns);
                while let Ok((port, reply)) = rx.recv() {
                    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                    let _ = reply.send(std::net::TcpStream::connect_timeout(
                        &addr,
                        Duration::from_secs(2),
                    ));
                }
            })?;
        ready_rx
            .recv()
            .map_err(|_| io::Error::other("the namespace thread ended"))??;
        Ok(Connector { jobs })
    }

    /// A connection to `127.0.0.1:port` in the namespace.
    pub async fn connect(&self, port: u16) -> io::Result<tokio::net::TcpStream> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send((port, tx))
            .map_err(|_| io::Error::other("the namespace thread ended"))?;
        let stream = rx
            .await
            .map_err(|_| io::Error::other("the namespace thread ended"))??;
        stream.set_nonblocking(true)?;
        tokio::net::TcpStream::from_std(stream)
    }
}
