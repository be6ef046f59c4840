//! The admitting accept on a TCP listener: the check is handed who connected (the server's address and the
//! client's), a connection it refuses is closed unanswered, and the server goes on serving the next one.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use scf_protocol::api::{Dialect, LambdaIdentity};
use scf_runtime_api::{Admit, ApiHandle, Listener, Peer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const READY: &[u8] = b"POST /runtime/init/ready HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n ";

/// Sends `init/ready` on a new connection: the client's address and what was answered until the server
/// closed or answered.
async fn ready(port: u16) -> (std::net::SocketAddr, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let me = s.local_addr().unwrap();
    let _ = s.write_all(READY).await;
    let mut got = vec![0u8; 4096];
    // One read: an answer's head, or the end (a close or a reset) of a refused connection.
    let n = s.read(&mut got).await.unwrap_or(0);
    (me, String::from_utf8_lossy(&got[..n]).into_owned())
}

#[tokio::test]
async fn a_refused_tcp_connection_is_closed_unanswered_and_the_next_one_is_served() {
    let listener = Listener::tcp_loopback().await.unwrap();
    let port = listener.port().unwrap();
    let open = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let admit: Admit = {
        let (open, seen) = (open.clone(), seen.clone());
        Arc::new(move |who| {
            seen.lock().unwrap().push(who);
            open.load(Ordering::SeqCst)
        })
    };
    let api = ApiHandle::serve_admitting(
        listener,
        Dialect::Scf,
        LambdaIdentity::default(),
        Some(admit),
    );

    let (refused_from, refused) = ready(port).await;
    assert_eq!(refused, "", "a refused connection is not answered");
    open.store(true, Ordering::SeqCst);
    let (admitted_from, admitted) = ready(port).await;
    assert!(admitted.starts_with("HTTP/1.1 200"), "{admitted}");
    assert!(
        api.ready().await.is_some(),
        "the admitted init/ready counts"
    );

    let server: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            Peer::Tcp {
                local: server,
                peer: refused_from
            },
            Peer::Tcp {
                local: server,
                peer: admitted_from
            }
        ],
        "the check is asked once per connection, with both ends"
    );
}
