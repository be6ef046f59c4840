//! How the platform's costs grow with the work it holds: async accept with a backlog already queued,
//! `GetFunctionLogs` by request id with many records stored, and `serve`'s start-up with many functions.
//! Each figure is compared with the same measurement at the smallest size, in the same run.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use scf_store::{LogRecord, Store};

use crate::{Mode, Sample};

/// The figures of one size.
pub struct Point {
    /// Events already queued, records already stored, or functions served.
    pub size: usize,
    /// Events accepted per second; a query's p50 in µs; start-up in ms.
    pub value: f64,
}

/// What [`measure`] found.
pub struct Scale {
    pub accept: Vec<Point>,
    pub logs: Vec<Point>,
    pub startup: Vec<Point>,
    /// Sync invocations with 1 to 400 warm instances held.
    pub warm: Vec<crate::curve::WarmPoint>,
    /// The same on one CPU, and which (`None` where the bench could not pin itself to one).
    pub warm_one_cpu: Option<(usize, Vec<crate::curve::WarmPoint>)>,
    /// API Gateway requests to a function of many APIs against one of one, on one CPU, and which (`None`
    /// where the bench could not pin itself to one).
    pub routes: Option<(usize, crate::routes::Routes)>,
    /// The platform's resident memory per idle warm instance, KB (100 instances).
    pub rss_kb_per_instance: f64,
}

/// A code directory of the native no-op function `name` in `dir`.
fn function(dir: &Path, lib: &Path, name: &str) -> anyhow::Result<PathBuf> {
    function_with(dir, lib, name, "provisioned: 0")
}

/// A code directory of the native no-op function `name` in `dir`, with `provisioned` instances started
/// ahead and kept.
pub(crate) fn provisioned_function(
    dir: &Path,
    lib: &Path,
    name: &str,
    provisioned: usize,
) -> anyhow::Result<PathBuf> {
    function_with(dir, lib, name, &format!("provisioned: {provisioned}"))
}

/// A code directory of the native no-op function `name` in `dir`, with `local` (one `inputs.local` key).
fn function_with(dir: &Path, lib: &Path, name: &str, local: &str) -> anyhow::Result<PathBuf> {
    let f = dir.join(name);
    std::fs::create_dir_all(&f)?;
    std::fs::copy(lib, f.join("libbench.so")).context("libbench.so")?;
    std::fs::write(
        f.join("serverless.yml"),
        format!(
            "inputs:\n  name: {name}\n  handler: bench.noop\n  runtime: native\n  local:\n    {local}\n"
        ),
    )?;
    Ok(f)
}

/// [`serve_blocking`] off the async runtime's thread.
async fn serve(root: &Path, data: &Path, dirs: &[PathBuf]) -> anyhow::Result<(Child, String)> {
    let (root, data, dirs) = (root.to_path_buf(), data.to_path_buf(), dirs.to_vec());
    tokio::task::spawn_blocking(move || serve_blocking(&root, &data, &dirs)).await?
}

/// `scf-local serve` on `dirs` with `data`, and its front door's address once it listens.
pub fn serve_blocking(
    root: &Path,
    data: &Path,
    dirs: &[PathBuf],
) -> anyhow::Result<(Child, String)> {
    serve_ready(root, data, dirs, 0)
}

/// `scf-local serve` on `dirs` with `data`, and its front door's address once it listens and `provisioned`
/// functions have said their provisioned instances are ready.
pub(crate) fn serve_ready(
    root: &Path,
    data: &Path,
    dirs: &[PathBuf],
    provisioned: usize,
) -> anyhow::Result<(Child, String)> {
    let (child, addr, _) = serve_until(root, data, dirs, provisioned, false)?;
    Ok((child, addr))
}

/// [`serve_blocking`] with the API Gateway listener on a free port: the platform, its front door's address
/// and the listener's (once both listen).
pub fn serve_with_apigw(
    root: &Path,
    data: &Path,
    dirs: &[PathBuf],
) -> anyhow::Result<(Child, String, String)> {
    let (child, addr, apigw) = serve_until(root, data, dirs, 0, true)?;
    Ok((child, addr, apigw.context("no apigw address")?))
}

