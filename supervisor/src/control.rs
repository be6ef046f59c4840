//! The channel between the platform and an instance's init: one `SOCK_SEQPACKET` socket pair, one message
//! per request or reply, a descriptor passed alongside where there is one (`SCM_RIGHTS`).
//!
//! A message is an operation byte followed by its parts, each a 4-byte length and the bytes. The init answers
//! every request with one reply, in order; the platform sends one request at a time.
//!
//! | request (platform → init) | parts | reply |
//! |---|---|---|
//! | [`Op::ListenTcp`] | port | [`Op::Fd`] (a listening socket on `127.0.0.1:port` inside the instance's network) |
//! | [`Op::ListenUnix`] | abstract name | [`Op::Fd`] (a listening abstract Unix socket inside it) |
//! | [`Op::Socket`] | — | [`Op::Fd`] (an unconnected TCP socket made inside it: the platform's `connect(2)` on it reaches the instance's loopback) |
//! | [`Op::Spawn`] | program, cwd, then `a`rg / `e`nv / `v`isible-path / `h`idden-path parts; the log pipe's write end passed | [`Op::Spawned`] (its pid) |
//! | [`Op::Expect`] | cwd, then `v`isible-path and `h`idden-path parts; a pipe's write end passed | [`Op::Ready`]: a process forked elsewhere (by a zygote) will enter the instance ([`crate::init::enter`]); the paths are bound as for a spawn, then one byte is written to the pipe (closed without one on failure), for the process to wait on |
//! | [`Op::Kill`] | — | none: the init kills everything it started and ends |
//!
//! The init says [`Op::Ready`] (the namespaces it made) or [`Op::Failed`] once it is set up; any request
//! can be answered [`Op::Error`] (an `errno` and a text). Closing the platform's end ends the instance.

use std::io;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};

/// The largest message either side sends (a spawn: the function's variables are at most 4 KB).
pub(crate) const MAX_MESSAGE: usize = 256 * 1024;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Op {
    Ready = b'R',
    Failed = b'F',
    ListenTcp = b'T',
    ListenUnix = b'U',
    Socket = b'C',
    Spawn = b'S',
    Expect = b'X',
    Kill = b'K',
    Fd = b'D',
    Spawned = b'P',
    Error = b'E',
}

impl Op {
    fn from_byte(b: u8) -> Option<Op> {
        Some(match b {
            b'R' => Op::Ready,
            b'F' => Op::Failed,
            b'T' => Op::ListenTcp,
            b'U' => Op::ListenUnix,
            b'C' => Op::Socket,
            b'S' => Op::Spawn,
            b'X' => Op::Expect,
            b'K' => Op::Kill,
            b'D' => Op::Fd,
            b'P' => Op::Spawned,
            b'E' => Op::Error,
            _ => return None,
        })
    }
}

/// One message as received.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) op: Op,
    pub(crate) parts: Vec<Vec<u8>>,
    /// The descriptor passed with it, if any.
    pub(crate) fd: Option<OwnedFd>,
}

impl Message {
    /// Part `i` as text (empty when missing or not UTF-8).
    pub(crate) fn text(&self, i: usize) -> String {
        self.parts
            .get(i)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default()
    }

    /// The error this reply carries: an [`Op::Error`] reply's `errno` and text, or an unexpected reply.
    pub(crate) fn into_error(self) -> io::Error {
        match self.op {
            Op::Error => {
                let errno = self.text(0).parse::<i32>().unwrap_or(0);
                let text = self.text(1);
                if errno > 0 {
                    let os = io::Error::from_raw_os_error(errno);
                    if text.is_empty() {
                        os
                    } else {
                        io::Error::new(os.kind(), format!("{text}: {os}"))
                    }
                } else {
                    io::Error::other(text)
                }
            }
            Op::Failed => io::Error::other(self.text(0)),
            other => io::Error::other(format!("the instance's init answered {other:?}")),
        }
    }
}

/// Encodes `op` and `parts` as one message.
pub(crate) fn encode(op: Op, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + parts.iter().map(|p| p.len() + 4).sum::<usize>());
    out.push(op as u8);
    for p in parts {
        out.extend_from_slice(&u32::try_from(p.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

fn decode(bytes: &[u8]) -> Option<(Op, Vec<Vec<u8>>)> {
    let (&first, mut rest) = bytes.split_first()?;
    let op = Op::from_byte(first)?;
    let mut parts = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        parts.push(rest.get(4..4 + len)?.to_vec());
        rest = &rest[4 + len..];
    }
    Some((op, parts))
}

/// A connected pair: (the platform's end, the init's end), both close-on-exec.
pub(crate) fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair(2) writes two descriptors into `fds`, which has room for them.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded: both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends one message (with `pass` alongside), `flags` as for sendmsg(2) (`MSG_DONTWAIT` to not block).
pub(crate) fn send(
    fd: RawFd,
    op: Op,
    parts: &[&[u8]],
    pass: Option<RawFd>,
    flags: libc::c_int,
) -> io::Result<()> {
    let bytes = encode(op, parts);
    if bytes.len() > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "message too large for the init's channel",
        ));
    }
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // Room for one descriptor: CMSG_SPACE(sizeof(int)) is at most 24 bytes on Linux.
    let mut control = [0u64; 4];
    // SAFETY: msghdr is plain data; all zeroes is a valid empty header, filled in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(pass) = pass {
        // SAFETY: CMSG_SPACE/CMSG_LEN compute sizes; the control buffer (32 bytes, 8-aligned) holds one
        // header and one int, so CMSG_FIRSTHDR is non-null and CMSG_DATA points inside the buffer.
        unsafe {
            let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), pass);
        }
    }
    loop {
        // SAFETY: `msg` points at `iov` (over `bytes`) and `control`, all alive for the call.
        let n = unsafe { libc::sendmsg(fd, &msg, flags | libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Receives one message; `Ok(None)` when the other end is closed. `flags` as for recvmsg(2).
pub(crate) fn recv(fd: RawFd, flags: libc::c_int) -> io::Result<Option<Message>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 4];
    // SAFETY: msghdr is plain data; all zeroes is a valid empty header, filled in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    let n = loop {
        // SAFETY: `msg` points at `iov` (over `buf`) and `control`, all alive for the call.
        let n = unsafe { libc::recvmsg(fd, &mut msg, flags | libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut passed = None;
    // SAFETY: the kernel filled `control` up to msg_controllen; CMSG_FIRSTHDR/NXTHDR walk it within those
    // bounds, and an SCM_RIGHTS header's data is the descriptors the kernel installed for us.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
                if fd >= 0 {
                    passed = Some(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if n == 0 && passed.is_none() {
        return Ok(None);
    }
    if msg.msg_flags & libc::MSG_TRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a message on the init's channel was cut",
        ));
    }
    let Some((op, parts)) = decode(&buf[..n]) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "an unreadable message on the init's channel",
        ));
    };
    Ok(Some(Message {
        op,
        parts,
        fd: passed,
    }))
}

