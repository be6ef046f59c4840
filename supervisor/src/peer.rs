//! Who holds the other end of a loopback TCP connection: the check behind [`crate::Owner::owns_tcp`].
//!
//! A TCP runtime API on the machine's loopback (an instance without a network namespace of its own) can be
//! reached by any local process. For each connection the platform accepts it finds the client's socket
//! (its inode, by the netlink `sock_diag` exact lookup of the connection's four addresses, or, where
//! netlink is not available, in `/proc/net/tcp` / `/proc/net/tcp6`), then whether one of the instance's
//! processes has that socket among its descriptors (`/proc/PID/fd` links `socket:[INODE]`). The instance's
//! processes are those of its cgroup (`cgroup.procs`) where it has one, else those of its PID namespace
//! (a forked instance is in it without being below its init), else the descendants of its init (a
//! subreaper: whatever the instance starts stays below it).
//!
//! The work is bounded: at most [`MAX_PROCESSES`] processes and [`MAX_FDS`] descriptors are looked at per
//! connection, and at most [`MAX_TABLE_BYTES`] of a `/proc/net` table read; past a bound the connection is
//! refused. Everything here blocks (it reads `/proc`): call it off the event loop.

use std::io::{BufRead as _, Read as _};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

/// The most processes of one instance looked at for one connection.
pub(crate) const MAX_PROCESSES: usize = 4096;
/// The most descriptors looked at for one connection, over all the instance's processes.
pub(crate) const MAX_FDS: usize = 256 * 1024;
/// The most bytes of `/proc/net/tcp` (or `tcp6`) read for one connection, where netlink is unavailable.
pub(crate) const MAX_TABLE_BYTES: u64 = 64 * 1024 * 1024;

/// Whether the client end of the accepted TCP connection whose addresses, as the server sees them, are
/// `local` (the server's) and `peer` (the client's) is held by one of the instance's processes: those in
/// the cgroup whose `cgroup.procs` is `procs`, else those of the PID namespace `pidns` (its `pid:[…]` link),
/// else those below the init `leader`.
pub(crate) fn held_by_instance(
    procs: Option<&Path>,
    pidns: Option<&str>,
    leader: u32,
    local: SocketAddr,
    peer: SocketAddr,
) -> bool {
    // The client's socket: its own address is the server's peer, its remote the server's local address.
    let Some(inode) = socket_inode(peer, local) else {
        return false;
    };
    let pids = match (procs, pidns) {
        (Some(path), _) => match cgroup_pids(path) {
            Some(p) => p,
            None => return false,
        },
        (None, Some(ns)) => match namespace_pids(ns) {
            Some(p) => p,
            None => return false,
        },
        (None, None) => crate::memory::instance_tree(leader as i32)
            .1
            .into_iter()
            .filter_map(|p| u32::try_from(p).ok())
            .collect(),
    };
    holds_socket(&pids, inode) == Some(true)
}

/// The processes of the machine in the PID namespace `ns` (`/proc/PID/ns/pid` reads `ns`), `None` past
/// [`MAX_PROCESSES`] of them.
fn namespace_pids(ns: &str) -> Option<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if std::fs::read_link(entry.path().join("ns/pid"))
            .is_ok_and(|l| l.as_os_str().as_bytes() == ns.as_bytes())
        {
            pids.push(pid);
            if pids.len() > MAX_PROCESSES {
                return None;
            }
        }
    }
    Some(pids)
}

/// The pids of a cgroup (its `cgroup.procs`), `None` past [`MAX_PROCESSES`] or when it cannot be read.
fn cgroup_pids(procs: &Path) -> Option<Vec<u32>> {
    let mut text = String::new();
    // A pid is at most 7 digits and a newline.
    let limit = (MAX_PROCESSES as u64 + 1) * 8;
    std::fs::File::open(procs)
        .ok()?
        .take(limit)
        .read_to_string(&mut text)
        .ok()?;
    let pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    (pids.len() <= MAX_PROCESSES).then_some(pids)
}

/// Whether one of `pids` has the socket `inode` among its descriptors: `None` when more than
/// [`MAX_PROCESSES`] processes or [`MAX_FDS`] descriptors would have to be looked at. The newest processes
/// (the last listed: the client that just connected, often) are looked at first.
pub(crate) fn holds_socket(pids: &[u32], inode: u64) -> Option<bool> {
    if pids.len() > MAX_PROCESSES {
        return None;
    }
    let wanted = format!("socket:[{inode}]");
    let mut fds = 0usize;
    for pid in pids.iter().rev() {
        let dir = format!("/proc/{pid}/fd");
        // A process that ended meanwhile (or is not ours to read) holds nothing.
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            fds += 1;
            if fds > MAX_FDS {
                return None;
            }
            if std::fs::read_link(e.path())
                .is_ok_and(|l| l.as_os_str().as_bytes() == wanted.as_bytes())
            {
                return Some(true);
            }
        }
    }
    Some(false)
}

