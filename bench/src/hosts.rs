//! Running one handler many ways: our hosts and AWS's clients, cold, warm and concurrently, and the bare
//! processes and codecs they are compared with.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use scf_platform::config::{FunctionConfig, Overrides};
use scf_platform::{EventInstance, Platform};

use crate::{Sample, floor, ms};

/// One way of running a handler: ours or a peer's.
#[derive(Clone)]
pub(crate) struct Runner {
    pub(crate) label: String,
    pub(crate) language: &'static str,
    pub(crate) dir: PathBuf,
    pub(crate) runtime: &'static str,
    pub(crate) dialect: Option<&'static str>,
    /// For peers: the command, with `{handler}` for the handler name.
    pub(crate) command: Option<String>,
    /// `FILE.` prefix of the handler names.
    pub(crate) file: &'static str,
}

/// Our three hosts on the bench's handlers: native (the library in `native_dir`), Python and Node.js.
pub(crate) fn ours(root: &Path, native_dir: &Path) -> [Runner; 3] {
    let functions = root.join("bench/functions");
    [
        Runner::ours("scf-shim native", "native", native_dir, "native", "bench."),
        Runner::ours(
            "scf-shim python",
            "python",
            &functions.join("python"),
            "python3",
            "index.",
        ),
        Runner::ours(
            "scf-shim node",
            "node",
            &functions.join("node"),
            "nodejs",
            "index.",
        ),
    ]
}

impl Runner {
    /// One of our own hosts (SCF's dialect, the shim).
    pub(crate) fn ours(
        label: &str,
        language: &'static str,
        dir: &Path,
        runtime: &'static str,
        file: &'static str,
    ) -> Runner {
        Runner {
            label: label.to_owned(),
            language,
            dir: dir.to_path_buf(),
            runtime,
            dialect: None,
            command: None,
            file,
        }
    }

    pub(crate) fn config(&self, method: &str, timeout: f64) -> anyhow::Result<FunctionConfig> {
        let handler = format!("{}{method}", self.file);
        let over = Overrides {
            handler: Some(handler.clone()),
            runtime: Some(self.runtime.to_owned()),
            timeout: Some(timeout),
            memory_mb: Some(1024),
            dialect: self.dialect.map(str::to_owned),
            command: self
                .command
                .as_ref()
                .map(|c| c.replace("{handler}", &handler)),
            ..Overrides::default()
        };
        Ok(FunctionConfig::load(&self.dir, &over)?)
    }
}

/// Spawn → ready of a fresh instance, and its resident memory once ready.
pub(crate) async fn cold_start(
    platform: &Platform,
    runner: &Runner,
    runs: usize,
) -> anyhow::Result<(Sample, Sample)> {
    let config = runner.config("noop", 30.0)?;
    let (mut times, mut rss) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let instance = EventInstance::start(platform, &config)
            .await
            .map_err(|f| anyhow::anyhow!("{}: {} {:?}", runner.label, f.error, f.lines))?;
        let cold = instance.cold_start();
        times.push(ms(cold.init_runtime + cold.init_function));
        // VmRSS, the same figure as for AWS's clients and the bare interpreters.
        let pid = instance.function_pid().unwrap_or(instance.pid());
        rss.push(floor::status_mb(pid, "VmRSS:"));
        instance.stop().await;
    }
    Ok((Sample(times), Sample(rss)))
}

/// Latency of `n` sequential invocations of `method` with `event` on one warm instance, in µs.
pub(crate) async fn warm(
    platform: &Platform,
    runner: &Runner,
    method: &str,
    event: &Bytes,
    n: usize,
) -> anyhow::Result<Sample> {
    Ok(warm_run(platform, runner, method, event, n).await?.latency)
}

/// A warm run's figures.
pub(crate) struct WarmRun {
    /// Each measured invocation's latency, µs.
    pub(crate) latency: Sample,
    /// The function's process's CPU time per measured invocation (every thread, kernel time included), µs;
    /// 0 when its process cannot be read.
    pub(crate) cpu_us: f64,
}

/// [`warm`], with the function's process's CPU per invocation (read from `/proc` around the measured
/// invocations, after the warm-up ones).
pub(crate) async fn warm_run(
    platform: &Platform,
    runner: &Runner,
    method: &str,
    event: &Bytes,
    n: usize,
) -> anyhow::Result<WarmRun> {
    let config = runner.config(method, 60.0)?;
    let instance = EventInstance::start(platform, &config)
        .await
        .map_err(|f| anyhow::anyhow!("{}: {} {:?}", runner.label, f.error, f.lines))?;
    let invoke = async |instance: &EventInstance| -> anyhow::Result<f64> {
        let t = Instant::now();
        let o = instance.invoke("bench", event.clone(), false).await;
        let us = t.elapsed().as_secs_f64() * 1e6;
        if let Err((_, body)) = &o.result {
            bail!(
                "{} {method}: {}",
                runner.label,
                String::from_utf8_lossy(body)
            );
        }
        Ok(us)
    };
    for _ in 0..n / 10 + 5 {
        invoke(&instance).await?;
    }
    let pid = instance.function_pid();
    let cpu0 = pid.map(floor::cpu_ns);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(invoke(&instance).await?);
    }
    let cpu_us = match (pid, cpu0) {
        (Some(pid), Some(cpu0)) if n > 0 => (floor::cpu_ns(pid) - cpu0).max(0.0) / 1e3 / n as f64,
        _ => 0.0,
    };
    instance.stop().await;
    Ok(WarmRun {
        latency: Sample(out),
        cpu_us,
    })
}