/// Waits until `fd` is readable, at most `timeout_ms` (-1: no limit). Whether it is.
pub(crate) fn wait_readable(fd: RawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: poll(2) on one pollfd we own.
        let rc = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if rc >= 0 {
            return Ok(rc > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The platform's end of one init's channel, for the event loop: one request at a time.
#[derive(Debug)]
pub(crate) struct Control {
    fd: tokio::io::unix::AsyncFd<OwnedFd>,
    turn: tokio::sync::Mutex<()>,
}

impl Control {
    /// Registers the platform's end with the event loop (it must be non-blocking).
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Control> {
        set_nonblocking(fd.as_raw_fd())?;
        Ok(Control {
            // SAFETY: the AsyncFd owns the descriptor, which stays open (and the same) until it is dropped.
            fd: unsafe { tokio::io::unix::AsyncFd::register(fd) }?,
            turn: tokio::sync::Mutex::new(()),
        })
    }

    /// The descriptor (for a last message sent without waiting).
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.get_ref().as_raw_fd()
    }

    /// Sends a request and waits for its reply.
    pub(crate) async fn call(
        &self,
        op: Op,
        parts: &[&[u8]],
        pass: Option<RawFd>,
    ) -> io::Result<Message> {
        let _turn = self.turn.lock().await;
        loop {
            let mut ready = self.fd.writable().await?;
            match send(self.raw(), op, parts, pass, libc::MSG_DONTWAIT) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready.clear_ready(),
                other => {
                    other?;
                    break;
                }
            }
        }
        loop {
            let mut ready = self.fd.readable().await?;
            match recv(self.raw(), libc::MSG_DONTWAIT) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready.clear_ready(),
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the instance's init is gone",
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A request whose reply must carry a descriptor: the descriptor.
    pub(crate) async fn call_for_fd(&self, op: Op, parts: &[&[u8]]) -> io::Result<OwnedFd> {
        let reply = self.call(op, parts, None).await?;
        match (reply.op, reply.fd) {
            (Op::Fd, Some(fd)) => Ok(fd),
            (_, fd) => {
                drop(fd);
                Err(Message {
                    op: reply.op,
                    parts: reply.parts,
                    fd: None,
                }
                .into_error())
            }
        }
    }
}

pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(2) on a descriptor we own, reading then setting its status flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_a_descriptor() {
        let (a, b) = pair().expect("pair");
        let (r, w) = {
            let mut fds = [0; 2];
            // SAFETY: pipe(2) writes two descriptors into `fds`.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            // SAFETY: both are ours.
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
        };
        send(
            a.as_raw_fd(),
            Op::Spawn,
            &[b"/bin/true", b"", b"a-x"],
            Some(w.as_raw_fd()),
            0,
        )
        .expect("send");
        drop(w);
        let m = recv(b.as_raw_fd(), 0).expect("recv").expect("a message");
        assert_eq!(m.op, Op::Spawn);
        assert_eq!(m.parts, [b"/bin/true".to_vec(), vec![], b"a-x".to_vec()]);
        let passed = m.fd.expect("the descriptor");
        // The passed write end is the pipe's: what goes in comes out of `r`.
        // SAFETY: write(2) of one byte from a live buffer to the descriptor received.
        let wrote = unsafe { libc::write(passed.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        assert_eq!(wrote, 1);
        let mut byte = [0u8; 1];
        // SAFETY: read(2) of one byte into a live buffer.
        let read = unsafe { libc::read(r.as_raw_fd(), byte.as_mut_ptr().cast(), 1) };
        assert_eq!(read, 1);
        assert_eq!(&byte, b"x");
        drop(a);
        assert!(recv(b.as_raw_fd(), 0).expect("eof").is_none());
    }

    #[test]
    fn error_replies_carry_the_errno_and_the_text() {
        let m = Message {
            op: Op::Error,
            parts: vec![b"2".to_vec(), b"cannot start /x".to_vec()],
            fd: None,
        };
        let e = m.into_error();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("cannot start /x: "), "{e}");
        assert_eq!(
            decode(&encode(Op::Kill, &[])).map(|(o, _)| o),
            Some(Op::Kill)
        );
        assert!(decode(&[b'K', 9, 0, 0, 0, 1]).is_none(), "a part cut short");
    }
}
