//! Web functions: requests through the platform's proxy (`/web/<function>/…` on the front door) against the
//! same server reached directly, in the same run. The server is this program's `echo-server web` (hyper,
//! every connection served), so what differs between the two is the proxy alone.

use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;

use crate::Sample;

/// The web server a row measures.
#[derive(Clone, Copy)]
pub enum Server {
    /// This program's `echo-server web` (hyper): the proxy's own ceiling.
    Hyper,
    /// Node.js's `http` module, as a typical function's server is.
    Node,
}

impl Server {
    fn label(self) -> &'static str {
        match self {
            Server::Hyper => "hyper echo server (the proxy's ceiling)",
            Server::Node => "Node.js `http` echo server (a typical function)",
        }
    }

    /// The command that runs it: a program and its arguments.
    fn command(self, script_dir: &Path) -> anyhow::Result<Vec<String>> {
        Ok(match self {
            Server::Hyper => vec![
                std::env::current_exe()?.display().to_string(),
                "echo-server".into(),
                "web".into(),
            ],
            Server::Node => {
                let script = script_dir.join("server.js");
                std::fs::write(&script, NODE_SERVER)?;
                vec!["node".into(), script.display().to_string()]
            }
        })
    }
}

/// A Node.js server answering each request with its body, on `127.0.0.1:$PORT` (9000 when unset); prints
/// its address.
const NODE_SERVER: &str = r#"const http = require("http");
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => res.end(Buffer.concat(chunks)));
});
server.keepAliveTimeout = 60000;
server.listen(Number(process.env.PORT ?? 9000), "127.0.0.1", () => {
  const a = server.address();
  console.log(`${a.address}:${a.port}`);
});
"#;

/// What [`measure`] found.
pub struct Web {
    /// One client, each request answered before the next: p50 and p99 in µs.
    pub direct_p50_us: f64,
    pub direct_p99_us: f64,
    /// Direct, each request carrying the nine `X-Scf-*` headers the proxy adds (what the server itself
    /// spends on them), p50 µs.
    pub direct_scf_p50_us: f64,
    pub proxy_p50_us: f64,
    pub proxy_p99_us: f64,
    /// [`CLIENTS`] clients at once, requests per second: direct, and through the proxy to one instance that
    /// takes them all at once (`maxConcurrency`), as the one server process direct does.
    pub direct_rps: f64,
    pub proxy_rps: f64,
    /// The same through the proxy with one request per instance (the default), so [`CLIENTS`] server
    /// processes share the machine where direct has one.
    pub proxy_rps_per_instance: f64,
    /// CPU time per request of the server (direct) and of the platform (through the proxy, all its
    /// threads), µs, over the requests-per-second run.
    pub direct_server_cpu_us: f64,
    pub proxy_cpu_us: f64,
    /// Each round's p50 through the proxy less its p50 direct, µs (one client).
    pub added_p50_rounds: crate::Sample,
    /// Each round's requests per second through the proxy over direct ([`CLIENTS`] clients).
    pub rps_ratio_rounds: crate::Sample,
}

/// The nine headers the proxy adds to each request, with values of the lengths it gives them.
const SCF_HEADERS: [(&str, &str); 9] = [
    ("x-scf-request-id", "0a7bfad9-c3bf-468a-a4fd-84653003e9d6"),
    ("x-scf-memory", "128"),
    ("x-scf-timeout", "30000"),
    ("x-scf-version", "$LATEST"),
    ("x-scf-name", "echo"),
    ("x-scf-namespace", "default"),
    ("x-scf-region", "ap-guangzhou"),
    ("x-scf-appid", "1250000000"),
    ("x-scf-uin", "100000000001"),
];

/// Connections at once for the requests-per-second figures.
pub const CLIENTS: usize = 4;

/// `scf-bench echo-server web`: an HTTP server on `127.0.0.1:$PORT` (9000 when unset; `PORT=0` picks a
/// free port) that answers every request with its body, every connection served; prints its address.
pub async fn serve_every_connection() -> anyhow::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9000);
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    writeln!(std::io::stdout(), "{}", l.local_addr()?)?;
    std::io::stdout().flush()?;
    loop {
        let (s, _) = l.accept().await?;
        s.set_nodelay(true)?;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                |req: hyper::Request<hyper::body::Incoming>| async move {
                    let body = req.into_body().collect().await?.to_bytes();
                    Ok::<_, hyper::Error>(hyper::Response::new(Full::new(body)))
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(s), service)
                .await;
        });
    }
}