/// [`serve_ready`], and with `apigw` the API Gateway listener on a free port, waited for too.
fn serve_until(
    root: &Path,
    data: &Path,
    dirs: &[PathBuf],
    provisioned: usize,
    apigw: bool,
) -> anyhow::Result<(Child, String, Option<String>)> {
    let mut child = Command::new(crate::bin_dir(root).join("scf-local"))
        // As users run it: memory cgroups and namespaces where the machine allows them.
        .env_remove("SCF_LOCAL_CGROUP")
        .env_remove("SCF_LOCAL_NAMESPACES")
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(data)
        .args(if apigw {
            &["--apigw-port", "0"][..]
        } else {
            &[]
        })
        .args(dirs)
        // Its request log (stdout) is not what is measured; its stderr says when it is ready.
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let (mut addr, mut ready, mut gateway) = (None, 0, None);
    for line in lines.by_ref() {
        let line = line?;
        if let Some(a) = line.strip_prefix("scf-local: listening on http://") {
            addr = Some(a.to_owned());
        } else if let Some(rest) = line.strip_prefix("scf-local: apigw listening on http://") {
            gateway = rest.split_whitespace().next().map(str::to_owned);
        } else if line.contains(" provisioned instances ready in ") {
            if !line.contains(" (see ") {
                ready += 1;
            } else {
                bail!("{line}");
            }
        }
        if let Some(a) = addr
            .as_ref()
            .filter(|_| ready >= provisioned && (!apigw || gateway.is_some()))
        {
            let a = a.clone();
            // Keep draining its stderr, so the platform never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return Ok((child, a, gateway));
        }
    }
    bail!("scf-local serve did not start")
}

/// Stops a platform as a user does (SIGTERM) and waits for it.
pub fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

/// Each of `bodies` as a request of `action` on one connection to `addr`, each answered before the next;
/// their latencies in µs.
pub(crate) async fn requests(
    addr: &str,
    action: &str,
    bodies: Vec<Bytes>,
) -> anyhow::Result<Sample> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    crate::floor::exchange(
        &mut s,
        &[
            ("x-tc-action", action),
            ("content-type", "application/json"),
        ],
        bodies,
    )
    .await
}

/// How many rounds [`accept_with_backlogs`] runs in `mode`.
pub fn backlog_rounds(mode: Mode) -> usize {
    mode.pick(5, 3, 1)
}

/// Async accepts from 16 clients at once with each of `backlogs` queued, in `rounds` rounds that take every
/// backlog in turn, each round starting at another: each backlog's median rate over the rounds, so the
/// sizes are compared at the same moments of the host, not minutes apart.
async fn accept_with_backlogs(
    root: &Path,
    lib: &Path,
    backlogs: &[usize],
    per_client: usize,
    rounds: usize,
) -> anyhow::Result<Vec<Point>> {
    let mut rates = vec![Vec::new(); backlogs.len()];
    for round in 0..rounds {
        for k in 0..backlogs.len() {
            let i = (k + round) % backlogs.len();
            rates[i].push(accept_with_backlog(root, lib, backlogs[i], per_client).await?);
        }
    }
    Ok(backlogs
        .iter()
        .zip(rates)
        .map(|(&size, r)| Point {
            size,
            value: Sample(r).median(),
        })
        .collect())
}

/// Async accepts from 16 clients at once, with `backlog` events of the same function queued before the
/// platform starts (delivered meanwhile, as a backlog is): a new store and platform.
async fn accept_with_backlog(
    root: &Path,
    lib: &Path,
    backlog: usize,
    per_client: usize,
) -> anyhow::Result<f64> {
    let dir = temp("scale-accept", backlog);
    // The queue holds the backlog and every event of the run: at its limit (100,000 by default) an accept
    // is refused, and a refusal is not what this measures.
    let limit = backlog + 16 * per_client;
    let f = function_with(&dir, lib, "noop", &format!("queueLimit: {limit}"))?;
    let data = dir.join("data");
    if backlog > 0 {
        let store = Store::open(&data)?;
        let mut waiting = Vec::with_capacity(backlog);
        for i in 0..backlog {
            let store = store.clone();
            waiting.push(tokio::spawn(async move {
                store
                    .enqueue(
                        "noop",
                        &format!("backlog-{i}"),
                        Bytes::from_static(br#"{"k":"v"}"#),
                        scf_store::now_ms(),
                        1_000_000,
                    )
                    .await
            }));
        }
        for w in waiting {
            w.await??;
        }
    }
    let (child, addr) = serve(root, &data, &[f]).await?;
    let t = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..16 {
        let addr = addr.clone();
        let bodies = vec![
            Bytes::from_static(
                br#"{"FunctionName":"noop","InvocationType":"Event","ClientContext":"{\"k\":\"v\"}"}"#
            );
            per_client
        ];
        clients.push(tokio::spawn(async move {
            requests(&addr, "Invoke", bodies).await
        }));
    }
    for c in clients {
        c.await??;
    }
    let rate = (16 * per_client) as f64 / t.elapsed().as_secs_f64();
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rate)
}

