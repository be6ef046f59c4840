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
    pub proxy_p50_us: f64,
    pub proxy_p99_us: f64,
    /// [`CLIENTS`] clients at once, requests per second.
    pub direct_rps: f64,
    pub proxy_rps: f64,
}

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

/// `clients` connections to `addr`, each sending `n` requests to `uri` one after another: every latency
/// (µs) and the requests per second of all together.
async fn load(addr: &str, uri: &str, clients: usize, n: usize) -> anyhow::Result<(Sample, f64)> {
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
                &[],
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
    Ok((Sample(all), rps))
}

/// One client's latencies (after a tenth to warm up) and `CLIENTS` clients' requests per second, to `uri`
/// on `addr`.
async fn figures(addr: &str, uri: &str, n: usize) -> anyhow::Result<(Sample, f64)> {
    let (warm, _) = load(addr, uri, 1, n + n / 10).await?;
    let one = Sample(warm.0[n / 10..].to_vec());
    let (_, rps) = load(addr, uri, CLIENTS, n).await?;
    Ok((one, rps))
}

/// The web proxy against the same server reached directly, `n` requests per client.
pub async fn measure(root: &Path, server: Server, n: usize) -> anyhow::Result<Web> {
    let dir = std::env::temp_dir().join(format!("scf-bench-web-{}", std::process::id()));
    let f = dir.join("echo");
    std::fs::create_dir_all(&f)?;
    let command = server.command(&f)?;
    // Direct: the server as its own process, on a free port.
    let mut direct_server = Command::new(&command[0])
        .args(&command[1..])
        .env("PORT", "0")
        .env_remove("NODE_OPTIONS")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut addr = String::new();
    std::io::BufReader::new(direct_server.stdout.take().context("stdout")?).read_line(&mut addr)?;
    let direct = figures(addr.trim(), "/", n).await;
    let _ = direct_server.kill();
    let _ = direct_server.wait();
    let (direct, direct_rps) = direct?;

    // Through the platform: the same server as a web function's `scf_bootstrap`.
    std::fs::write(
        f.join("serverless.yml"),
        "component: scf\nname: echo\ninputs:\n  name: echo\n  src: ./\n  type: web\n  runtime: CustomRuntime\n  timeout: 30\n",
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
    let (root_, data, f_) = (root.to_path_buf(), dir.join("data"), f.clone());
    let (platform, front) =
        tokio::task::spawn_blocking(move || crate::scale::serve_blocking(&root_, &data, &[f_]))
            .await??;
    let proxied = figures(&front, "/web/echo/", n).await;
    crate::scale::stop(platform);
    let _ = std::fs::remove_dir_all(&dir);
    let (proxy, proxy_rps) = proxied?;
    Ok(Web {
        direct_p50_us: direct.median(),
        direct_p99_us: direct.quantile(0.99),
        proxy_p50_us: proxy.median(),
        proxy_p99_us: proxy.quantile(0.99),
        direct_rps,
        proxy_rps,
    })
}

/// The report's web-functions section: for each server, the proxy's requests per second against direct
/// (target ≥ 0.7×) and the p50 it adds (target ≤ 50 µs).
pub async fn section(r: &mut crate::Report, root: &Path, mode: crate::Mode) -> anyhow::Result<()> {
    let n = mode.pick(5000, 1000, 50);
    r.line("## Web functions: the proxy");
    r.line("");
    r.line(&format!("Each server reached directly and as a web function through `scf-local serve` (`/web/<function>/` on the front door; the instance in its own network namespace where the machine allows it). One client for latency ({n} requests after a tenth to warm up); {CLIENTS} clients at once for requests per second. Body `{{\"k\":\"v\"}}`. A proxy does at least twice its server's socket work per request (it is a server to the caller and a client to the instance) and logs each request: against the hyper server, which needs about 12 µs of CPU a request, that is the proxy's own ceiling; the Node.js server is what a function usually runs."));
    r.line("");
    r.line("| server | | direct | through the proxy | | target | |");
    r.line("|---|---|---|---|---|---|---|");
    for server in [Server::Hyper, Server::Node] {
        let w = measure(root, server, n).await?;
        let added = w.proxy_p50_us - w.direct_p50_us;
        let ratio = w.proxy_rps / w.direct_rps;
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
            "| {} | requests/s, {CLIENTS} clients | {:.0} | {:.0} | {ratio:.2}× | ≥ 0.7× | {rps_verdict} |",
            server.label(),
            w.direct_rps,
            w.proxy_rps
        ));
        r.line(&format!(
            "| | p50, one client (µs) | {:.1} | {:.1} | {added:+.1} µs | ≤ +50 µs | {p50_verdict} |",
            w.direct_p50_us, w.proxy_p50_us
        ));
        r.line(&format!(
            "| | p99, one client (µs) | {:.1} | {:.1} | {:+.1} µs | | |",
            w.direct_p99_us,
            w.proxy_p99_us,
            w.proxy_p99_us - w.direct_p99_us
        ));
    }
    r.line("");
    Ok(())
}
