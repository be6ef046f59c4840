//! The physical floor (a bare HTTP/1.1 round trip between two processes) and the platform process's own
//! figures (front-door round trip, resident memory).

use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::Sample;

/// `scf-bench echo-server tcp|unix:PATH|web|synced:FILE`: answers every request with its body; prints where
/// it listens.
pub fn echo_server(kind: Option<&str>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if kind == Some("web") {
        return rt.block_on(crate::web::serve_every_connection());
    }
    if let Some(file) = kind.and_then(|k| k.strip_prefix("synced:")) {
        return rt.block_on(serve_synced(Path::new(file)));
    }
    rt.block_on(async move {
        let service = || {
            hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                let body = req.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>(hyper::Response::new(Full::new(body)))
            })
        };
        match kind {
            Some(k) if k.starts_with("unix:") => {
                let path = &k["unix:".len()..];
                let l = tokio::net::UnixListener::bind(path)?;
                writeln!(std::io::stdout(), "{path}")?;
                std::io::stdout().flush()?;
                let (s, _) = l.accept().await?;
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), service())
                    .await;
            }
            _ => {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                writeln!(std::io::stdout(), "{}", l.local_addr()?)?;
                std::io::stdout().flush()?;
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), service())
                    .await;
            }
        }
        Ok(())
    })
}

/// A bare durable accept, the design's floor: over loopback TCP, each request's body handed to a writer
/// thread that appends it to `file` and `fdatasync`s it, the answer (the body) sent once that thread says
/// so; the event loop never waits on the disk. One connection is served.
async fn serve_synced(file: &Path) -> anyhow::Result<()> {
    type Job = (Bytes, tokio::sync::oneshot::Sender<Bytes>);
    let mut f = std::fs::File::create(file)?;
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    std::thread::spawn(move || -> std::io::Result<()> {
        for (body, done) in rx {
            f.write_all(&body)?;
            f.sync_data()?;
            let _ = done.send(body);
        }
        Ok(())
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    writeln!(std::io::stdout(), "{}", l.local_addr()?)?;
    std::io::stdout().flush()?;
    let (s, _) = l.accept().await?;
    s.set_nodelay(true)?;
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let tx = tx.clone();
        async move {
            let body = req.into_body().collect().await?.to_bytes();
            let (done, synced) = tokio::sync::oneshot::channel();
            tx.send((body, done))
                .map_err(|_| anyhow::anyhow!("the writer thread stopped"))?;
            let body = synced.await.context("the writer thread stopped")?;
            anyhow::Ok(hyper::Response::new(Full::new(body)))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(s), service)
        .await;
    Ok(())
}

/// One client's requests to [`serve_synced`] (a new server process, its file in `dir`), counted as the
/// platform's accepts are (`n` and the tenth more that warm up): accepts per second, and the server's CPU
/// time per request, µs.
async fn synced_accepts(dir: &Path, n: usize) -> anyhow::Result<(f64, f64)> {
    let file = dir.join("synced-floor");
    let (mut child, addr) = spawn_echo(&format!("synced:{}", file.display()))?;
    let mut s = tcp_client(&addr).await?;
    let cpu0 = cpu_ns(child.id());
    let t = Instant::now();
    let _ = round_trips(&mut s, n, &[], &[b'x'; 100]).await?;
    let per_s = with_warm_up(n) as f64 / t.elapsed().as_secs_f64();
    let cpu_us = (cpu_ns(child.id()) - cpu0) / 1e3 / with_warm_up(n) as f64;
    drop(s);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&file);
    Ok((per_s, cpu_us))
}

/// How many requests [`round_trips`] sends first, unmeasured, to warm up before `n` measured ones: a tenth.
fn warm_up(n: usize) -> usize {
    n / 10
}

/// How many requests [`round_trips`] sends for `n` measured ones, the warm-up's included.
pub(crate) fn with_warm_up(n: usize) -> usize {
    n + warm_up(n)
}

async fn round_trips(
    sender: &mut SendRequest<Full<Bytes>>,
    n: usize,
    headers: &[(&str, &str)],
    body: &'static [u8],
) -> anyhow::Result<Sample> {
    round_trips_at(sender, "/", n, headers, body).await
}

/// `n` and a tenth more POSTs of `body` to `uri`, each answered before the next; the latencies of the `n`
/// after the tenth that warms up, µs.
pub(crate) async fn round_trips_at(
    sender: &mut SendRequest<Full<Bytes>>,
    uri: &str,
    n: usize,
    headers: &[(&str, &str)],
    body: &'static [u8],
) -> anyhow::Result<Sample> {
    let all = exchange_at(
        sender,
        uri,
        headers,
        std::iter::repeat_n(Bytes::from_static(body), with_warm_up(n)),
    )
    .await?;
    Ok(Sample(all.0[warm_up(n)..].to_vec()))
}

/// POSTs each of `bodies` with `headers` on `sender`, each answered (and its body read) before the next;
/// their latencies in µs.
pub async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    headers: &[(&str, &str)],
    bodies: impl IntoIterator<Item = Bytes>,
) -> anyhow::Result<Sample> {
    exchange_at(sender, "/", headers, bodies).await
}