/// `scf-local serve` over a store already holding `records` log records (function `noop`, request ids
/// `req-0` …), and `queries` `GetFunctionLogs` requests by request id spread over them.
struct StoredLogs {
    child: Child,
    addr: String,
    dir: PathBuf,
    queries: Vec<Bytes>,
}

impl StoredLogs {
    async fn start(
        root: &Path,
        lib: &Path,
        records: usize,
        queries: usize,
    ) -> anyhow::Result<StoredLogs> {
        let dir = temp("scale-logs", records);
        let f = function(&dir, lib, "noop")?;
        let data = dir.join("data");
        {
            let store = Store::open(&data)?;
            for i in 0..records {
                store
                    .record_log(LogRecord {
                        function: "noop".into(),
                        request_id: format!("req-{i}"),
                        start_ms: i64::try_from(i).unwrap_or(i64::MAX),
                        duration_ms: 0.1,
                        mem_usage: 1 << 20,
                        ret_code: 0,
                        ret_msg: "null".into(),
                        log: format!("START RequestId:req-{i}\nEND RequestId:req-{i}\n"),
                        invocation_type: "RequestResponse".into(),
                        retry_num: 0,
                    })
                    .await;
            }
            // A request to the store writes every log queued before it: all of them are on disk after this.
            let _ = store.queue_len("noop").await?;
        }
        let (child, addr) = serve(root, &data, &[f]).await?;
        let step = (records / queries).max(1);
        let queries = (0..queries)
            .map(|q| {
                Bytes::from(format!(
                    r#"{{"FunctionName":"noop","FunctionRequestId":"req-{}"}}"#,
                    (q * step) % records.max(1)
                ))
            })
            .collect();
        Ok(StoredLogs {
            child,
            addr,
            dir,
            queries,
        })
    }

