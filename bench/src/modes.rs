//! The one-section modes of `scf-bench` (for profiling one path): `--front-door`, `--scale`, `--warm`,
//! `--web`, `--big`.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context as _;
use scf_platform::Platform;

use crate::hosts::{self, native_dir};
use crate::{Mode, Report, bin_dir, floor, instance, root, scale, web};

/// A current-thread runtime, as `scf-local serve` runs.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `--front-door`: only the platform's front-door figures (for profiling it).
pub(crate) fn front_door() -> anyhow::Result<()> {
    runtime()?.block_on(floor::print_front_door(&root()))
}

/// `--web [--quick | --tiny]`: only the web proxy's figures.
pub(crate) fn web(mode: Mode) -> anyhow::Result<()> {
    let mut r = Report::new();
    runtime()?.block_on(web::section(&mut r, &root(), mode))
}

/// `--warm [N]`: the hosts' warm no-op round trips against their floor, interleaved (for profiling the
/// invocation path).
pub(crate) fn warm(n: usize) -> anyhow::Result<()> {
    runtime()?.block_on(warm_rounds(n))
}

/// `--big [--quick | --tiny]`: only the 1 MB event section, for our three hosts (each one's no-op p50, which
/// the section subtracts, measured first).
pub(crate) fn big(mode: Mode) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let root = root();
        let target = bin_dir(&root);
        let python = root.join(".venv/bin/python").display().to_string();
        // SAFETY: single-threaded; set before any instance starts. The runtimes as the full run compares
        // them: without a memory cgroup or namespaces.
        unsafe {
            std::env::set_var("SCF_SHIM", target.join("scf-shim"));
            std::env::set_var("SCF_PYTHON", &python);
            std::env::set_var("SCF_LOCAL_CGROUP", "off");
            std::env::set_var("SCF_LOCAL_NAMESPACES", "off");
        }
        let platform = Platform::discover().context("build the release binaries first")?;
        let dir = native_dir(&target)?;
        let runners = hosts::ours(&root, &dir);
        let small = bytes::Bytes::from_static(br#"{"k":"v"}"#);
        let mut noop = std::collections::HashMap::new();
        for runner in &runners {
            let s = hosts::warm(&platform, runner, "noop", &small, 500).await?;
            noop.insert(
                (runner.label.clone(), "noop"),
                (s.median(), s.quantile(0.99)),
            );
        }
        let mut r = Report::new();
        instance::big_event_section(&mut r, &platform, &runners, &python, &noop, mode).await?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
}

/// `--scale [--quick | --tiny]`: only the scale figures.
pub(crate) fn scale(mode: Mode) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let root = root();
        let sc = scale::measure(&root, &bin_dir(&root).join("libbench.so"), mode).await?;
        let mut err = std::io::stderr().lock();
        for (what, points) in [
            ("async accept events/s, backlog", &sc.accept),
            ("GetFunctionLogs by id p50 µs, records", &sc.logs),
            ("serve start-up ms, functions", &sc.startup),
        ] {
            for p in points {
                writeln!(err, "{what} {}: {:.1}", p.size, p.value)?;
            }
        }
        for p in &sc.warm {
            writeln!(
                err,
                "{} warm instances: sync p50 {:.1} µs p99 {:.1} µs, CPU {:.1} µs per call (one instance in the same rounds: {:.1} / {:.1} / {:.1}; worst {:.2}×), idle CPU {:.2} %; floor over {} servers p50 {:.1} µs p99 {:.1} µs (worst {:.2}× one server)",
                p.instances,
                p.held.p50_us(),
                p.held.p99_us(),
                p.held.cpu_us_per_call(),
                p.one.p50_us(),
                p.one.p99_us(),
                p.one.cpu_us_per_call(),
                p.worst(),
                p.idle_cpu_percent,
                p.functions,
                p.floor.p50_us(),
                p.floor.p99_us(),
                p.floor_worst()
            )?;
        }
        if let Some((cpu, points)) = &sc.warm_one_cpu {
            // The report's own table, which its lines also write to stderr.
            crate::curve::report_one_cpu(&mut Report::new(), *cpu, points);
        }
        if let Some((cpu, apis)) = &sc.routes {
            crate::routes::report(&mut Report::new(), *cpu, apis);
        }
        writeln!(
            err,
            "RSS per idle warm instance: {:.1} KB",
            sc.rss_kb_per_instance
        )?;
        Ok(())
    })
}

/// Three rounds of the bare floor and each host's warm no-op p50 (without isolation, and with
/// serve's), side by side.
async fn warm_rounds(n: usize) -> anyhow::Result<()> {
    let root = root();
    let target = bin_dir(&root);
    // SAFETY: single-threaded; set before any instance starts.
    unsafe { std::env::set_var("SCF_SHIM", target.join("scf-shim")) };
    let isolated = Platform::discover().context("build the release binaries first")?;
    isolated.keep_ready();
    // SAFETY: as above (the supervisor's probe threads have ended).
    unsafe {
        std::env::set_var("SCF_LOCAL_CGROUP", "off");
        std::env::set_var("SCF_LOCAL_NAMESPACES", "off");
    }
    let platform = Platform::discover().context("build the release binaries first")?;
    let dir = native_dir(&target)?;
    // SAFETY: as above.
    unsafe { std::env::set_var("SCF_PYTHON", root.join(".venv/bin/python")) };
    let runners = hosts::ours(&root, &dir);
    let pairs: Vec<_> = runners
        .iter()
        .flat_map(|r| [(&platform, r), (&isolated, r)])
        .collect();
    let mut err = std::io::stderr().lock();
    for (round, row) in hosts::warm_rounds(&pairs, 3, n).await?.iter().enumerate() {
        let (floor, server_cpu) = row[0];
        let mut line = format!(
            "round {}: floor p50 {floor:.1} µs ({server_cpu:.1} µs CPU);",
            round + 1
        );
        for (runner, pair) in runners.iter().zip(row[1..].chunks(2)) {
            let _ = write!(
                line,
                " {} {:.1} µs ({:.2}×, {:.1} µs CPU), isolated {:.1} µs ({:.2}×);",
                runner.label,
                pair[0].0,
                pair[0].0 / floor,
                pair[0].1,
                pair[1].0,
                pair[1].0 / floor
            );
        }
        writeln!(err, "{line}")?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
