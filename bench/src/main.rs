//! `scf-bench` (`make bench`): our runtimes side by side with AWS's runtime clients and the physical floor,
//! measured on this machine in one run, written to `BENCHMARKS.md`.
//!
//! Every figure is a median (and p99 where it says so) of repeated measurements, and every comparison is
//! against a baseline measured in the same run: a bare interpreter start, a bare HTTP round trip between two
//! processes, `json.loads`/`JSON.parse` of the same text, the same handler under AWS's client.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use bytes::Bytes;
use scf_platform::Platform;

mod curve;
mod floor;
mod hosts;
mod instance;
mod modes;
mod one_cpu;
mod plot;
mod report;
mod routes;
mod scale;
mod web;
mod zygote;

use hosts::{
    Runner, cold_start, idle_rss, interpreter_codec, native_dir, process_time, throughput, warm,
};
use report::{Mode, Report, Sample, machine, ms, version};

/// Where our binaries are: beside this one (`target/release` for `make bench`, `target/debug` for the
/// tiny run of the tests).
pub fn bin_dir(root: &Path) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| root.join("target/release"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The rounds each row of the warm table runs in, each after its own measure of the floor.
const WARM_ROUNDS: usize = 5;

const USAGE: &str = "\
usage: scf-bench [--quick | --tiny]          every section, written to BENCHMARKS.md (--quick: fewer runs and
                                            smaller sizes, to target/BENCHMARKS-quick.md; --tiny: only that
                                            it runs, to target/BENCHMARKS-tiny.md)
       scf-bench --warm [N]                 three rounds of the bare round trip and each host's warm no-op:
                                            p50 and CPU per invocation, N calls each (default 5000)
       scf-bench --front-door               the platform's own figures: sync Invoke, InvokeFunction and an API
                                            Gateway request against their path's floor, durable accepts against
                                            the fsync floor and the design's, CPU per unit against its floors;
                                            then the sync calls again with every process on one CPU
       scf-bench --scale [--quick | --tiny] the scale section
       scf-bench --web [--quick | --tiny]   the web proxy section
       scf-bench --big [--quick | --tiny]   the 1 MB event section
       scf-bench echo-server tcp|unix:PATH|web|synced:FILE
                                            the bare echo servers the floors are measured against (synced:
                                            each answer sent once a writer thread appended the request to FILE
                                            and called fdatasync)
A section alone prints its figures on stderr and writes no file. The figures are those of the build the
binary is in (beside it); `make bench` measures a release build (bench/setup.sh).
";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("echo-server") => return floor::echo_server(args.next().as_deref()),
        Some("--quick" | "--tiny") | None => {}
        Some("--front-door") => return modes::front_door(),
        Some("--scale") => return modes::scale(Mode::from_args()),
        Some("--warm") => {
            let n = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
            return modes::warm(n);
        }
        Some("--web") => return modes::web(Mode::from_args()),
        Some("--big") => return modes::big(Mode::from_args()),
        Some("-h" | "--help") => {
            std::io::stdout().write_all(USAGE.as_bytes())?;
            return Ok(());
        }
        Some(other) => {
            let _ = write!(
                std::io::stderr(),
                "scf-bench: unknown argument {other:?}\n\n{USAGE}"
            );
            std::process::exit(2);
        }
    }
    let mode = Mode::from_args();
    // Node start-up pays 35–55 ms for extra CA certificates on these machines; time the runtime, not that.
    // SAFETY: single-threaded here; no other thread reads the environment yet.
    unsafe { std::env::remove_var("NODE_EXTRA_CA_CERTS") };
    // One thread, as `scf-local serve` runs: a multi-thread runtime adds a cross-thread wake-up to every hop
    // (ours and the peers' alike, and the floor's).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(mode))
}

