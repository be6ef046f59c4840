//! The Python zygote's rows (`docs/python.md`, "The zygote"): Python instances started the normal way and
//! forked from a zygote, with and without memory cgroups, beside `python -c pass` and AWS's `awslambdaric`;
//! a handler with heavy imports, with and without pre-importing them in the zygote; the zygote's memory and
//! each forked instance's unique set size.

use scf_platform::config::FunctionConfig;
use scf_platform::{EventInstance, Platform};

use crate::{Report, Runner, Sample, ms, process_time};

/// The standard modules the heavy handler imports, pre-imported in one variant.
const HEAVY: &str = "json,asyncio,decimal,email,http.client";

/// Figures of `runs` fresh instances.
#[derive(Default)]
struct Starts {
    total: Sample,
    init_runtime: Sample,
    init_function: Sample,
    rss: Sample,
    uss: Sample,
}

/// `(Rss, Private_Clean + Private_Dirty)` of `pid` from `/proc/PID/smaps_rollup`, MB.
fn rollup(pid: u32) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (
        field("Rss:"),
        field("Private_Clean:") + field("Private_Dirty:"),
    )
}

async fn starts(
    platform: &Platform,
    config: &FunctionConfig,
    runs: usize,
) -> anyhow::Result<Starts> {
    let mut s = Starts::default();
    for _ in 0..runs {
        let instance = EventInstance::start(platform, config)
            .await
            .map_err(|f| anyhow::anyhow!("python: {} {:?}", f.error, f.lines))?;
        let cold = instance.cold_start();
        s.total.0.push(ms(cold.init_runtime + cold.init_function));
        s.init_runtime.0.push(ms(cold.init_runtime));
        s.init_function.0.push(ms(cold.init_function));
        let (rss, uss) = rollup(instance.function_pid().unwrap_or(instance.pid()));
        s.rss.0.push(rss);
        s.uss.0.push(uss);
        instance.stop().await;
    }
    Ok(s)
}

/// `python -c pass` (the `interpreter`) and forked starts of `config` in turn, `rounds` times with `runs /
/// rounds` of each: every start's figures, each round's median start over its median `python -c pass`,
/// and the interpreter's median over every round.
async fn forked_rounds(
    platform: &Platform,
    config: &FunctionConfig,
    interpreter: &str,
    runs: usize,
    rounds: usize,
) -> anyhow::Result<(Starts, Sample, f64)> {
    let per = (runs / rounds).max(1);
    let mut all = Starts::default();
    let (mut ratios, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let b = process_time(&[interpreter, "-c", "pass"], per)?;
        let s = starts(platform, config, per).await?;
        ratios.push(s.total.median() / b.median());
        bare.extend(b.0);
        all.total.0.extend(s.total.0);
        all.init_runtime.0.extend(s.init_runtime.0);
        all.init_function.0.extend(s.init_function.0);
        all.rss.0.extend(s.rss.0);
        all.uss.0.extend(s.uss.0);
    }
    Ok((all, Sample(ratios), Sample(bare).median()))
}