/// The inode of the TCP socket whose own address is `source` and whose remote is `dest` (on this network
/// namespace), `None` when there is none (or it has no inode any more: closed). By netlink where the kernel
/// answers, else from `/proc/net`.
pub(crate) fn socket_inode(source: SocketAddr, dest: SocketAddr) -> Option<u64> {
    match netlink_inode(source, dest) {
        Ok(found) => found,
        Err(_) => table_inode(source, dest),
    }
}

// The netlink `sock_diag` structures (linux/inet_diag.h, linux/sock_diag.h), which libc does not define.

/// `SOCK_DIAG_BY_FAMILY`: the request (and answer) type of a `sock_diag` lookup.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `INET_DIAG_NOCOOKIE`: the lookup is by addresses only.
const INET_DIAG_NOCOOKIE: u32 = !0;

/// `struct inet_diag_sockid`: addresses and ports in network byte order.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct InetDiagSockId {
    sport: [u8; 2],
    dport: [u8; 2],
    src: [u8; 16],
    dst: [u8; 16],
    interface: u32,
    cookie: [u32; 2],
}

/// `struct inet_diag_req_v2`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct InetDiagReqV2 {
    family: u8,
    protocol: u8,
    ext: u8,
    pad: u8,
    states: u32,
    id: InetDiagSockId,
}

/// `struct inet_diag_msg`: the answer's payload.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct InetDiagMsg {
    family: u8,
    state: u8,
    timer: u8,
    retrans: u8,
    id: InetDiagSockId,
    expires: u32,
    rqueue: u32,
    wqueue: u32,
    uid: u32,
    inode: u32,
}

/// One request: the netlink header and the lookup.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Request {
    header: libc::nlmsghdr,
    req: InetDiagReqV2,
}

/// Why netlink gave no answer (the caller then reads `/proc/net`).
#[derive(Debug)]
pub(crate) struct NoNetlink;

/// The netlink exact lookup: `Ok(None)` when the kernel says there is no such socket.
pub(crate) fn netlink_inode(
    source: SocketAddr,
    dest: SocketAddr,
) -> Result<Option<u64>, NoNetlink> {
    let (family, src, dst) = match (source, dest) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            let (mut src, mut dst) = ([0u8; 16], [0u8; 16]);
            src[..4].copy_from_slice(&s.ip().octets());
            dst[..4].copy_from_slice(&d.ip().octets());
            (libc::AF_INET, src, dst)
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            (libc::AF_INET6, s.ip().octets(), d.ip().octets())
        }
        _ => return Ok(None),
    };
    let request = Request {
        header: libc::nlmsghdr {
            nlmsg_len: std::mem::size_of::<Request>() as u32,
            nlmsg_type: SOCK_DIAG_BY_FAMILY,
            // An exact lookup: no NLM_F_DUMP.
            nlmsg_flags: libc::NLM_F_REQUEST as u16,
            nlmsg_seq: 1,
            nlmsg_pid: 0,
        },
        req: InetDiagReqV2 {
            family: family as u8,
            protocol: libc::IPPROTO_TCP as u8,
            ext: 0,
            pad: 0,
            states: !0,
            id: InetDiagSockId {
                sport: source.port().to_be_bytes(),
                dport: dest.port().to_be_bytes(),
                src,
                dst,
                interface: 0,
                cookie: [INET_DIAG_NOCOOKIE; 2],
            },
        },
    };
    // SAFETY: socket(2) with constant arguments; the descriptor it returns is owned at once below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(NoNetlink);
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_nl is plain data; all zeroes (then the family) addresses the kernel.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: sendto(2) reads `size_of::<Request>()` bytes of `request` and the address, both alive here.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            (&raw const request).cast(),
            std::mem::size_of::<Request>(),
            0,
            (&raw const kernel).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(NoNetlink);
    }
    // The kernel answers a sock_diag request while it is being sent: the answer is queued already, and the
    // receive never waits.
    let mut buf = [0u64; 1024];
    let n = loop {
        // SAFETY: recv(2) writes at most `size_of_val(&buf)` bytes into `buf`, which we own.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                std::mem::size_of_val(&buf),
                libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            break n as usize;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Err(NoNetlink);
        }
    };
    let header_len = std::mem::size_of::<libc::nlmsghdr>();
    if n < header_len {
        return Err(NoNetlink);
    }
    // SAFETY: `buf` holds at least a header's bytes (checked); read_unaligned copies them out.
    let header: libc::nlmsghdr = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
    let payload = buf.as_ptr().cast::<u8>().wrapping_add(header_len);
    if header.nlmsg_type == libc::NLMSG_ERROR as u16 {
        if n < header_len + std::mem::size_of::<libc::c_int>() {
            return Err(NoNetlink);
        }
        // SAFETY: `struct nlmsgerr` starts with the (negative) errno; the bytes are there (checked).
        let errno: libc::c_int = unsafe { std::ptr::read_unaligned(payload.cast()) };
        return if errno == -libc::ENOENT {
            Ok(None)
        } else {
            Err(NoNetlink)
        };
    }
    if header.nlmsg_type != SOCK_DIAG_BY_FAMILY
        || n < header_len + std::mem::size_of::<InetDiagMsg>()
    {
        return Err(NoNetlink);
    }
    // SAFETY: the answer's payload is an inet_diag_msg, whose bytes are all in `buf` (checked above).
    let msg: InetDiagMsg = unsafe { std::ptr::read_unaligned(payload.cast()) };
    // A socket without an inode (one in TIME_WAIT, closed by its process) is held by no one.
    Ok((msg.inode != 0).then_some(u64::from(msg.inode)))
}