/// [`exchange`] to `uri`.
pub async fn exchange_at(
    sender: &mut SendRequest<Full<Bytes>>,
    uri: &str,
    headers: &[(&str, &str)],
    bodies: impl IntoIterator<Item = Bytes>,
) -> anyhow::Result<Sample> {
    let mut out = Vec::new();
    for body in bodies {
        let mut b = hyper::Request::builder()
            .method("POST")
            .uri(uri)
            .header("host", "bench");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(body))?;
        let t = Instant::now();
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        out.push(t.elapsed().as_secs_f64() * 1e6);
        refused(uri, status, &body)?;
    }
    Ok(Sample(out))
}

/// An answer that is not what a measurement counts: a status other than 2xx, a TencentCloud API error
/// (`Response.Error`, e.g. a queue full), or a function's error (`Response.Result.InvokeResult` not 0).
/// Timed answers that failed would be counted as work done.
fn refused(uri: &str, status: hyper::StatusCode, body: &[u8]) -> anyhow::Result<()> {
    let text = || String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    if !status.is_success() {
        anyhow::bail!("{uri} answered {status}: {}", text());
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(());
    };
    let response = &v["Response"];
    if !response["Error"].is_null()
        || response["Result"]["InvokeResult"]
            .as_i64()
            .is_some_and(|r| r != 0)
    {
        anyhow::bail!("{uri} answered an error: {}", text());
    }
    Ok(())
}

/// A kept-alive HTTP/1.1 connection to `addr` over loopback TCP (`TCP_NODELAY`), its driver spawned.
async fn tcp_client(addr: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(s)
}

pub(crate) fn spawn_echo(arg: &str) -> anyhow::Result<(std::process::Child, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("echo-server")
        .arg(arg)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    Ok((child, line.trim().to_owned()))
}

/// What [`measure`] found.
pub struct Floor {
    /// Round trips over a Unix socket and over TCP, µs.
    pub uds: Sample,
    pub tcp: Sample,
    /// The echo server's CPU time per round trip, µs: what answering one small HTTP request costs a
    /// process that does nothing else.
    pub uds_server_cpu_us: f64,
    pub tcp_server_cpu_us: f64,
}

/// Round trips of a small request to an echo server in another process, over a Unix socket and over TCP,
/// and the echo server's CPU per round trip.
pub async fn measure(n: usize) -> anyhow::Result<Floor> {
    let (uds, uds_server_cpu_us) = unix_round_trips(n).await?;
    let (tcp, tcp_server_cpu_us) = tcp_round_trips(n).await?;
    Ok(Floor {
        uds,
        tcp,
        uds_server_cpu_us,
        tcp_server_cpu_us,
    })
}