    fn stop(self) {
        stop(self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Rounds of the log queries, every store size in turn within each.
const LOG_ROUNDS: usize = 5;

/// `GetFunctionLogs` by request id against stores holding each of `records` log records, all served at
/// once and queried in [`LOG_ROUNDS`] rounds that take every size in turn (`queries` per size in all, one
/// client): each size's p50, µs.
async fn logs_by_request(
    root: &Path,
    lib: &Path,
    records: &[usize],
    queries: usize,
) -> anyhow::Result<Vec<Point>> {
    let mut stores = Vec::new();
    let mut started = Ok(());
    for &r in records {
        match StoredLogs::start(root, lib, r, queries).await {
            Ok(s) => stores.push(s),
            Err(e) => {
                started = Err(e);
                break;
            }
        }
    }
    let measured = async {
        started?;
        let per_round = queries.div_ceil(LOG_ROUNDS).max(1);
        let mut lat = vec![Vec::new(); stores.len()];
        for round in 0..LOG_ROUNDS {
            for (s, l) in stores.iter().zip(&mut lat) {
                let from = (round * per_round).min(s.queries.len());
                let to = ((round + 1) * per_round).min(s.queries.len());
                let q = s.queries[from..to].to_vec();
                l.extend(requests(&s.addr, "GetFunctionLogs", q).await?.0);
            }
        }
        anyhow::Ok(
            records
                .iter()
                .zip(lat)
                .map(|(&size, l)| Point {
                    size,
                    value: Sample(l).median(),
                })
                .collect(),
        )
    }
    .await;
    for s in stores {
        s.stop();
    }
    measured
}

/// The platform's resident memory per idle warm instance, KB: `serve` with `n` functions, each called once
/// (so each keeps one warm instance), against the same platform before the calls.
async fn rss_per_instance(root: &Path, lib: &Path, n: usize) -> anyhow::Result<f64> {
    let dir = temp("scale-rss", n);
    let dirs = (0..n)
        .map(|i| function(&dir, lib, &format!("f{i}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (child, addr) = serve(root, &dir.join("data"), &dirs).await?;
    // One call first, so what every platform allocates once (buffers, the store's caches) is not counted.
    let warm_up = |i: usize| {
        Bytes::from(format!(
            r#"{{"FunctionName":"f{i}","ClientContext":"{{}}"}}"#
        ))
    };
    requests(&addr, "Invoke", vec![warm_up(0)]).await?;
    let before = crate::floor::status_mb(child.id(), "VmRSS:");
    requests(&addr, "Invoke", (1..n).map(warm_up).collect()).await?;
    let after = crate::floor::status_mb(child.id(), "VmRSS:");
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);
    Ok((after - before) * 1024.0 / (n - 1) as f64)
}

/// Spawn → listening of `scf-local serve` with `n` functions, ms (no instance is started before a call).
fn startup(root: &Path, lib: &Path, n: usize) -> anyhow::Result<f64> {
    let dir = temp("scale-startup", n);
    let dirs = (0..n)
        .map(|i| function(&dir, lib, &format!("f{i}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let t = Instant::now();
    let (child, _) = serve_blocking(root, &dir.join("data"), &dirs)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ms)
}

pub(crate) fn temp(what: &str, n: usize) -> PathBuf {
    std::env::temp_dir().join(format!("scf-bench-{what}-{n}-{}", std::process::id()))
}

/// Every scale measurement, at the sizes of `mode`.
pub async fn measure(root: &Path, lib: &Path, mode: Mode) -> anyhow::Result<Scale> {
    let backlogs: &[usize] = mode.pick(&[0, 10_000, 100_000], &[0, 10_000], &[0, 100]);
    let records: &[usize] = mode.pick(&[10_000, 1_000_000], &[10_000, 100_000], &[100, 1_000]);
    let functions: &[usize] = mode.pick(&[1, 100], &[1, 100], &[1, 10]);
    // (functions, instances each): 1, 10, 100 and 400 warm instances.
    let warm: &[(usize, usize)] = mode.pick(
        &[(1, 1), (10, 1), (100, 1), (100, 4)],
        &[(1, 1), (10, 1), (100, 1), (100, 4)],
        &[(1, 1), (4, 1)],
    );
    let per_client = mode.pick(1000, 200, 20);
    let accept =
        accept_with_backlogs(root, lib, backlogs, per_client, backlog_rounds(mode)).await?;
    let logs = logs_by_request(root, lib, records, per_client).await?;
    let mut startup_ms = Vec::new();
    let starts = mode.pick(5, 5, 1);
    for &n in functions {
        // The median of five starts.
        let (root, lib) = (root.to_path_buf(), lib.to_path_buf());
        let mut runs = tokio::task::spawn_blocking(move || {
            (0..starts)
                .map(|_| startup(&root, &lib, n))
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .await??;
        runs.sort_by(f64::total_cmp);
        startup_ms.push(Point {
            size: n,
            value: runs[runs.len() / 2],
        });
    }
    let calls = mode.pick(5000, 1000, 50);
    let warm_curve = crate::curve::measure(
        root,
        lib,
        warm,
        calls,
        std::time::Duration::from_millis(mode.pick(2000, 500, 100)),
    )
    .await?;
    let warm_one_cpu = crate::curve::measure_one_cpu(root, lib, warm, calls).await?;
    let native_dir = lib.parent().context("libbench.so's directory")?;
    let routes = crate::routes::measure(
        root,
        native_dir,
        mode.pick(101, 101, 11),
        mode.pick(1000, 300, 50),
        mode.pick(7, 5, 1),
    )
    .await?;
    // The median of a few platforms: one platform's figure moves with what it allocated besides (a
    // thread of the blocking pool started meanwhile, its first pages), 43 to 67 KB in two full runs.
    let mut rss = Vec::new();
    for _ in 0..mode.pick(3, 1, 1) {
        rss.push(rss_per_instance(root, lib, mode.pick(101, 101, 11)).await?);
    }
    let rss_kb_per_instance = Sample(rss).median();
    Ok(Scale {
        accept,
        logs,
        startup: startup_ms,
        warm: warm_curve,
        warm_one_cpu,
        routes,
        rss_kb_per_instance,
    })
}