/// `clients` connections to `addr`, each sending `n` requests to `uri` with `headers` one after another:
/// every latency (µs), the requests per second of all together, and the CPU time process `pid` spent per
/// request meanwhile (µs).
async fn load(
    addr: &str,
    uri: &str,
    headers: &'static [(&'static str, &'static str)],
    clients: usize,
    n: usize,
    pid: u32,
) -> anyhow::Result<(Sample, f64, f64)> {
    let cpu0 = crate::floor::cpu_ns(pid);
    let t = Instant::now();
    let mut each = Vec::new();
    for _ in 0..clients {
        let (addr, uri) = (addr.to_owned(), uri.to_owned());
        each.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            crate::floor::exchange_at(
                &mut s,
                &uri,
                headers,
                std::iter::repeat_n(Bytes::from_static(br#"{"k":"v"}"#), n),
            )
            .await
        }));
    }
    let mut all = Vec::new();
    for c in each {
        all.extend(c.await??.0);
    }
    let rps = all.len() as f64 / t.elapsed().as_secs_f64();
    let cpu_us = (crate::floor::cpu_ns(pid) - cpu0) / 1e3 / all.len().max(1) as f64;
    Ok((Sample(all), rps, cpu_us))
}

/// Rounds in which direct and proxied runs alternate (A B A B): a shared, noisy machine changes speed
/// within seconds, and alternating lets both sides see the same moments.
const ROUNDS: usize = 3;

/// One side's figures, gathered over the rounds.
#[derive(Default)]
struct Side {
    /// One client's latencies.
    one: Vec<f64>,
    /// One client's p50, one figure a round.
    p50s: Vec<f64>,
    /// [`CLIENTS`] clients' requests per second, one figure a round.
    rps: Vec<f64>,
    /// CPU time of the counted process over the [`CLIENTS`]-client runs, µs per request.
    cpu_us: Vec<f64>,
}

impl Side {
    /// One round: `n` requests from one client, then `n` from each of [`CLIENTS`] clients.
    async fn round(
        &mut self,
        addr: &str,
        uri: &str,
        headers: &'static [(&'static str, &'static str)],
        n: usize,
        pid: u32,
    ) -> anyhow::Result<()> {
        let (one, _, _) = load(addr, uri, headers, 1, n, pid).await?;
        self.p50s.push(one.median());
        self.one.extend(one.0);
        let (_, rps, cpu_us) = load(addr, uri, headers, CLIENTS, n, pid).await?;
        self.rps.push(rps);
        self.cpu_us.push(cpu_us);
        Ok(())
    }
}

