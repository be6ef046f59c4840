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
pub async fn measure(root: &Path, n: usize) -> anyhow::Result<Web> {
    let me = std::env::current_exe()?;
    // Direct: the server as its own process, on a free port.
    let mut server = Command::new(&me)
        .args(["echo-server", "web"])
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut addr = String::new();
    std::io::BufReader::new(server.stdout.take().context("stdout")?).read_line(&mut addr)?;
    let direct = figures(addr.trim(), "/", n).await;
    let _ = server.kill();
    let _ = server.wait();
    let (direct, direct_rps) = direct?;

    // Through the platform: the same server as a web function's `scf_bootstrap`.
    let dir = std::env::temp_dir().join(format!("scf-bench-web-{}", std::process::id()));
    let f = dir.join("echo");
    std::fs::create_dir_all(&f)?;
    std::fs::write(
        f.join("serverless.yml"),
        "component: scf\nname: echo\ninputs:\n  name: echo\n  src: ./\n  type: web\n  runtime: CustomRuntime\n  timeout: 30\n",
    )?;
    let bootstrap = f.join("scf_bootstrap");
    std::fs::write(
        &bootstrap,
        format!("#!/bin/bash\nexec '{}' echo-server web\n", me.display()),
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

/// The report's web-functions section: the proxy's requests per second against direct (target ≥ 0.7×) and
/// the p50 it adds (target ≤ 50 µs).
pub async fn section(r: &mut crate::Report, root: &Path, mode: crate::Mode) -> anyhow::Result<()> {
    let n = mode.pick(5000, 1000, 50);
    let w = measure(root, n).await?;
    r.line("## Web functions: the proxy");
    r.line("");
    r.line(&format!("The same HTTP server (hyper, answering each request with its body) reached directly and as a web function through `scf-local serve` (`/web/<function>/` on the front door, the instance in its own network namespace where the machine allows it). One client for latency ({n} requests after a tenth to warm up); {CLIENTS} clients at once for requests per second. Body `{{\"k\":\"v\"}}`."));
    r.line("");
    let added = w.proxy_p50_us - w.direct_p50_us;
    let ratio = w.proxy_rps / w.direct_rps;
    let rps_verdict = r.target("web proxy requests/s ≥ 0.7× direct", ratio >= 0.7);
    let p50_verdict = r.target("web proxy adds ≤ 50 µs at p50", added <= 50.0);
    r.line("| | direct | through the proxy | | target | |");
    r.line("|---|---|---|---|---|---|");
    r.line(&format!(
        "| requests/s, {CLIENTS} clients | {:.0} | {:.0} | {ratio:.2}× | ≥ 0.7× | {rps_verdict} |",
        w.direct_rps, w.proxy_rps
    ));
    r.line(&format!(
        "| p50, one client (µs) | {:.1} | {:.1} | {added:+.1} µs | ≤ +50 µs | {p50_verdict} |",
        w.direct_p50_us, w.proxy_p50_us
    ));
    r.line(&format!(
        "| p99, one client (µs) | {:.1} | {:.1} | {:+.1} µs | | |",
        w.direct_p99_us,
        w.proxy_p99_us,
        w.proxy_p99_us - w.direct_p99_us
    ));
    r.line("");
    Ok(())
}