async fn run(mode: Mode) -> anyhow::Result<()> {
    let root = root();
    let target = bin_dir(&root);
    // SAFETY: set before any instance starts; only this thread touches the environment now.
    unsafe { std::env::set_var("SCF_SHIM", target.join("scf-shim")) };
    let venv_python = root.join(".venv/bin/python");
    let python = venv_python.display().to_string();
    // SAFETY: as above.
    unsafe { std::env::set_var("SCF_PYTHON", &python) };
    // The platform as `scf-local serve` runs it (a memory cgroup and namespaces per instance where the
    // machine allows them, inits kept ready), and one with neither (memory sampled): the runtimes are
    // compared on the second, so their figures are the runtimes' own; what isolation adds to a cold start is
    // a row of its own.
    let isolated =
        Platform::discover().context("build the release binaries first (make bench does)")?;
    isolated.keep_ready();
    // SAFETY: as above (the supervisor's probe threads have ended; no thread reads the environment).
    unsafe { std::env::set_var("SCF_LOCAL_CGROUP", "off") };
    // Namespaces without a memory cgroup, for the zygote's rows without one: a forked instance needs a PID
    // namespace or a cgroup, or what it starts could outlive it (the zygote refuses).
    let namespaces_only =
        Platform::discover().context("build the release binaries first (make bench does)")?;
    // SAFETY: as above.
    unsafe { std::env::set_var("SCF_LOCAL_NAMESPACES", "off") };
    let platform =
        Platform::discover().context("build the release binaries first (make bench does)")?;

    let native_dir = native_dir(&target)?;
    let py_dir = root.join("bench/functions/python");
    let node_dir = root.join("bench/functions/node");
    let aws_node = root.join("bench/peers/node/node_modules/aws-lambda-ric/index.mjs");
    let aws_rust = root.join("bench/peers/rust/target/release/aws-rust-bench");

    let mut runners = hosts::ours(&root, &native_dir).to_vec();
    runners.push(Runner {
        label: "awslambdaric (Python)".into(),
        language: "python",
        dir: py_dir.clone(),
        runtime: "custom",
        dialect: Some("lambda"),
        command: Some(format!("{python} -m awslambdaric {{handler}}")),
        file: "index.",
    });
    let mut missing = Vec::new();
    if aws_node.is_file() {
        runners.push(Runner {
            label: "aws-lambda-ric (Node)".into(),
            language: "node",
            dir: node_dir.clone(),
            runtime: "custom",
            dialect: Some("lambda"),
            command: Some(format!("node {} {{handler}}", aws_node.display())),
            file: "index.",
        });
    } else {
        missing.push("aws-lambda-ric (Node): not installed (bench/setup.sh builds it with cmake, autoconf, automake, libtool, g++)");
    }
    if aws_rust.is_file() {
        runners.push(Runner {
            label: "lambda_runtime (Rust)".into(),
            language: "native",
            dir: native_dir.clone(),
            runtime: "custom",
            dialect: Some("lambda"),
            command: Some(format!("{} {{handler}}", aws_rust.display())),
            file: "bench.",
        });
    } else {
        missing.push("lambda_runtime (Rust): not built (bench/setup.sh builds it)");
    }

    let (cold_runs, warm_n, tp_n) = mode.pick((20, 2000, 2000), (5, 300, 300), (2, 20, 20));
    let mut r = Report::new();
    r.line("# Benchmarks");
    r.line("");
    r.line("Written by `make bench` (`bench/`); every ratio compares figures measured in the same run, on this machine:");
    r.line("");
    r.line(&format!("- machine: {}", machine()));
    r.line(&format!(
        "- {}; {}; {}",
        version(&[&python, "--version"]),
        format_args!("node {}", version(&["node", "--version"])),
        version(&["rustc", "--version"])
    ));
    r.line(&format!(
        "- `NODE_EXTRA_CA_CERTS` unset for every process (it adds 35–55 ms to each node start here); {}; instances get 1024 MB.",
        mode.pick(
            "release builds",
            "release builds, quick run (fewer runs, smaller sizes)",
            "a tiny run of whatever build ran it (it proves every section works; its figures mean nothing)"
        )
    ));
    for m in &missing {
        r.line(&format!("- peer missing: {m}"));
    }
    r.line("");

    // ---- cold start -------------------------------------------------------------------------------
    r.line("## Cold start: spawn → ready");
    r.line("");
    r.line(&format!("Median of {cold_runs} starts of an instance with a no-op handler, from spawn until the runtime is ready for its first invocation (the platform's InitRuntime + InitFunction). The bare figures are whole processes that start and exit. Ours run without a memory cgroup or namespaces, except Python's: its instances fork from the zygote only where a forked instance is contained, so its row runs in PID and mount namespaces (without them it starts the normal way, the zygote section's \"normal start\")."));
    r.line("");
    let bare_true = process_time(&["/bin/true"], cold_runs)?.median();
    let bare_py = process_time(&[&python, "-c", "pass"], cold_runs)?.median();
    let bare_py_s = process_time(&[&python, "-S", "-c", "pass"], cold_runs)?.median();
    let bare_node = process_time(&["node", "-e", "0"], cold_runs)?.median();
    let mut cold = std::collections::HashMap::new();
    let mut rss = std::collections::HashMap::new();
    for runner in &runners {
        // Python instances fork from the zygote only where a forked instance is contained (a PID namespace
        // or a memory cgroup): its row runs in namespaces, without a cgroup.
        let on = if runner.label == "scf-shim python" {
            &namespaces_only
        } else {
            &platform
        };
        let (t, m) = cold_start(on, runner, cold_runs).await?;
        cold.insert(runner.label.clone(), t.median());
        rss.insert(runner.label.clone(), m.median());
    }
    r.line("| runtime | ours (ms) | AWS client (ms) | bare floor (ms) | ours − floor | target | |");
    r.line("|---|---|---|---|---|---|---|");
    let peer_of = |lang: &str| {
        runners
            .iter()
            .find(|x| x.command.is_some() && x.language == lang)
            .map(|x| x.label.clone())
    };
    for (label, lang, floor, floor_name, budget) in [
        ("scf-shim native", "native", bare_true, "`/bin/true`", 5.0),
        (
            "scf-shim python",
            "python",
            bare_py,
            "`python -c pass`",
            5.0,
        ),
        ("scf-shim node", "node", bare_node, "`node -e 0`", 5.0),
    ] {
        let o = cold[label];
        let peer = peer_of(lang).and_then(|p| cold.get(&p).copied());
        let (target_text, holds) = if lang == "native" {
            (
                format!(
                    "≤ {budget} ms{}",
                    if peer.is_some() { " and < AWS" } else { "" }
                ),
                o <= budget && peer.is_none_or(|p| o < p),
            )
        } else {
            (
                format!("≤ floor + {budget} ms, < AWS"),
                o <= floor + budget && peer.is_none_or(|p| o < p),
            )
        };
        let verdict = r.target(&format!("cold start {lang}"), holds);
        r.line(&format!(
            "| {lang} | {o:.2} | {} | {floor:.2} ({floor_name}) | {:+.2} | {target_text} | {verdict} |",
            peer.map_or("—".into(), |p| format!("{p:.2}")),
            o - floor
        ));
    }
    r.line(&format!(
        "\nAlso measured: `python -S -c pass` {bare_py_s:.2} ms (no `site`)."
    ));
    r.line("");
    let described = isolated.describe();
    let line_of = |p: &str| {
        described
            .iter()
            .find(|l| l.starts_with(p))
            .cloned()
            .unwrap_or_default()
    };
    let (memory_line, isolation_line) = (line_of("memory:"), line_of("isolation:"));
    r.line(&format!("The figures above are the runtimes' own (no cgroup, no namespaces but Python's: memory measured by sampling). `scf-local serve` gives each instance what this machine allows ({memory_line}; {isolation_line}), its init started ahead and kept ready; its cold starts, same runs:"));
    r.line("");
    r.line("| runtime | without isolation (ms) | with serve's cgroup and namespaces (ms) | difference |");
    r.line("|---|---|---|---|");
    for label in ["scf-shim native", "scf-shim python", "scf-shim node"] {
        let Some(runner) = runners.iter().find(|x| x.label == label) else {
            continue;
        };
        let (t, _) = cold_start(&isolated, runner, cold_runs).await?;
        let (with, without) = (t.median(), cold[label]);
        r.line(&format!(
            "| {} | {without:.2} | {with:.2} | {:+.2} |",
            runner.language,
            with - without
        ));
    }
    r.line("");
    if let Some(py) = runners.iter().find(|x| x.label == "scf-shim python") {
        let aws = cold.get("awslambdaric (Python)").copied();
        zygote::section(
            &mut r,
            (&namespaces_only, &isolated),
            py,
            &python,
            aws,
            cold_runs,
        )
        .await?;
    }

    // ---- warm invoke ------------------------------------------------------------------------------
    r.line("## Warm invoke: latency and throughput");
    r.line("");
    r.line(&format!("{warm_n} sequential invocations (in rounds, below: each round a warm instance of its own), measured in the platform from handing the event over until the result is back (runtime API over a Unix socket for ours; loopback TCP for AWS's clients, which cannot use one). The floor is one bare HTTP/1.1 request/response between two processes with hyper on one kept-alive connection. Small event `{{\"k\":\"v\"}}`."));
    r.line("");
    let floor_figures = floor::measure(warm_n).await?;
    let (uds_floor, tcp_floor) = (floor_figures.uds.clone(), floor_figures.tcp.clone());
    r.line(&format!(
        "Floor: Unix socket p50 {:.1} µs / p99 {:.1} µs; TCP loopback p50 {:.1} µs / p99 {:.1} µs.",
        uds_floor.median(),
        uds_floor.quantile(0.99),
        tcp_floor.median(),
        tcp_floor.quantile(0.99)
    ));
    r.line("");
    let rounds = WARM_ROUNDS.min(warm_n);
    r.line(&format!("An invocation on this protocol is two request/response exchanges on the instance's connection (the answer to its waiting `next`, then its result post and the next `next`); written back to back (below), they cost one round trip for back-to-back invocations. The table shows the ratio to one bare round trip (with the round trip's p50, the median of the row's rounds) and to two: each row runs in {rounds} rounds, each just after its own measure of the Unix-socket floor's p50, and the ratio is the median round's (the host's speed moves within a run, and the floor moves between a few µs and tens as the two processes share a CPU or not); the p50 and p99 are of all the rounds' invocations."));
    r.line("");
    r.line("| runtime | handler | p50 (µs) | p99 (µs) | p50 / floor | p50 / (2 × floor) | AWS client p50 (µs) | AWS / ours | target | |");
    r.line("|---|---|---|---|---|---|---|---|---|---|");
    let small = Bytes::from_static(br#"{"k":"v"}"#);
    let mut warm_p50 = std::collections::HashMap::new();
    let mut latency_lines = vec![
        plot::cdf("floor: HTTP round trip, Unix socket", &uds_floor),
        plot::cdf("floor: HTTP round trip, TCP", &tcp_floor),
    ];
    // Each row in rounds, each round just after its own measure of the floor: the ratio is the median round's
    // (the floor itself moves between a few µs and tens, as the two processes share a CPU or not).
    let k = (warm_n / 4).max(20);
    let mut row_floor = std::collections::HashMap::new();
    for runner in &runners {
        for method in ["noop", "echo"] {
            let (mut all, mut ratios, mut floors) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                let floor = floor::unix_round_trips(k).await?.0.median();
                let s = warm(&platform, runner, method, &small, warm_n / rounds).await?;
                ratios.push(s.median() / floor);
                floors.push(floor);
                all.extend(s.0);
            }
            let s = Sample(all);
            row_floor.insert(
                (runner.label.clone(), method),
                (Sample(floors).median(), Sample(ratios).median()),
            );
            if method == "noop" {
                latency_lines.push(plot::cdf(&runner.label, &s));
            }
            warm_p50.insert(
                (runner.label.clone(), method),
                (s.median(), s.quantile(0.99)),
            );
        }
    }
    for (label, lang) in [
        ("scf-shim native", "native"),
        ("scf-shim python", "python"),
        ("scf-shim node", "node"),
    ] {
        for method in ["noop", "echo"] {
            let (p50, p99) = warm_p50[&(label.to_owned(), method)];
            let (floor, ratio) = row_floor[&(label.to_owned(), method)];
            let peer = peer_of(lang).and_then(|p| warm_p50.get(&(p, method)).copied());
            let holds = ratio <= 1.5 && peer.is_none_or(|(pp, _)| pp >= 3.0 * p50);
            let verdict = r.target(&format!("warm {lang} {method}"), holds);
            r.line(&format!(
                "| {lang} | {method} | {p50:.1} | {p99:.1} | {ratio:.2}× ({floor:.1} µs) | {:.2}× | {} | {} | ≤ 1.5× floor, ≥ 3× faster than AWS | {verdict} |",
                ratio / 2.0,
                peer.map_or("—".into(), |(pp, _)| format!("{pp:.1}")),
                peer.map_or("—".into(), |(pp, _)| format!("{:.1}×", pp / p50)),
            ));
        }
    }
    r.line("");
    // The same no-op round trip with serve's isolation: the runtime API's socket made inside the instance's
    // network namespace, the instance in its cgroup and PID namespace.
    let mut with_isolation = Vec::new();
    for (label, lang) in [
        ("scf-shim native", "native"),
        ("scf-shim python", "python"),
        ("scf-shim node", "node"),
    ] {
        let Some(runner) = runners.iter().find(|x| x.label == label) else {
            continue;
        };
        let s = warm(&isolated, runner, "noop", &small, warm_n).await?;
        let without = warm_p50[&(label.to_owned(), "noop")].0;
        with_isolation.push(format!(
            "{lang} {:.1} µs (without {without:.1})",
            s.median()
        ));
    }
    r.line(&format!(
        "With serve's isolation (cgroup and namespaces), no-op p50: {}.",
        with_isolation.join(", ")
    ));
    r.line("");
    let rounds = mode.pick((15, 1000), (3, 200), (1, 20));
    instance::one_exchange_rows(&mut r, &platform, &runners, rounds.0, rounds.1).await?;
    // The report and its pictures: the record at the top, a quick or tiny run's beside the build.
    let (dir, stem) = mode.pick(
        ("", "BENCHMARKS"),
        ("target", "BENCHMARKS-quick"),
        ("target", "BENCHMARKS-tiny"),
    );
    let latency_svg = format!("{stem}-latency.svg");
    let scale_svg = format!("{stem}-scale.svg");
    plot::latency(&root.join(dir).join(&latency_svg), &latency_lines)?;
    r.line(&format!("![Latency distributions of the warm no-op invocations above and of the floor]({latency_svg})"));
    r.line("");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    r.line(&format!("Throughput, no-op handler, {cores} instances (as many as cores) invoked concurrently, {tp_n} invocations each:"));
    r.line("");
    r.line("| runtime | invocations/s |");
    r.line("|---|---|");
    for runner in &runners {
        let tp = throughput(&platform, runner, cores, tp_n).await?;
        r.line(&format!("| {} | {tp:.0} |", runner.label));
    }
    r.line("");

    // ---- 1 MB events ------------------------------------------------------------------------------
    instance::big_event_section(&mut r, &platform, &runners, &python, &warm_p50, mode).await?;

    // ---- memory -----------------------------------------------------------------------------------
    r.line("## Memory: resident set of an idle instance");
    r.line("");
    let bare_py_rss = idle_rss(&[&python, "-c", "import time; time.sleep(1)"])?;
    let bare_node_rss = idle_rss(&["node", "-e", "setTimeout(()=>{},1000)"])?;
    r.line(
        "| runtime | instance ready (MB) | bare interpreter idle (MB) | difference | target | |",
    );
    r.line("|---|---|---|---|---|---|");
    for runner in &runners {
        let m = rss[&runner.label];
        let (bare, target_text, holds) = match runner.language {
            "python" => (Some(bare_py_rss), "≤ bare + 3 MB", m <= bare_py_rss + 3.0),
            "node" => (
                Some(bare_node_rss),
                "≤ bare + 3 MB",
                m <= bare_node_rss + 3.0,
            ),
            _ => (None, "≤ 4 MB", m <= 4.0),
        };
        let verdict = if runner.command.is_none() {
            r.target(&format!("idle RSS {}", runner.language), holds)
        } else {
            ""
        };
        r.line(&format!(
            "| {} | {m:.2} | {} | {} | {} | {verdict} |",
            runner.label,
            bare.map_or("—".into(), |b| format!("{b:.2}")),
            bare.map_or("—".into(), |b| format!("{:+.2}", m - b)),
            if runner.command.is_none() {
                target_text
            } else {
                "—"
            },
        ));
    }
    r.line("");
    // Sync calls: in all, and in how many rounds.
    let (sync_n, sync_rounds) = (mode.pick(2000, 300, 30), mode.pick(7, 3, 1));
    let platform_rss = floor::platform_rss(&root, &native_dir, sync_n, sync_rounds).await?;
    // The path's own floor: the caller's TCP exchange with the front door, and the two Unix-socket
    // exchanges on the instance's connection (the answer to its waiting `next`, then its result),
    // measured before each round of sync calls.
    let rounds = &platform_rss.sync.rounds;
    let path_floor = Sample(rounds.iter().map(|x| x.floor_us).collect()).median();
    let (uds_all, tcp_all) = (&platform_rss.sync.floor.uds, &platform_rss.sync.floor.tcp);
    r.line(&format!(
        "The platform (`scf-local serve`, one native function): {:.2} MB idle; {:.2} MB peak after {} sync invocations ({} rounds, each taking the front door's `Invoke` and `InvokeFunction` and a request to the function's API on the API Gateway listener in turn, each round starting at another, each path on its own kept-alive connection, every round just after its own measure of the floor):",
        platform_rss.idle_mb, platform_rss.peak_mb, platform_rss.sync.requests, rounds.len(),
    ));
    r.line("");
    r.line("| sync path | µs | ratio | target | |");
    r.line("|---|---|---|---|---|");
    r.line(&format!(
        "| the path's floor: 1 TCP + 2 Unix-socket round trips, measured before each of {} rounds of sync calls (median) | {path_floor:.1} | 1.00× | | |",
        rounds.len()
    ));
    for (i, (name, what)) in floor::SYNC_PATHS.iter().enumerate() {
        let ratios = platform_rss.sync.ratios(i);
        let lat = &platform_rss.sync.lat[i];
        let (p50, p99) = (lat.median(), lat.quantile(0.99));
        let p50_verdict = r.target(
            &format!("{what} p50 ≤ 1.3× its path's floor"),
            ratios.median() <= 1.3,
        );
        let tail_verdict = r.target(&format!("{what} p99 ≤ 2× its p50"), p99 / p50 <= 2.0);
        r.line(&format!(
            "| {name} p50 (all rounds) | {p50:.1} | {:.2}× the floor (the median round's ratio; range {}) | ≤ 1.3× | {p50_verdict} |",
            ratios.median(),
            ratios.range()
        ));
        r.line(&format!(
            "| {name} p99 | {p99:.1} | {:.2}× the p50 | ≤ 2× | {tail_verdict} |",
            p99 / p50
        ));
    }
    r.line(&format!(
        "| the floor's own p99 / p50 in this run: TCP, Unix socket | | {:.2}×, {:.2}× | | |",
        tcp_all.quantile(0.99) / tcp_all.median(),
        uds_all.quantile(0.99) / uds_all.median()
    ));
    r.line("");
    if let Some((cpu, pinned)) =
        one_cpu::sync_calls(&root, &native_dir, sync_n / sync_rounds, sync_rounds).await?
    {
        one_cpu::table(&mut r, cpu, &pinned, &platform_rss.sync);
    }
    let pr = &platform_rss;
    let accept_ratios = pr.accept_ratios(|x| x.fsync_per_s);
    let path_ratios = pr.accept_ratios(|x| x.path_per_s);
    let synced_ratios = pr.accept_ratios(|x| x.synced_per_s);
    let one = pr.enqueue_per_s >= 4000.0 || accept_ratios.median() >= 0.8;
    let one_verdict = r.target(
        "durable async accept, one client ≥ 4,000/s (or ≥ 0.8× the fsync floor)",
        one,
    );
    let many = pr.enqueue16_per_s >= 20_000.0;
    let many_verdict = r.target("durable async accept, 16 clients ≥ 20,000/s", many);
    r.line(&format!("Async invocations accepted through the front door, each event fsynced to the durable queue (SQLite WAL, `synchronous=FULL` for the accept, a group commit for the accepts waiting at once) before it is acknowledged, while the dispatcher delivers them. The floor is a 100-byte append plus `fdatasync` on the same filesystem. The design's floor is a bare server built the way the platform is (the event loop never waits on the disk): over loopback TCP, one client, each request's 100 bytes handed to a writer thread that appends and `fdatasync`s them, the answer sent when that thread says so; it adds to the path's floor the two wake-ups between the threads, which on this machine cost most when each thread sleeps in between (an idle virtual CPU is woken). One client's accepts run in {} rounds, each just after its own measure of the floor (and once the last round's events are delivered), and each followed by 16 clients' accepts at once (and their delivery): the ratio is the median round's, and its range the rounds' lowest and highest; the rates are the medians over the rounds.", pr.accept_rounds.len()));
    r.line("");
    r.line("| | events/s | vs the fsync floor | target | |");
    r.line("|---|---|---|---|---|");
    r.line(&format!(
        "| fsync floor | {:.0} | 1.00× | | |",
        pr.fsync_per_s
    ));
    r.line(&format!(
        "| the path's floor: one TCP round trip and one `fdatasync` per event (each measured in the round) | {:.0} | {:.2}× | | |",
        pr.accept_figure(|x| x.path_per_s).median(),
        pr.accept_figure(|x| x.path_per_s / x.fsync_per_s).median()
    ));
    r.line(&format!(
        "| the design's floor: the same with each answer waiting for another thread's append and `fdatasync` (measured in the round) | {:.0} | {:.2}× | | |",
        pr.accept_figure(|x| x.synced_per_s).median(),
        pr.accept_figure(|x| x.synced_per_s / x.fsync_per_s).median()
    ));
    r.line(&format!(
        "| one client, each ack awaited | {:.0} | {:.2}× (range {}); {:.2}× the path's floor; {:.2}× the design's (range {}) | ≥ 4,000/s or ≥ 0.8× floor | {one_verdict} |",
        pr.enqueue_per_s,
        accept_ratios.median(),
        accept_ratios.range(),
        path_ratios.median(),
        synced_ratios.median(),
        synced_ratios.range()
    ));
    r.line(&format!(
        "| 16 clients at once | {:.0} | {:.2}× | ≥ 20,000/s | {many_verdict} |",
        pr.enqueue16_per_s,
        pr.enqueue16_per_s / pr.fsync_per_s
    ));
    r.line("");
    r.line("(Peak memory above includes these runs.)");
    r.line("");

    // ---- scale ------------------------------------------------------------------------------------
    r.line("## Scale");
    r.line("");
    r.line(&format!("How the platform's costs grow with what it holds, each against the smallest size in the same run (native no-op function). The log stores of every size are served at once and queried in rounds that take each size in turn, so they are compared at the same moments; the backlogs are taken in turn in {} rounds (their medians), each run a new store and platform, with the function's queue limit (`local.queueLimit`) above the backlog and the run's events, so no accept is refused. Every answer the bench times is checked: an error (a refusal, a function's error, a status other than 2xx) stops the run rather than being counted as work done.", scale::backlog_rounds(mode)));
    r.line("");
    let sc = scale::measure(&root, &native_dir.join("libbench.so"), mode).await?;
    r.line("| measurement | size | figure | vs the smallest | target | |");
    r.line("|---|---|---|---|---|---|");
    for (what, unit, points, higher_is_better) in [
        (
            "durable async accept, 16 clients, with a backlog of the same function queued",
            "events/s",
            &sc.accept,
            true,
        ),
        (
            "`GetFunctionLogs` by request id, p50, with records stored",
            "µs",
            &sc.logs,
            false,
        ),
    ] {
        let base = points.first().map_or(1.0, |p| p.value);
        for p in points {
            // As a cost: > 1 is worse.
            let cost = if higher_is_better {
                base / p.value
            } else {
                p.value / base
            };
            let verdict = if p.size == points[0].size {
                ""
            } else {
                r.target(&format!("{what}: {} within 1.2×", p.size), cost <= 1.2)
            };
            r.line(&format!(
                "| {what} | {} | {:.1} {unit} | {cost:.2}× | ≤ 1.2× | {verdict} |",
                p.size, p.value
            ));
        }
    }
    for p in &sc.startup {
        let holds = p.value < 1000.0;
        let verdict = if p.size >= 100 {
            r.target(
                &format!("`serve` start-up with {} functions under 1 s", p.size),
                holds,
            )
        } else {
            ""
        };
        r.line(&format!(
            "| `scf-local serve` start-up (spawn → listening, median of 5), functions | {} | {:.1} ms | — | {} | {verdict} |",
            p.size,
            p.value,
            if p.size >= 100 { "< 1 s" } else { "" }
        ));
    }
    r.line("");
    curve::report(&mut r, &sc.warm);
    if let Some((cpu, points)) = &sc.warm_one_cpu {
        curve::report_one_cpu(&mut r, *cpu, points);
    }
    if let Some((cpu, apis)) = &sc.routes {
        routes::report(&mut r, *cpu, apis);
    }
    plot::scale(&root.join(dir).join(&scale_svg), &sc)?;
    r.line(&format!("![The scale curves: sync latency and CPU per call against warm instances held, async accept against backlog, log queries against records stored]({scale_svg})"));
    r.line("");

    // ---- web functions ----------------------------------------------------------------------------
    web::section(&mut r, &root, mode).await?;

    // ---- cost per unit of work -----------------------------------------------------------------------
    r.line("## Cost per unit of work");
    r.line("");
    r.line("The platform's own CPU time (every thread, `/proc/PID/task/*/schedstat`) per unit, and its resident memory per idle warm instance (100 functions each called once, against the same platform before; the median of 3 platforms).");
    r.line("");
    // The CPU floors: a sync invocation's three exchanges, each at least what a bare echo server spends on
    // one; one client's durable async event the design's floor's accept and its delivery's two exchanges;
    // 16 clients' events share their fsyncs, so their floor is the three exchanges'.
    let fl = &platform_rss.sync.floor;
    let (cpu_floor, async_cpu_floor) = platform_rss.cpu_floors();
    r.line(&format!("For scale, each floor measured in this run: a bare echo server (hyper, one thread) spends {:.1} µs of CPU answering one small request over TCP and {:.1} µs over a Unix socket (measured between the rounds of sync calls), so the three exchanges of an invocation cost at least {cpu_floor:.1} µs before any work of the platform's own. One client's durable async event is accepted over TCP, synced and delivered over a Unix socket: the bare server of the design's floor above spends {:.1} µs of CPU on each accept (its fsync's share nearly all the kernel's), and with the two exchanges of the delivery that is {async_cpu_floor:.1} µs. Events of 16 clients at once share their fsyncs, so their floor is the three exchanges'.", fl.tcp_server_cpu_us, fl.uds_server_cpu_us, platform_rss.synced_cpu_us()));
    r.line("");
    r.line("| unit | cost | its floor in this run | vs the floor | target | |");
    r.line("|---|---|---|---|---|---|");
    let cost_rows = [
        (
            "CPU per sync invocation",
            platform_rss.sync.cpu_us_per_call,
            Some(cpu_floor),
            "µs",
            25.0,
        ),
        (
            "CPU per durable async event (accepted, delivered, logged), one client",
            platform_rss.cpu_us_per_async,
            Some(async_cpu_floor),
            "µs",
            40.0,
        ),
        (
            "CPU per durable async event, 16 clients (accepts group-committed)",
            platform_rss.cpu_us_per_async16,
            Some(cpu_floor),
            "µs",
            40.0,
        ),
        (
            "RSS per idle warm instance",
            sc.rss_kb_per_instance,
            None,
            "KB",
            64.0,
        ),
    ];
    for (what, value, floor, unit, limit) in cost_rows {
        let verdict = r.target(&format!("{what} ≤ {limit} {unit}"), value <= limit);
        let (floor, ratio) = match floor {
            Some(f) => (format!("{f:.1} {unit}"), format!("{:.2}×", value / f)),
            None => ("—".into(), "—".into()),
        };
        r.line(&format!(
            "| {what} | {value:.1} {unit} | {floor} | {ratio} | ≤ {limit} {unit} | {verdict} |"
        ));
    }
    r.line("");

    // ---- summary ----------------------------------------------------------------------------------
    r.line("## Targets");
    r.line("");
    let held = r.verdicts.iter().filter(|(_, h)| *h).count();
    let total = r.verdicts.len();
    let mut list = String::new();
    for (what, h) in &r.verdicts {
        let _ = writeln!(list, "- {what}: {}", if *h { "holds" } else { "missed" });
    }
    r.line(&format!("{held} of {total} targets hold on this run:\n"));
    r.line(list.trim_end());
    // A quick run is a look, not the record: it goes beside the committed BENCHMARKS.md.
    let out = root.join(dir).join(format!("{stem}.md"));
    std::fs::write(&out, &r.md)?;
    let _ = std::fs::remove_dir_all(&native_dir);
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("wrote {}\n", out.display()).as_bytes(),
    );
    Ok(())
}