/// A web function `name` in `dir` whose `scf_bootstrap` runs `server` (from its own code directory, the
/// only one its instances see), each instance taking up to `per_instance` requests at once: its directory
/// and the server's command.
fn web_function(
    dir: &Path,
    name: &str,
    server: Server,
    per_instance: usize,
) -> anyhow::Result<(std::path::PathBuf, Vec<String>)> {
    let f = dir.join(name);
    std::fs::create_dir_all(&f)?;
    let command = server.command(&f)?;
    let concurrency = if per_instance > 1 {
        format!(
            "  instanceConcurrencyConfig:\n    enable: true\n    maxConcurrency: {per_instance}\n"
        )
    } else {
        String::new()
    };
    std::fs::write(
        f.join("serverless.yml"),
        format!(
            "component: scf\nname: {name}\ninputs:\n  name: {name}\n  src: ./\n  type: web\n  runtime: CustomRuntime\n  timeout: 30\n{concurrency}"
        ),
    )?;
    let bootstrap = f.join("scf_bootstrap");
    let quoted: Vec<String> = command.iter().map(|c| format!("'{c}'")).collect();
    std::fs::write(
        &bootstrap,
        format!("#!/bin/bash\nexec {}\n", quoted.join(" ")),
    )?;
    std::fs::set_permissions(
        &bootstrap,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    Ok((f, command))
}

/// The web proxy against the same server reached directly, both up at once and measured in alternating
/// rounds (`n` requests per client in all, after a tenth to warm up; every client warms up, so through
/// the proxy each has its instance started and no cold start is measured).
pub async fn measure(root: &Path, server: Server, n: usize) -> anyhow::Result<Web> {
    let dir = std::env::temp_dir().join(format!("scf-bench-web-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // Through the platform: the same server as two web functions' `scf_bootstrap`, one instance taking every
    // client at once, and one request per instance.
    let (echo, command) = web_function(&dir, "echo", server, CLIENTS)?;
    let (echo1, _) = web_function(&dir, "echo1", server, 1)?;
    let functions = [echo, echo1];
    // Direct: the server as its own process, on a free port.
    let mut direct_server = Command::new(&command[0])
        .args(&command[1..])
        .env("PORT", "0")
        .env_remove("NODE_OPTIONS")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut addr = String::new();
    std::io::BufReader::new(direct_server.stdout.take().context("stdout")?).read_line(&mut addr)?;
    let (root_, data) = (root.to_path_buf(), dir.join("data"));
    let served = tokio::task::spawn_blocking(move || {
        crate::scale::serve_blocking(&root_, &data, &functions)
    })
    .await?;
    let measured = match &served {
        Ok((platform, front)) => {
            alternate(addr.trim(), direct_server.id(), front, platform.id(), n).await
        }
        Err(e) => Err(anyhow::anyhow!("scf-local serve: {e}")),
    };
    let _ = direct_server.kill();
    let _ = direct_server.wait();
    if let Ok((platform, _)) = served {
        crate::scale::stop(platform);
    }
    let _ = std::fs::remove_dir_all(&dir);
    measured
}

/// The median of `v` (NaN when empty).
fn median(v: &[f64]) -> f64 {
    Sample(v.to_vec()).median()
}

/// [`measure`]'s rounds: the server at `direct` (process `direct_pid`), and through the proxy at `front`
/// (the platform, process `platform_pid`).
async fn alternate(
    direct: &str,
    direct_pid: u32,
    front: &str,
    platform_pid: u32,
    n: usize,
) -> anyhow::Result<Web> {
    const PROXIED: &str = "/web/echo/";
    const PER_INSTANCE: &str = "/web/echo1/";
    let per_round = (n / ROUNDS).max(1);
    // Warm-up: every client on every side.
    load(direct, "/", &[], CLIENTS, n / 10 + 1, direct_pid).await?;
    load(front, PROXIED, &[], CLIENTS, n / 10 + 1, platform_pid).await?;
    load(front, PER_INSTANCE, &[], CLIENTS, n / 10 + 1, platform_pid).await?;
    let (mut d, mut p, mut scf) = (Side::default(), Side::default(), Vec::new());
    let mut per_instance = Vec::new();
    for _ in 0..ROUNDS {
        d.round(direct, "/", &[], per_round, direct_pid).await?;
        p.round(front, PROXIED, &[], per_round, platform_pid)
            .await?;
        let (_, rps, _) = load(front, PER_INSTANCE, &[], CLIENTS, per_round, platform_pid).await?;
        per_instance.push(rps);
        let (with_scf, _, _) = load(direct, "/", &SCF_HEADERS, 1, per_round, direct_pid).await?;
        scf.extend(with_scf.0);
    }
    let each_round = |f: fn(f64, f64) -> f64, a: &[f64], b: &[f64]| {
        Sample(a.iter().zip(b).map(|(a, b)| f(*a, *b)).collect())
    };
    let added_p50_rounds = each_round(|p, d| p - d, &p.p50s, &d.p50s);
    let rps_ratio_rounds = each_round(|p, d| p / d, &p.rps, &d.rps);
    let (direct_one, proxy_one) = (Sample(d.one), Sample(p.one));
    Ok(Web {
        direct_p50_us: direct_one.median(),
        direct_p99_us: direct_one.quantile(0.99),
        direct_scf_p50_us: Sample(scf).median(),
        proxy_p50_us: proxy_one.median(),
        proxy_p99_us: proxy_one.quantile(0.99),
        direct_rps: median(&d.rps),
        proxy_rps: median(&p.rps),
        proxy_rps_per_instance: median(&per_instance),
        direct_server_cpu_us: median(&d.cpu_us),
        proxy_cpu_us: median(&p.cpu_us),
        added_p50_rounds,
        rps_ratio_rounds,
    })
}

/// The rounds' lowest and highest of `added` (µs), in words.
fn added_range(added: &Sample) -> String {
    format!(
        "rounds {:+.1} to {:+.1} µs",
        added.quantile(0.0),
        added.quantile(1.0)
    )
}

/// The report's web-functions section: for each server, the proxy's requests per second against direct
/// (target ≥ 0.7×) and the p50 it adds (target ≤ 50 µs).
pub async fn section(r: &mut crate::Report, root: &Path, mode: crate::Mode) -> anyhow::Result<()> {
    let n = mode.pick(5000, 1000, 50);
    r.line("## Web functions: the proxy");
    r.line("");
    r.line(&format!("Each server reached directly and as a web function through `scf-local serve` (`/web/<function>/` on the front door; the instance in its own network namespace where the machine allows it), both up at once and measured in {ROUNDS} alternating rounds after every client warmed up (no cold start is measured). One client for latency ({n} requests in all); {CLIENTS} clients at once for requests per second (the median round), through the proxy to one instance that takes them all at once (`instanceConcurrencyConfig`, `maxConcurrency: {CLIENTS}`), as the one server process reached directly takes them. Beside it, a second function with one request per instance (the default), where {CLIENTS} server processes share the machine that direct gives to one. Body `{{\"k\":\"v\"}}`. A proxy does at least twice its server's socket work per request (it is a server to the caller and a client to the instance) and logs each request, on the platform's one event-loop thread, with the caller, the proxy and the server sharing the machine's cores: against the hyper server, which needs about 12 µs of CPU a request, that is the proxy's own ceiling; the Node.js server is what a function usually runs. The targets are on the median round's figure, direct and proxied taken in the same round (the p50 the proxy adds, and the ratio of requests per second), with the rounds' range beside it; the p50 and p99 columns are of every round's requests together. The direct p50 with the nine `X-Scf-*` headers the proxy adds is what the server itself spends on them; the CPU row is what bounds requests per second."));
    r.line("");
    r.line("| server | | direct | through the proxy | | target | |");
    r.line("|---|---|---|---|---|---|---|");
    for server in [Server::Hyper, Server::Node] {
        let w = measure(root, server, n).await?;
        // The verdicts on the median round's figure, as the bench's other targets: the direct and proxied
        // runs of a round are seconds apart, and the machine's speed moves between rounds.
        let (added, ratio) = (w.added_p50_rounds.median(), w.rps_ratio_rounds.median());
        let what = match server {
            Server::Hyper => "hyper",
            Server::Node => "Node.js",
        };
        let rps_verdict = r.target(
            &format!("web proxy requests/s ≥ 0.7× direct ({what} server)"),
            ratio >= 0.7,
        );
        let p50_verdict = r.target(
            &format!("web proxy adds ≤ 50 µs at p50 ({what} server)"),
            added <= 50.0,
        );
        r.line(&format!(
            "| {} | requests/s, {CLIENTS} clients | {:.0} | {:.0} | {ratio:.2}× ({}) | ≥ 0.7× | {rps_verdict} |",
            server.label(),
            w.direct_rps,
            w.proxy_rps,
            w.rps_ratio_rounds.range()
        ));
        r.line(&format!(
            "| | requests/s, {CLIENTS} clients, one request per instance ({CLIENTS} instances) | | {:.0} | {:.2}× | | |",
            w.proxy_rps_per_instance,
            w.proxy_rps_per_instance / w.direct_rps
        ));
        r.line(&format!(
            "| | p50, one client (µs) | {:.1} | {:.1} | {added:+.1} µs ({}) | ≤ +50 µs | {p50_verdict} |",
            w.direct_p50_us,
            w.proxy_p50_us,
            added_range(&w.added_p50_rounds)
        ));
        r.line(&format!(
            "| | p99, one client (µs) | {:.1} | {:.1} | {:+.1} µs | | |",
            w.direct_p99_us,
            w.proxy_p99_us,
            w.proxy_p99_us - w.direct_p99_us
        ));
        r.line(&format!(
            "| | p50 direct with the nine `X-Scf-*` headers (µs) | {:.1} | | {:+.1} µs of the added | | |",
            w.direct_scf_p50_us,
            w.direct_scf_p50_us - w.direct_p50_us
        ));
        r.line(&format!(
            "| | CPU per request, {CLIENTS} clients (µs): the server direct; the platform through the proxy | {:.1} | {:.1} | | | |",
            w.direct_server_cpu_us, w.proxy_cpu_us
        ));
    }
    r.line("");
    Ok(())
}
