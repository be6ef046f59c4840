//! Who may use an instance's runtime API when the instance shares the machine's network
//! (`SCF_LOCAL_NETNS=off`, as event functions do by default): the real runtime API server, admitting by
//! [`scf_supervisor::Owner`], on a TCP listener and on a Unix one. A process of the instance (a Python
//! client it runs, a new connection per call as `curl` makes them) is admitted and its invocation goes
//! through; this test's own process, which is not the instance's, connects to the same listener and is
//! closed unanswered. With the instance's cgroup, without cgroups (the descendants of its init), and without
//! PID namespaces.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use bytes::Bytes;
use scf_protocol::api::{Dialect, InvocationMeta, LambdaIdentity};
use scf_runtime_api::{Admit, Answer, ApiHandle, Listener, Peer};
use scf_supervisor::{Network, Prepared, SpawnSpec, Supervisor};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

mod common;

/// The instance's client: `init/ready`, `next`, then a response naming the event, each on a new connection
/// to `API` (a port, or `@NAME` for an abstract Unix socket); it prints each status.
const CLIENT: &str = r#"
import http.client, os, socket

class Conn(http.client.HTTPConnection):
    def connect(self):
        where = os.environ["API"]
        if where.startswith("@"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect("\0" + where[1:])
        else:
            self.sock = socket.create_connection(("127.0.0.1", int(where)))

def call(method, path, body=None):
    c = Conn("localhost")
    c.request(method, path, body=body)
    r = c.getresponse()
    data = r.read()
    c.close()
    print(path, r.status, flush=True)
    return data

call("POST", "/runtime/init/ready", b" ")
event = call("GET", "/runtime/invocation/next")
call("POST", "/runtime/invocation/response", b"answered " + event)
"#;

/// The admit the platform builds for an instance.
fn admit(prepared: &Prepared) -> Admit {
    let owner = prepared.owner();
    std::sync::Arc::new(move |who| match who {
        Peer::Unix { pid } => owner.owns(pid),
        Peer::Tcp { local, peer } => owner.owns_tcp(local, peer),
    })
}

/// What a process that is not the instance's gets: the bytes answered before the connection closed.
async fn outsider(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
) -> Vec<u8> {
    let _ = stream
        .write_all(b"POST /runtime/init/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\n ")
        .await;
    let mut got = Vec::new();
    // A refused connection is closed (a reset, if the request was still unread): either ends the read.
    let _ = stream.read_to_end(&mut got).await;
    got
}

/// One instance serving `listener` (TCP when `port` is given, else the abstract Unix socket `name`): an
/// outsider is refused, then the instance's own client is admitted on every call.
async fn case(sup: &Supervisor, what: &str, prepared: Prepared, tcp: bool) {
    let name = format!("scf-peer-test-{}-{what}", std::process::id());
    let (listener, api_env) = if tcp {
        let l = Listener::from_tcp(prepared.listen_tcp(0).await.unwrap()).unwrap();
        let port = l.port().unwrap();
        (l, port.to_string())
    } else {
        let l = Listener::from_unix(prepared.listen_unix(&name).await.unwrap()).unwrap();
        (l, format!("@{name}"))
    };
    let api = ApiHandle::serve_admitting(
        listener,
        Dialect::Scf,
        LambdaIdentity::default(),
        Some(admit(&prepared)),
    );

    let refused = if tcp {
        let port: u16 = api_env.parse().unwrap();
        outsider(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        )
        .await
    } else {
        use std::os::linux::net::SocketAddrExt as _;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let s = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
        s.set_nonblocking(true).unwrap();
        outsider(tokio::net::UnixStream::from_std(s).unwrap()).await
    };
    assert_eq!(
        String::from_utf8_lossy(&refused),
        "",
        "{what}: a process outside the instance was answered"
    );

    let p = sup
        .spawn(
            SpawnSpec {
                program: "/bin/sh".into(),
                args: vec!["-c".into(), "exec python3 -c \"$CLIENT\"".into()],
                cwd: "/".into(),
                env: vec![("CLIENT".into(), CLIENT.into()), ("API".into(), api_env)],
                visible: vec![],
                hidden: vec![],
            },
            prepared,
        )
        .await
        .unwrap();
    // The instance's init/ready is the first that counts: the outsider's never reached the server. An
    // instance refused would end with a Python error instead.
    let ready = tokio::select! {
        biased;
        r = api.ready() => r,
        e = p.exited() => panic!("{what}: the instance ended first ({}): {:?}", e.describe(), p.output().take_lines(true)),
    };
    assert!(
        ready.is_some_and(|r| r.init_error.is_none()),
        "{what}: the instance's init/ready"
    );
    let meta = InvocationMeta {
        request_id: format!("req-{what}"),
        memory_limit_in_mb: 64,
        time_limit_in_ms: 3000,
    };
    let reply = api
        .dispatch(meta, Bytes::from_static(b"{\"n\":1}"))
        .unwrap();
    let answer = tokio::select! {
        biased;
        a = reply => a.unwrap(),
        e = p.exited() => panic!("{what}: the instance ended first ({}): {:?}", e.describe(), p.output().take_lines(true)),
    };
    assert_eq!(
        answer,
        Answer::Response(Bytes::from_static(b"answered {\"n\":1}")),
        "{what}"
    );
    p.exited().await;
    p.output().closed(Duration::from_secs(60)).await;
    assert_eq!(
        p.output().take_lines(true),
        [
            "/runtime/init/ready 200",
            "/runtime/invocation/next 200",
            "/runtime/invocation/response 200"
        ],
        "{what}"
    );
    p.stop().await;
}

/// One test, so that the variable is set before anything reads the environment.
#[tokio::test]
async fn on_the_machines_network_only_the_instances_processes_reach_its_runtime_api() {
    // SAFETY: set before any thread of this test binary reads the environment (this is its only test).
    unsafe { std::env::set_var("SCF_LOCAL_NETNS", "off") };
    let sup = Supervisor::new(common::work_dir("peer"), common::init()).unwrap();
    assert_eq!(sup.isolation().pid_mount, Ok(()), "{:?}", sup.isolation());
    assert_eq!(
        sup.isolation().network,
        Err("SCF_LOCAL_NETNS=off".to_owned())
    );
    assert!(
        sup.describe()[1]
            .contains("runtime APIs, Unix and TCP, admit only the instance's processes"),
        "{:?}",
        sup.describe()
    );
    // A PID namespace and the instance's cgroup (this machine has cgroups: the check reads cgroup.procs).
    let prepared = sup.prepare("tcp", 64, Network::Shared).await.unwrap();
    assert!(!prepared.own_network() && prepared.cgroup_procs().is_some());
    case(&sup, "tcp", prepared, true).await;
    case(
        &sup,
        "unix",
        sup.prepare("unix", 64, Network::Shared).await.unwrap(),
        false,
    )
    .await;
    // Without a PID namespace (a debugged instance's init), still in its cgroup.
    let plain = sup.prepare_without_namespaces("plain", 64).await.unwrap();
    case(&sup, "tcp-plain", plain, true).await;

    // Without cgroups: the instance's processes are those below its init.
    let sampled =
        Supervisor::without_cgroups(common::work_dir("peer-sampled"), common::init(), "test")
            .unwrap();
    let prepared = sampled
        .prepare("sampled", 64, Network::Shared)
        .await
        .unwrap();
    assert!(prepared.cgroup_procs().is_none());
    case(&sampled, "tcp-sampled", prepared, true).await;
    let plain = sampled
        .prepare_without_namespaces("sampled-plain", 64)
        .await
        .unwrap();
    case(&sampled, "tcp-sampled-plain", plain, true).await;
}