/// The bare Unix round trip and each pair's warm no-op (a runner on a platform), measured in turn `rounds`
/// times with `n` calls each, so that a ratio between two of them compares figures taken seconds apart, not
/// minutes: one row per round, the floor first, then the pairs in order; each a p50 (µs) and a CPU per call
/// (µs: the echo server's per round trip, the function's process's per invocation).
pub(crate) async fn warm_rounds(
    pairs: &[(&Platform, &Runner)],
    rounds: usize,
    n: usize,
) -> anyhow::Result<Vec<Vec<(f64, f64)>>> {
    let small = Bytes::from_static(br#"{"k":"v"}"#);
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (floor, server_cpu) = floor::unix_round_trips(n).await?;
        let mut row = vec![(floor.median(), server_cpu)];
        for (platform, runner) in pairs {
            let run = warm_run(platform, runner, "noop", &small, n).await?;
            row.push((run.latency.median(), run.cpu_us));
        }
        out.push(row);
    }
    Ok(out)
}

/// A private copy of the native bench function's library (`target/libbench.so`), in its own directory.
pub(crate) fn native_dir(target: &Path) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("scf-bench-native-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(target.join("libbench.so"), dir.join("libbench.so")).context("libbench.so")?;
    Ok(dir)
}

/// Invocations per second with `instances` instances invoked concurrently.
pub(crate) async fn throughput(
    platform: &Platform,
    runner: &Runner,
    instances: usize,
    n: usize,
) -> anyhow::Result<f64> {
    let config = runner.config("noop", 60.0)?;
    let mut started = Vec::new();
    for _ in 0..instances {
        started.push(
            EventInstance::start(platform, &config)
                .await
                .map_err(|f| anyhow::anyhow!("{}", f.error))?,
        );
    }
    let t = Instant::now();
    let tasks: Vec<_> = started
        .into_iter()
        .map(|inst| {
            tokio::spawn(async move {
                for _ in 0..n {
                    let _ = inst.invoke("bench", Bytes::from_static(b"{}"), false).await;
                }
                inst.stop().await;
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    Ok((instances * n) as f64 / t.elapsed().as_secs_f64())
}

/// Wall time of a whole process, spawn → exit, in ms.
pub(crate) fn process_time(argv: &[&str], runs: usize) -> anyhow::Result<Sample> {
    let mut out = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let status = Command::new(argv[0])
            .args(&argv[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("{argv:?} failed");
        }
        out.push(ms(t.elapsed()));
    }
    Ok(Sample(out))
}

/// Resident memory of a process that idles (`argv` must sleep ~0.5 s), in MB.
pub(crate) fn idle_rss(argv: &[&str]) -> anyhow::Result<f64> {
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let rss = floor::status_mb(child.id(), "VmRSS:");
    let _ = child.kill();
    let _ = child.wait();
    Ok(rss)
}

/// A ~1 MB event of realistic records (nested objects, strings with escapes and non-ASCII, numbers).
pub(crate) fn big_event() -> String {
    let mut records = Vec::new();
    let mut size = 0;
    let mut i: u64 = 0;
    while size < 1024 * 1024 {
        let region = ["ap-guangzhou", "ap-shanghai", "ap-beijing"][(i % 3) as usize];
        let r = serde_json::json!({
            "eventId": format!("{:016x}-{i}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            "eventTime": 1_700_000_000 + i,
            "region": region,
            "size": i * 7919 % 1_000_000_007,
            "ratio": (i as f64) / 7.0,
            "ok": i.is_multiple_of(2),
            "deleted": null,
            "tags": ["alpha", "中文", "emoji😀", "quote\"d", "line\nbreak"],
            "object": {"key": format!("bucket/path/{i}.txt"), "etag": "d41d8cd98f00b204e9800998ecf8427e"},
        });
        size += r.to_string().len() + 1;
        records.push(r);
        i += 1;
    }
    serde_json::json!({ "Records": records }).to_string()
}

/// Median time of `json.loads`/`json.dumps` (Python) or `JSON.parse`/`JSON.stringify` (Node) of `path`'s text.
pub(crate) fn interpreter_codec(python: &str, node: &str, path: &Path) -> anyhow::Result<[f64; 4]> {
    let py = format!(
        "import json,time,statistics\nt=open({p:?},encoding='utf-8').read()\no=json.loads(t)\n\
         a=[];b=[]\nfor _ in range(25):\n s=time.perf_counter();json.loads(t);a.append(time.perf_counter()-s)\n \
         s=time.perf_counter();json.dumps(o,ensure_ascii=False);b.append(time.perf_counter()-s)\n\
         print(statistics.median(a)*1000,statistics.median(b)*1000)",
        p = path.display().to_string()
    );
    let js = format!(
        "const t=require('fs').readFileSync({p:?},'utf8');const o=JSON.parse(t);const a=[],b=[];\
         for(let i=0;i<25;i++){{let s=process.hrtime.bigint();JSON.parse(t);a.push(Number(process.hrtime.bigint()-s)/1e6);\
         s=process.hrtime.bigint();JSON.stringify(o);b.push(Number(process.hrtime.bigint()-s)/1e6);}}\
         a.sort((x,y)=>x-y);b.sort((x,y)=>x-y);console.log(a[12],b[12]);",
        p = path.display().to_string()
    );
    let run = |prog: &str, arg: &str, code: &str| -> anyhow::Result<(f64, f64)> {
        let out = Command::new(prog).arg(arg).arg(code).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text.split_whitespace().map(|s| s.parse::<f64>());
        match (it.next(), it.next()) {
            (Some(Ok(a)), Some(Ok(b))) => Ok((a, b)),
            _ => bail!("{prog}: {}", String::from_utf8_lossy(&out.stderr)),
        }
    };
    let (pl, pd) = run(python, "-c", &py)?;
    let (nl, nd) = run(node, "-e", &js)?;
    Ok([pl, pd, nl, nd])
}