/// The socket's inode from `/proc/net/tcp` (IPv4) or `/proc/net/tcp6`: the line whose local address is
/// `source` and whose remote is `dest`. At most [`MAX_TABLE_BYTES`] are read.
pub(crate) fn table_inode(source: SocketAddr, dest: SocketAddr) -> Option<u64> {
    let table = match source {
        SocketAddr::V4(_) => "/proc/net/tcp",
        SocketAddr::V6(_) => "/proc/net/tcp6",
    };
    let (want_local, want_remote) = (table_address(source), table_address(dest));
    let file = std::fs::File::open(table).ok()?;
    let reader = std::io::BufReader::new(file.take(MAX_TABLE_BYTES));
    for line in reader.lines().skip(1) {
        let line = line.ok()?;
        // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(inode)) =
            (fields.get(1), fields.get(2), fields.get(9))
        else {
            continue;
        };
        if local.eq_ignore_ascii_case(&want_local) && remote.eq_ignore_ascii_case(&want_remote) {
            return inode.parse().ok().filter(|i| *i != 0);
        }
    }
    None
}

/// An address as `/proc/net/tcp*` writes it: the address's 32-bit words in the machine's byte order, in
/// hexadecimal, then `:` and the port.
fn table_address(a: SocketAddr) -> String {
    let octets: Vec<u8> = match a {
        SocketAddr::V4(v) => v.ip().octets().to_vec(),
        SocketAddr::V6(v) => v.ip().octets().to_vec(),
    };
    let mut s = String::with_capacity(40);
    for word in octets.chunks_exact(4) {
        let w = u32::from_ne_bytes([word[0], word[1], word[2], word[3]]);
        s.push_str(&format!("{w:08X}"));
    }
    s.push_str(&format!(":{:04X}", a.port()));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inode of the socket behind descriptor `fd` of this process.
    fn inode_of(fd: i32) -> u64 {
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("fd link");
        let text = link.to_str().expect("utf-8");
        text.trim_start_matches("socket:[")
            .trim_end_matches(']')
            .parse()
            .expect("a socket")
    }

    /// A loopback connection on `bind` (its port 0): the client's socket inode, both ends as the server
    /// sees them, and the sockets (kept open).
    #[allow(clippy::type_complexity, reason = "a test's tuple")]
    fn connection(
        bind: &str,
    ) -> (
        u64,
        SocketAddr,
        SocketAddr,
        std::net::TcpStream,
        std::net::TcpStream,
    ) {
        let listener = std::net::TcpListener::bind(bind).expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, peer) = listener.accept().expect("accept");
        let local = server.local_addr().expect("local");
        (inode_of(client.as_raw_fd()), local, peer, client, server)
    }

    #[test]
    fn both_lookups_find_the_client_end_of_a_loopback_connection() {
        let (want, local, peer, _client, server) = connection("127.0.0.1:0");
        assert_eq!(netlink_inode(peer, local).expect("netlink"), Some(want));
        assert_eq!(table_inode(peer, local), Some(want));
        // The server's own end is another socket, and an address no one has is no socket.
        assert_eq!(
            socket_inode(local, peer),
            Some(inode_of(server.as_raw_fd()))
        );
        let nowhere: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        assert_eq!(netlink_inode(nowhere, local).expect("netlink"), None);
        assert_eq!(table_inode(nowhere, local), None);
        // This process holds the client's socket; no process of an empty list does.
        assert_eq!(holds_socket(&[std::process::id()], want), Some(true));
        assert_eq!(holds_socket(&[], want), Some(false));
        let too_many = vec![std::process::id(); MAX_PROCESSES + 1];
        assert_eq!(holds_socket(&too_many, want), None);
    }

    #[test]
    fn ipv6_loopback_is_looked_up_too() {
        let (want, local, peer, _client, _server) = connection("[::1]:0");
        assert_eq!(netlink_inode(peer, local).expect("netlink"), Some(want));
        assert_eq!(table_inode(peer, local), Some(want));
    }
}