/// The section. `sampled` measures memory by sampling (its instances in their namespaces), `isolated` gives
/// each instance a memory cgroup too; `interpreter` is the Python that `python -c pass` runs, and `aws`
/// awslambdaric's spawn → ready from the same run.
pub(crate) async fn section(
    r: &mut Report,
    (sampled, isolated): (&Platform, &Platform),
    python: &Runner,
    interpreter: &str,
    aws: Option<f64>,
    runs: usize,
) -> anyhow::Result<()> {
    let off = |p: &Platform| {
        let mut p = p.clone();
        p.set_zygote(false);
        p
    };
    let noop = python.config("noop", 30.0)?;
    let heavy_runner = Runner {
        file: "heavy.",
        ..python.clone()
    };
    let heavy = heavy_runner.config("noop", 30.0)?;
    let mut preimported = heavy.clone();
    preimported.env.insert(
        scf_platform::ZYGOTE_PREIMPORT_ENV.to_owned(),
        HEAVY.to_owned(),
    );

    r.line("## Python: the zygote");
    r.line("");
    r.line(&format!("Median of {runs} fresh Python instances (no-op handler), started the normal way (the shim execs the interpreter) and forked from the zygote (CPython, `site` and the SDK's core initialised once; `docs/python.md`). Every instance is in the PID, mount and IPC namespaces `scf-local serve` gives it (a forked one joins its init's before it is forked). Spawn → ready is the platform's InitRuntime + InitFunction. The zygote's own start is paid once per interpreter and is not in the medians: it is the first start's figure below. Memory from `/proc/PID/smaps_rollup` of the idle instance: RSS, and USS (its private pages: what it costs beyond what it shares)."));
    r.line("");
    // The first forked start of a platform pays for its zygote (this one's has started before: a new one).
    let fresh = Platform::discover()?;
    let first = starts(&fresh, &noop, 1).await?.total.median();
    drop(fresh);
    let rows = [
        ("normal start", off(sampled), &noop, "no"),
        ("zygote", sampled.clone(), &noop, "no"),
        ("normal start", off(isolated), &noop, "yes"),
        ("zygote", isolated.clone(), &noop, "yes"),
    ];
    // The target's row: forked starts and `python -c pass` in turn, in rounds; the other rows against the
    // interpreter's median over those rounds.
    let rounds = runs.clamp(1, 5);
    let (forked, ratios, bare_py) =
        forked_rounds(sampled, &noop, interpreter, runs, rounds).await?;
    let mut forked = Some(forked);
    r.line("| python instance | memory cgroup | spawn → ready (ms) | × `python -c pass` | InitRuntime (ms) | InitFunction (ms) | RSS (MB) | USS (MB) |");
    r.line("|---|---|---|---|---|---|---|---|");
    let mut zygote_figures = None;
    let mut normal_rss = 0.0;
    for (label, platform, config, cgroup) in rows {
        let s = match forked.take_if(|_| cgroup == "no" && label == "zygote") {
            Some(s) => s,
            None => starts(&platform, config, runs).await?,
        };
        let total = s.total.median();
        r.line(&format!(
            "| {label} | {cgroup} | {total:.2} | {:.2}× | {:.2} | {:.2} | {:.1} | {:.1} |",
            total / bare_py,
            s.init_runtime.median(),
            s.init_function.median(),
            s.rss.median(),
            s.uss.median()
        ));
        if cgroup == "no" && label == "zygote" {
            zygote_figures = Some((total, s.init_runtime.median(), s.uss.median()));
        }
        if cgroup == "no" && label == "normal start" {
            normal_rss = s.rss.median();
        }
    }
    if let Some(aws) = aws {
        r.line(&format!(
            "| awslambdaric (`python -m awslambdaric`) | no | {aws:.2} | {:.2}× | — | — | — | — |",
            aws / bare_py
        ));
    }
    r.line("");
    r.line(&format!(
        "`python -c pass` (measured in {rounds} rounds, each just before a round of the zygote's starts without a memory cgroup; the median over them): {bare_py:.2} ms. The first forked start of a new platform, which starts its zygote first: {first:.2} ms."
    ));
    let zygote_rss: Vec<f64> = sampled
        .zygote_pids()
        .into_iter()
        .map(|pid| rollup(pid).0)
        .collect();
    if let Some(rss) = zygote_rss.first() {
        r.line(&format!(
            "The zygote's RSS: {rss:.1} MB (one per interpreter and Python-relevant environment)."
        ));
    }
    r.line("");
    if let Some((total, init_runtime, uss)) = zygote_figures {
        let v = r.target("python zygote spawn → ready", ratios.median() <= 0.3);
        r.line(&format!(
            "- spawn → ready {total:.2} ms = {:.2}× `python -c pass` (the median round's ratio, range {}; target ≤ 0.3×, without a memory cgroup): {v}",
            ratios.median(),
            ratios.range()
        ));
        let v = r.target("python zygote InitRuntime", init_runtime <= 3.0);
        r.line(&format!(
            "- InitRuntime {init_runtime:.2} ms (target ≤ 3 ms): {v}"
        ));
        let v = r.target("python forked instance USS", uss < 0.5 * normal_rss);
        r.line(&format!(
            "- a forked idle instance's USS {uss:.1} MB vs a fresh interpreter's RSS {normal_rss:.1} MB (target: well below, < 0.5×): {v}"
        ));
    }
    r.line("");
    r.line(&format!("A handler whose module imports `{HEAVY}` (`bench/functions/python/heavy.py`), without a memory cgroup; the last row's zygote pre-imports those modules (`SCF_ZYGOTE_PREIMPORT`, a function variable):"));
    r.line("");
    r.line("| heavy-import handler | spawn → ready (ms) | InitRuntime (ms) | InitFunction (ms) | USS (MB) |");
    r.line("|---|---|---|---|---|");
    // Its zygote (another environment: the pre-import list) starts once before it is measured.
    let _ = starts(sampled, &preimported, 1).await?;
    for (label, platform, config) in [
        ("normal start", off(sampled), &heavy),
        ("zygote", sampled.clone(), &heavy),
        (
            "zygote, modules pre-imported",
            sampled.clone(),
            &preimported,
        ),
    ] {
        let s = starts(&platform, config, runs).await?;
        r.line(&format!(
            "| {label} | {:.2} | {:.2} | {:.2} | {:.1} |",
            s.total.median(),
            s.init_runtime.median(),
            s.init_function.median(),
            s.uss.median()
        ));
    }
    r.line("");
    Ok(())
}