/// `n` round trips of a small request to an echo server in another process over a Unix socket (µs), and
/// the server's CPU per round trip (µs).
pub async fn unix_round_trips(n: usize) -> anyhow::Result<(Sample, f64)> {
    let path = std::env::temp_dir().join(format!("scf-bench-echo-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (mut uds_child, where_uds) = spawn_echo(&format!("unix:{}", path.display()))?;
    let stream = tokio::net::UnixStream::connect(&where_uds).await?;
    let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let cpu0 = cpu_ns(uds_child.id());
    let uds = round_trips(&mut s, n, &[], br#"{"k":"v"}"#).await?;
    let uds_cpu = (cpu_ns(uds_child.id()) - cpu0) / 1e3 / with_warm_up(n) as f64;
    drop(s);
    let _ = uds_child.kill();
    let _ = uds_child.wait();
    let _ = std::fs::remove_file(&path);
    Ok((uds, uds_cpu))
}

/// The same over loopback TCP (`TCP_NODELAY`).
pub async fn tcp_round_trips(n: usize) -> anyhow::Result<(Sample, f64)> {
    let (mut tcp_child, addr) = spawn_echo("tcp")?;
    let mut s = tcp_client(&addr).await?;
    let cpu0 = cpu_ns(tcp_child.id());
    let tcp = round_trips(&mut s, n, &[], br#"{"k":"v"}"#).await?;
    let tcp_cpu = (cpu_ns(tcp_child.id()) - cpu0) / 1e3 / with_warm_up(n) as f64;
    let _ = tcp_child.kill();
    let _ = tcp_child.wait();
    Ok((tcp, tcp_cpu))
}

/// `clients` clients at once, each on its own connection sending `per` async `Invoke`s (and a tenth more to
/// warm up) and waiting for each ack: the events sent and the rate they were accepted at, per second.
async fn many_clients(
    addr: &str,
    clients: usize,
    per: usize,
    headers: &[(&'static str, &'static str)],
) -> anyhow::Result<(usize, f64)> {
    let t = Instant::now();
    let mut each = Vec::new();
    for _ in 0..clients {
        let addr = addr.to_owned();
        let headers = headers.to_vec();
        each.push(tokio::spawn(async move {
            let mut s = tcp_client(&addr).await?;
            round_trips(
                &mut s,
                per,
                &headers,
                br#"{"FunctionName":"noop","InvocationType":"Event","ClientContext":"{\"k\":\"v\"}"}"#,
            )
            .await
        }));
    }
    for c in each {
        c.await??;
    }
    let events = clients * with_warm_up(per);
    Ok((events, events as f64 / t.elapsed().as_secs_f64()))
}

/// What the platform process showed.
pub struct PlatformFigures {
    /// Async events accepted per second (each one committed to the queue before it is acknowledged).
    pub enqueue_per_s: f64,
    /// The same from 16 clients at once, each waiting for its acks (the median round's: each round of one
    /// client's accepts is followed by one of 16 clients').
    pub enqueue16_per_s: f64,
    /// Small writes each followed by `fdatasync`, per second, on the data directory's filesystem: the floor
    /// of one client waiting for each durable ack (the median round's).
    pub fsync_per_s: f64,
    /// One client's accepts in rounds, each after its own measure of the fsync floor.
    pub accept_rounds: Vec<AcceptRound>,
    pub idle_mb: f64,
    pub peak_mb: f64,
    /// The platform's CPU time per durable async event, accepted and delivered, µs: from one client
    /// waiting for each ack, and from 16 at once.
    pub cpu_us_per_async: f64,
    pub cpu_us_per_async16: f64,
    /// Sync calls in rounds, each just after its own measure of the path's floor.
    pub sync: SyncFigures,
}

/// The sync paths measured in turn in every round, each against the same floor: the front door's two
/// TencentCloud API actions, and a request to the function's API on the API Gateway listener (the function
/// gets the integration-request event; its `null` goes back as the body): as a table names it, and as its
/// targets do.
pub const SYNC_PATHS: [(&str, &str); 3] = [
    ("`Invoke`", "front door sync Invoke"),
    ("`InvokeFunction`", "front door sync InvokeFunction"),
    ("API Gateway `POST /noop`", "API Gateway sync request"),
];

/// One round of sync calls, and the path's floor measured just before it.
pub struct SyncRound {
    /// One TCP plus two Unix-socket round trips (p50s), µs.
    pub floor_us: f64,
    /// Per [`SYNC_PATHS`].
    pub p50_us: [f64; SYNC_PATHS.len()],
}

/// One round of one client's durable accepts, and the fsync floor measured just before it.
pub struct AcceptRound {
    pub fsync_per_s: f64,
    /// The path's floor: one TCP round trip (p50) and one `fdatasync` per event, per second.
    pub path_per_s: f64,
    /// The design's floor: a bare server whose answers wait for its writer thread's append and `fdatasync`
    /// (one client, each ack awaited), per second, and that server's CPU time per accept, µs.
    pub synced_per_s: f64,
    pub synced_cpu_us: f64,
    pub per_s: f64,
    /// Async events accepted per second from 16 clients at once, each waiting for its acks.
    pub many_per_s: f64,
}

impl PlatformFigures {
    /// One figure of every round of one client's accepts.
    pub fn accept_figure(&self, f: impl Fn(&AcceptRound) -> f64) -> Sample {
        Sample(self.accept_rounds.iter().map(f).collect())
    }

    /// Each round's accepts per second over one of its own floors.
    pub fn accept_ratios(&self, floor: fn(&AcceptRound) -> f64) -> Sample {
        self.accept_figure(|r| r.per_s / floor(r))
    }

    /// The design's floor's CPU time per accept (the median round's), µs.
    pub fn synced_cpu_us(&self) -> f64 {
        self.accept_figure(|r| r.synced_cpu_us).median()
    }

    /// The CPU floors measured in the run, µs: of a sync invocation ([`SyncFigures::cpu_floor`]), and of
    /// one client's durable async event (the bare synced server's accept, the median round's, and the two
    /// Unix-socket exchanges of its delivery).
    pub fn cpu_floors(&self) -> (f64, f64) {
        (
            self.sync.cpu_floor(),
            self.synced_cpu_us() + 2.0 * self.sync.floor.uds_server_cpu_us,
        )
    }
}

/// `n` appends of 100 bytes to a file in `dir`, each followed by `fdatasync`: how many per second.
fn fsync_rate(dir: &Path, n: usize) -> anyhow::Result<f64> {
    let path = dir.join("fsync-floor");
    let mut f = std::fs::File::create(&path)?;
    let t = Instant::now();
    for _ in 0..n {
        f.write_all(&[b'x'; 100])?;
        f.sync_data()?;
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// CPU time of every thread of process `pid` so far, ns (`/proc/PID/task/*/schedstat`).
pub fn cpu_ns(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
        })
        .sum()
}

/// A `/proc/PID/status` figure given in kB (`VmRSS:`, `VmHWM:`), in MB.
pub fn status_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)
                    .map(|v| v.trim().trim_end_matches("kB").trim().to_owned())
            })
        })
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `scf-local serve` holding one native no-op function, `noop` (with an API Gateway route `POST /noop`, after
/// as many other APIs as it was started with), and a kept-alive client on its front door and one on its API
/// Gateway listener.
pub(crate) struct NoopPlatform {
    dir: std::path::PathBuf,
    pub data: std::path::PathBuf,
    pub child: std::process::Child,
    pub addr: String,
    pub front: SendRequest<Full<Bytes>>,
    pub gateway: SendRequest<Full<Bytes>>,
}

impl NoopPlatform {
    /// Starts it (`tag` names its directory), with the `libbench.so` of `native_dir`.
    pub async fn start(root: &Path, native_dir: &Path, tag: &str) -> anyhow::Result<NoopPlatform> {
        NoopPlatform::start_with_apis(root, native_dir, tag, 0).await
    }

    /// [`NoopPlatform::start`], the function declaring `others` APIs (`POST /api<i>/{id}`) besides `/noop`.
    pub async fn start_with_apis(
        root: &Path,
        native_dir: &Path,
        tag: &str,
        others: usize,
    ) -> anyhow::Result<NoopPlatform> {
        let dir = std::env::temp_dir().join(format!("scf-bench-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(native_dir.join("libbench.so"), dir.join("libbench.so"))?;
        let mut yml = String::from(
            "inputs:\n  name: noop\n  handler: bench.noop\n  runtime: native\n  events:\n    - apigw:\n        parameters:\n          endpoints:\n",
        );
        for i in 0..others {
            yml.push_str(&format!(
                "            - path: /api{i}/{{id}}\n              method: POST\n"
            ));
        }
        yml.push_str("            - path: /noop\n              method: POST\n");
        std::fs::write(dir.join("serverless.yml"), yml)?;
        let data = dir.join("data");
        let (child, addr, apigw) = {
            let (root, data, dir) = (root.to_path_buf(), data.clone(), dir.clone());
            tokio::task::spawn_blocking(move || {
                crate::scale::serve_with_apigw(&root, &data, &[dir])
            })
            .await??
        };
        let front = tcp_client(&addr).await?;
        let gateway = tcp_client(&apigw).await?;
        Ok(NoopPlatform {
            dir,
            data,
            child,
            addr,
            front,
            gateway,
        })
    }

    /// Stops it and removes its directory.
    pub fn stop(self) {
        crate::scale::stop(self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// `rounds` rounds of sync calls, `per` calls of each of [`SYNC_PATHS`] a round, each round just after its
    /// own measure of the path's floor; and the platform's CPU time per `Invoke`.
    pub async fn sync_calls(&mut self, per: usize, rounds: usize) -> anyhow::Result<SyncFigures> {
        let invoke = [
            ("x-tc-action", "Invoke"),
            ("content-type", "application/json"),
        ];
        let invoke_function = [
            ("x-tc-action", "InvokeFunction"),
            ("content-type", "application/json"),
        ];
        // Calls in rounds, each after its own measure of the floor: a ratio of the two compares figures
        // taken a moment apart.
        let (rounds, per) = (rounds.max(1), per.max(1));
        let (mut sync_rounds, mut lat, mut uds, mut tcp) = (
            Vec::new(),
            std::array::from_fn::<_, { SYNC_PATHS.len() }, _>(|_| Vec::new()),
            Vec::new(),
            Vec::new(),
        );
        let (mut cpu, mut uds_cpu, mut tcp_cpu) = (0.0, 0.0, 0.0);
        let pid = self.child.id();
        for k in 0..rounds {
            let fl = measure(per).await?;
            // The paths in turn, each round starting at another: none is always the one nearest the floor.
            let mut paths: [Sample; SYNC_PATHS.len()] = std::array::from_fn(|_| Sample(Vec::new()));
            for i in (0..SYNC_PATHS.len()).map(|i| (i + k) % SYNC_PATHS.len()) {
                paths[i] = match i {
                    0 => {
                        let cpu0 = cpu_ns(pid);
                        let round = round_trips(
                            &mut self.front,
                            per,
                            &invoke,
                            br#"{"FunctionName":"noop","ClientContext":"{\"k\":\"v\"}"}"#,
                        )
                        .await?;
                        cpu += cpu_ns(pid) - cpu0;
                        round
                    }
                    1 => {
                        round_trips(
                            &mut self.front,
                            per,
                            &invoke_function,
                            br#"{"FunctionName":"noop","Event":"{\"k\":\"v\"}"}"#,
                        )
                        .await?
                    }
                    _ => {
                        round_trips_at(&mut self.gateway, "/noop", per, &[], br#"{"k":"v"}"#)
                            .await?
                    }
                };
            }
            sync_rounds.push(SyncRound {
                floor_us: fl.tcp.median() + 2.0 * fl.uds.median(),
                p50_us: std::array::from_fn(|i| paths[i].median()),
            });
            for (all, path) in lat.iter_mut().zip(paths) {
                all.extend(path.0);
            }
            uds.extend(fl.uds.0);
            tcp.extend(fl.tcp.0);
            uds_cpu += fl.uds_server_cpu_us / rounds as f64;
            tcp_cpu += fl.tcp_server_cpu_us / rounds as f64;
        }
        Ok(SyncFigures {
            rounds: sync_rounds,
            floor: Floor {
                uds: Sample(uds),
                tcp: Sample(tcp),
                uds_server_cpu_us: uds_cpu,
                tcp_server_cpu_us: tcp_cpu,
            },
            lat: lat.map(Sample),
            cpu_us_per_call: cpu / 1e3 / (rounds * with_warm_up(per)) as f64,
            requests: SYNC_PATHS.len() * rounds * with_warm_up(per),
        })
    }
}

/// What [`NoopPlatform::sync_calls`] measured.
pub struct SyncFigures {
    /// Each round's p50s, and the path's floor measured just before it.
    pub rounds: Vec<SyncRound>,
    /// The floor's samples of every round together, and its server's CPU per round trip averaged.
    pub floor: Floor,
    /// The calls' latencies of every round together, µs, per [`SYNC_PATHS`].
    pub lat: [Sample; SYNC_PATHS.len()],
    /// The platform's CPU time per sync `Invoke` (all its threads), µs.
    pub cpu_us_per_call: f64,
    /// Calls made, warm-ups included.
    pub requests: usize,
}

impl SyncFigures {
    /// Each round's p50 of [`SYNC_PATHS`]`[path]` over its own floor.
    pub fn ratios(&self, path: usize) -> Sample {
        Sample(
            self.rounds
                .iter()
                .map(|r| r.p50_us[path] / r.floor_us)
                .collect(),
        )
    }

    /// The CPU floor of a sync invocation, µs: the three exchanges a bare echo server answers, one over TCP
    /// and two over a Unix socket.
    pub fn cpu_floor(&self) -> f64 {
        self.floor.tcp_server_cpu_us + 2.0 * self.floor.uds_server_cpu_us
    }
}

/// The platform's figures: its memory, its sync calls against their floor ([`NoopPlatform::sync_calls`]),
/// then one client's durable accepts and 16 clients' in rounds, each round after its own measure of the
/// fsync floor and the design's.
pub async fn platform_rss(
    root: &Path,
    native_dir: &Path,
    n: usize,
    rounds: usize,
) -> anyhow::Result<PlatformFigures> {
    let mut p = NoopPlatform::start(root, native_dir, "fn").await?;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let idle_mb = status_mb(p.child.id(), "VmRSS:");
    let rounds = rounds.max(1);
    let per = (n / rounds).max(1);
    let sync = p.sync_calls(per, rounds).await?;
    let async_headers = [
        ("x-tc-action", "Invoke"),
        ("content-type", "application/json"),
    ];
    let store = scf_store::Store::open_existing(&p.data)?;
    let drained = || async {
        let start = Instant::now();
        while store.queue_len("noop").await? > 0 && start.elapsed().as_secs() < 120 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        anyhow::Ok(())
    };
    // One client in rounds, each after its own measure of the fsync floor (on a quiet platform: the last
    // round's events all delivered).
    let (mut accept_rounds, mut async_cpu_ns, mut async_events) = (Vec::new(), 0.0, 0);
    let (mut many_cpu_ns, mut many_events) = (0.0, 0);
    for _ in 0..rounds {
        let fsync_per_s = {
            let data = p.data.clone();
            tokio::task::spawn_blocking(move || fsync_rate(&data, per)).await??
        };
        let tcp_us = tcp_round_trips(per).await?.0.median();
        let path_per_s = 1.0 / (1.0 / fsync_per_s + tcp_us / 1e6);
        let (synced_per_s, synced_cpu_us) = synced_accepts(&p.data, per).await?;
        let cpu0 = cpu_ns(p.child.id());
        let t = Instant::now();
        let _ = round_trips(
            &mut p.front,
            per,
            &async_headers,
            br#"{"FunctionName":"noop","InvocationType":"Event","ClientContext":"{\"k\":\"v\"}"}"#,
        )
        .await?;
        let per_s = with_warm_up(per) as f64 / t.elapsed().as_secs_f64();
        // Every event of the round delivered (the queue empty), then the platform's CPU per event: its
        // accept (one fsync each: one client waits for each ack), its delivery and its log.
        drained().await?;
        async_cpu_ns += cpu_ns(p.child.id()) - cpu0;
        async_events += with_warm_up(per);
        // Then 16 clients at once, each on its own connection and waiting for its acks (group commit's case),
        // and their events delivered: the platform's CPU per event with the accepts' fsyncs shared.
        let cpu0 = cpu_ns(p.child.id());
        let (events, many_per_s) = many_clients(&p.addr, 16, per, &async_headers).await?;
        drained().await?;
        many_cpu_ns += cpu_ns(p.child.id()) - cpu0;
        many_events += events;
        accept_rounds.push(AcceptRound {
            fsync_per_s,
            path_per_s,
            synced_per_s,
            synced_cpu_us,
            per_s,
            many_per_s,
        });
    }
    let cpu_us_per_async = async_cpu_ns / 1e3 / async_events as f64;
    let cpu_us_per_async16 = many_cpu_ns / 1e3 / many_events as f64;
    drop(store);
    let peak_mb = status_mb(p.child.id(), "VmHWM:");
    p.stop();
    let median =
        |f: fn(&AcceptRound) -> f64| Sample(accept_rounds.iter().map(f).collect()).median();
    let (enqueue_per_s, fsync_per_s, enqueue16_per_s) = (
        median(|r| r.per_s),
        median(|r| r.fsync_per_s),
        median(|r| r.many_per_s),
    );
    Ok(PlatformFigures {
        enqueue_per_s,
        fsync_per_s,
        accept_rounds,
        enqueue16_per_s,
        idle_mb,
        peak_mb,
        cpu_us_per_async,
        cpu_us_per_async16,
        sync,
    })
}

/// `scf-bench --front-door`: only the platform's front-door figures (for profiling it), on stderr.
pub async fn print_front_door(root: &Path) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("scf-bench-fd-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(
        crate::bin_dir(root).join("libbench.so"),
        dir.join("libbench.so"),
    )?;
    let f = platform_rss(root, &dir, 3000, 5).await?;
    let fl = &f.sync.floor;
    let (uds, tcp) = (&fl.uds, &fl.tcp);
    let path = tcp.median() + 2.0 * uds.median();
    let mut err = std::io::stderr();
    for (i, (name, _)) in SYNC_PATHS.iter().enumerate() {
        let (lat, ratios) = (&f.sync.lat[i], f.sync.ratios(i));
        let _ = writeln!(
            err,
            "{name}: p50 {:.1} µs p99 {:.1} µs (p99/p50 {:.2}); over its path's floor, the median of {} rounds' {:.2} (range {})",
            lat.median(),
            lat.quantile(0.99),
            lat.quantile(0.99) / lat.median(),
            f.sync.rounds.len(),
            ratios.median(),
            ratios.range(),
        );
    }
    let accepts = f.accept_ratios(|r| r.fsync_per_s);
    let (cpu_floor, async_cpu_floor) = f.cpu_floors();
    let synced = f.accept_ratios(|r| r.synced_per_s);
    let _ = writeln!(
        err,
        "the path's floor (TCP {:.1} + 2 × Unix {:.1}) {path:.1} µs; its own p99/p50 in this run: TCP {:.2}, Unix {:.2}\n\
             durable async accept: one client {:.0}/s, 16 clients {:.0}/s; fsync floor {:.0}/s; one client over the floor, the median of {} rounds' {:.2} (range {}); over the design's floor (a bare server whose answers wait for its writer thread's fsync) {:.2} (range {})\n\
             platform CPU per sync invocation {:.1} µs ({:.2}× the CPU floor: a bare echo server's TCP {:.1} + 2 × Unix {:.1} µs), per async event {:.1} µs ({:.2}× its CPU floor, the synced server's accept + 2 × Unix: {:.1} µs; 16 clients: {:.1} µs, {:.2}× the exchanges' floor)",
        tcp.median(),
        uds.median(),
        tcp.quantile(0.99) / tcp.median(),
        uds.quantile(0.99) / uds.median(),
        f.enqueue_per_s,
        f.enqueue16_per_s,
        f.fsync_per_s,
        f.accept_rounds.len(),
        accepts.median(),
        accepts.range(),
        synced.median(),
        synced.range(),
        f.sync.cpu_us_per_call,
        f.sync.cpu_us_per_call / cpu_floor,
        fl.tcp_server_cpu_us,
        fl.uds_server_cpu_us,
        f.cpu_us_per_async,
        f.cpu_us_per_async / async_cpu_floor,
        async_cpu_floor,
        f.cpu_us_per_async16,
        f.cpu_us_per_async16 / cpu_floor
    );
    if let Some((cpu, pinned)) = crate::one_cpu::sync_calls(root, &dir, 600, 5).await? {
        for (i, (name, _)) in SYNC_PATHS.iter().enumerate() {
            let (lat, ratios) = (&pinned.lat[i], pinned.ratios(i));
            let _ = writeln!(
                err,
                "on CPU {cpu} alone: {name} p50 {:.1} µs (p99/p50 {:.2}), over its floor there {:.2} (range {})",
                lat.median(),
                lat.quantile(0.99) / lat.median(),
                ratios.median(),
                ratios.range()
            );
        }
        let _ = writeln!(
            err,
            "on CPU {cpu} alone: platform CPU per sync invocation {:.1} µs ({:.2}× the CPU floor there, {:.1} µs)",
            pinned.cpu_us_per_call,
            pinned.cpu_us_per_call / pinned.cpu_floor(),
            pinned.cpu_floor()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
