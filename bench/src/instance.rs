//! The instance side's targets: one exchange per warm invocation (a result and the next `next` written back to
//! back), the Node host against the Python host, and a 1 MB event against the interpreters' own decoding.

use std::collections::HashMap;

use bytes::Bytes;
use scf_platform::Platform;

use super::{Mode, Report, Runner, Sample, interpreter_codec, warm};
use crate::hosts::{big_event, warm_rounds};

/// The warm no-op p50 of native and Python against one bare round trip, and Node's against Python's, in
/// interleaved rounds (`rounds` of `n` calls each: the floor, native, Python, Node, again): each ratio is
/// taken within a round, and the verdict is on the median round's.
pub async fn one_exchange_rows(
    r: &mut Report,
    platform: &Platform,
    runners: &[Runner],
    rounds: usize,
    n: usize,
) -> anyhow::Result<()> {
    let labels = ["scf-shim native", "scf-shim python", "scf-shim node"];
    let ours: Vec<&Runner> = labels
        .iter()
        .filter_map(|l| runners.iter().find(|x| x.label == *l))
        .collect();
    if ours.len() < labels.len() {
        return Ok(());
    }
    let pairs: Vec<_> = ours.iter().map(|x| (platform, *x)).collect();
    let rows = warm_rounds(&pairs, rounds, n).await?;
    let p50 = Columns(&rows, |x| x.0);
    r.line(&format!("One exchange per warm invocation: the shim writes its result and its next `next` back to back on the kept-alive connection (HTTP/1.1 pipelining), so the `next` is waiting when the platform has the result, and back-to-back invocations cost one round trip. Measured apart from the table above, in {rounds} rounds of {n} calls each, every round the bare round trip, then native, Python and Node: each ratio is taken within a round, so a host that slows down for a minute slows both sides of it. The figures are the medians over the rounds; the range is the rounds' lowest and highest ratio."));
    r.line("");
    r.line("| runtime | no-op p50 (µs) | baseline (same rounds) | ratio | range | target | |");
    r.line("|---|---|---|---|---|---|---|");
    let floor = p50.median(0);
    for (col, lang) in [(1, "native"), (2, "python")] {
        let ratio = p50.ratios(col, 0);
        let verdict = r.target(
            &format!("warm {lang} no-op ≤ 1.3× one bare round trip"),
            ratio.median() <= 1.3,
        );
        r.line(&format!(
            "| {lang} | {:.1} | one bare round trip {floor:.1} µs | {:.2}× | {} | ≤ 1.3× | {verdict} |",
            p50.median(col),
            ratio.median(),
            ratio.range()
        ));
    }
    let ratio = p50.ratios(3, 2);
    let verdict = r.target(
        "warm node no-op ≤ 1.3× the Python host's",
        ratio.median() <= 1.3,
    );
    r.line(&format!(
        "| node | {:.1} | the Python host {:.1} µs | {:.2}× | {} | ≤ 1.3× | {verdict} |",
        p50.median(3),
        p50.median(2),
        ratio.median(),
        ratio.range()
    ));
    r.line("");
    host_cpu_rows(r, &Columns(&rows, |x| x.1));
    // The same rounds on one CPU, where no wake-up crosses CPUs (`one_cpu.rs`): the hosts' own costs.
    if let Some((cpu, pinned)) =
        crate::one_cpu::on_one_cpu(warm_rounds(&pairs, rounds.min(5), n)).await?
    {
        one_cpu_rows(r, cpu, &pinned);
    }
    Ok(())
}

/// The hosts' columns in [`warm_rounds`]' rows, each with what it is measured against: the column of that
/// baseline and its name (native and Python against the bare round trip, Node against the Python host).
const HOSTS: [(usize, &str, &str, usize); 3] = [
    (1, "native", "the echo server", 0),
    (2, "python", "the echo server", 0),
    (3, "node", "the Python host", 2),
];

/// [`one_exchange_rows`]' rounds again with every process on CPU `cpu`: p50 and CPU per call side by side.
/// No target: the verdicts above are measured as users run the hosts.
fn one_cpu_rows(r: &mut Report, cpu: usize, rows: &[Vec<(f64, f64)>]) {
    let (p50, cpu_us) = (Columns(rows, |x| x.0), Columns(rows, |x| x.1));
    r.line(&format!("The same rounds again with every process on CPU {cpu} ({}: the bench's threads pinned, and so the instances and the echo servers it starts, as for the front door's sync calls below): no wake-up crosses CPUs, so the figures do not move with where the scheduler puts the processes. Not a target: the verdicts above are measured as users run the hosts.", crate::one_cpu::rounds(rows.len())));
    r.line("");
    r.line("| on one CPU | no-op p50 (µs) | ratio | range | CPU per call (µs) | ratio | range |");
    r.line("|---|---|---|---|---|---|---|");
    r.line(&format!(
        "| bare round trip (echo server) | {:.1} | | | {:.1} | | |",
        p50.median(0),
        cpu_us.median(0)
    ));
    for (col, lang, against, base) in HOSTS {
        let (lat, cost) = (p50.ratios(col, base), cpu_us.ratios(col, base));
        r.line(&format!(
            "| {lang} | {:.1} | {:.2}× {against} | {} | {:.1} | {:.2}× | {} |",
            p50.median(col),
            lat.median(),
            lat.range(),
            cpu_us.median(col),
            cost.median(),
            cost.range()
        ));
    }
    r.line("");
}

/// One figure of [`warm_rounds`]' rows (the p50 or the CPU, as the function picks it from each pair): a column per process, the floor
/// first, a row per round.
struct Columns<'a>(&'a [Vec<(f64, f64)>], fn(&(f64, f64)) -> f64);

impl Columns<'_> {
    /// Column `col`'s median over the rounds.
    fn median(&self, col: usize) -> f64 {
        Sample(self.0.iter().map(|row| (self.1)(&row[col])).collect()).median()
    }

    /// Column `a` against column `b`, within each round.
    fn ratios(&self, a: usize, b: usize) -> Sample {
        Sample(
            self.0
                .iter()
                .map(|row| (self.1)(&row[a]) / (self.1)(&row[b]))
                .collect(),
        )
    }
}

/// The same rounds' CPU per call: the bare echo server's per round trip, and each host's function process's
/// per invocation (every thread, kernel time included), with Node's against Python's in the same round. No
/// target: what the host itself spends, apart from when the machine wakes it.
fn host_cpu_rows(r: &mut Report, cpu: &Columns<'_>) {
    r.line("The same rounds' CPU time per call (`/proc/PID/task/*/schedstat` of every thread, kernel time included): the bare echo server's per round trip, and the function's process's per warm invocation. Latency also counts the time the machine takes to wake a process that waits; CPU is what the host itself spends.");
    r.line("");
    r.line("| process | CPU per call (µs) | against | ratio | range |");
    r.line("|---|---|---|---|---|");
    r.line(&format!(
        "| bare echo server (one round trip) | {:.1} | | | |",
        cpu.median(0)
    ));
    for (col, lang, against, base) in HOSTS {
        let ratio = cpu.ratios(col, base);
        r.line(&format!(
            "| {lang} host (one invocation) | {:.1} | {against} | {:.2}× | {} |",
            cpu.median(col),
            ratio.median(),
            ratio.range()
        ));
    }
    r.line("");
}

/// The same 1 MB event with every non-ASCII character escaped (`\uXXXX`): ASCII-only text.
fn ascii_only(event: &str) -> String {
    let mut out = String::with_capacity(event.len() * 2);
    for c in event.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// A 1 MB event's rounds: per runner and round, its event in and result out, and each round's baselines.
struct BigRounds {
    /// Per round: `json.loads`, `json.dumps`, `JSON.parse`, `JSON.stringify` (ms).
    baselines: Vec<[f64; 4]>,
    /// Per runner (in order), per round: (event in, result out), ms.
    runs: Vec<Vec<(f64, f64)>>,
}

/// `rounds` rounds, each: the interpreters' own decode and encode of `event` (the baselines), then every
/// runner's counting handler with it and (`echo`) its echoing one (`n` calls each). Event in is the counting
/// handler's p50 minus the no-op's (`noop_us`, per runner), result out the echo's minus the counting one's.
async fn big_rounds(
    platform: &Platform,
    (runners, noop_us): (&[&Runner], &[f64]),
    python: &str,
    event: &Bytes,
    echo: bool,
    (rounds, n): (usize, usize),
) -> anyhow::Result<BigRounds> {
    let path = std::env::temp_dir().join(format!("scf-bench-event-{}.json", std::process::id()));
    std::fs::write(&path, event)?;
    let mut out = BigRounds {
        baselines: Vec::new(),
        runs: vec![Vec::new(); runners.len()],
    };
    for _ in 0..rounds {
        out.baselines
            .push(interpreter_codec(python, "node", &path)?);
        for (i, runner) in runners.iter().enumerate() {
            let size = warm(platform, runner, "size", event, n).await?.median() / 1000.0;
            let echo = if echo {
                warm(platform, runner, "echo", event, n).await?.median() / 1000.0
            } else {
                f64::NAN
            };
            out.runs[i].push((size - noop_us[i] / 1000.0, echo - size));
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(out)
}

/// A figure's median over the rounds, and the median and range of its ratio to a baseline of the same round.
fn over_rounds(values: &[f64], baselines: &[f64]) -> (f64, Sample) {
    let ratio = Sample(values.iter().zip(baselines).map(|(v, b)| v / b).collect());
    (Sample(values.to_vec()).median(), ratio)
}

/// The 1 MB section: every runner's event in and result out against the interpreters' own decode and encode,
/// measured in interleaved rounds (baselines, then every runner, again); then Node's with the same records
/// as ASCII-only text.
pub async fn big_event_section(
    r: &mut Report,
    platform: &Platform,
    runners: &[Runner],
    python: &str,
    warm_p50: &HashMap<(String, &'static str), (f64, f64)>,
    mode: Mode,
) -> anyhow::Result<()> {
    r.line("## A 1 MB event in, a 1 MB result out");
    r.line("");
    let event = Bytes::from(big_event());
    let (rounds, n) = mode.pick((9, 8), (3, 4), (1, 2));
    let all: Vec<&Runner> = runners.iter().collect();
    let noop: Vec<f64> = all
        .iter()
        .map(|x| warm_p50[&(x.label.clone(), "noop")].0)
        .collect();
    let m = big_rounds(platform, (&all, &noop), python, &event, true, (rounds, n)).await?;
    let base = |k: usize| -> Vec<f64> { m.baselines.iter().map(|b| b[k]).collect() };
    let med = |k: usize| Sample(base(k)).median();
    r.line(&format!(
        "The event is {} bytes of records (nested objects, escapes, non-ASCII). *Event in* = latency of a handler that only counts the records minus the no-op's latency: what delivering the event to the handler costs (transfer + decode). *Result out* = the echo handler's latency minus the counting handler's: encoding and returning the same data. Measured in {rounds} rounds of {n} calls per handler, every round the baselines first (the same text decoded and encoded by the interpreters themselves), then every runtime: each ratio is taken within a round; the table has the medians over the rounds, and the range of the ratio a target is on. Baselines (medians): `json.loads` {:.2} ms, `json.dumps(ensure_ascii=False)` {:.2} ms, `JSON.parse` {:.2} ms, `JSON.stringify` {:.2} ms.",
        event.len(),
        med(0),
        med(1),
        med(2),
        med(3)
    ));
    r.line("");
    r.line("| runtime | event in (ms) | vs decode baseline | target | | result out (ms) | vs encode baseline |");
    r.line("|---|---|---|---|---|---|---|");
    for (i, runner) in all.iter().enumerate() {
        let event_in: Vec<f64> = m.runs[i].iter().map(|x| x.0).collect();
        let result_out: Vec<f64> = m.runs[i].iter().map(|x| x.1).collect();
        let (dec, enc, budget) = match runner.language {
            "python" => (Some(base(0)), Some(base(1)), Some(0.7)),
            "node" => (Some(base(2)), Some(base(3)), Some(1.2)),
            _ => (None, None, None),
        };
        let ein = Sample(event_in.clone()).median();
        let rout = Sample(result_out.clone()).median();
        let in_ratio = dec.as_ref().map(|d| over_rounds(&event_in, d).1);
        let out_ratio = enc.as_ref().map(|e| over_rounds(&result_out, e).1);
        let (target_text, verdict) = match (budget, &in_ratio, runner.command.is_none()) {
            (Some(b), Some(ratio), true) => {
                let v = r.target(
                    &format!("1 MB event {}", runner.language),
                    ratio.median() <= b,
                );
                (format!("≤ {b}×"), v)
            }
            _ => ("—".to_owned(), ""),
        };
        let ratio_text = |x: &Option<Sample>, range: bool| match x {
            Some(s) if range => format!("{:.2}× ({})", s.median(), s.range()),
            Some(s) => format!("{:.2}×", s.median()),
            None => "—".into(),
        };
        r.line(&format!(
            "| {} | {ein:.2} | {} | {target_text} | {verdict} | {rout:.2} | {} |",
            runner.label,
            ratio_text(&in_ratio, budget.is_some() && runner.command.is_none()),
            ratio_text(&out_ratio, false),
        ));
    }
    if let Some(i) = all.iter().position(|x| x.label == "scf-shim node") {
        let text = ascii_only(&String::from_utf8_lossy(&event));
        let ascii = Bytes::from(text);
        let one = (&all[i..=i], &noop[i..=i]);
        let a = big_rounds(platform, one, python, &ascii, false, (rounds, n)).await?;
        let parse: Vec<f64> = a.baselines.iter().map(|b| b[2]).collect();
        let event_in: Vec<f64> = a.runs[0].iter().map(|x| x.0).collect();
        let (ein, ratio) = over_rounds(&event_in, &parse);
        let verdict = r.target("1 MB event node, ASCII only", ratio.median() <= 1.2);
        r.line(&format!(
            "| {} (the same records, ASCII only: {} bytes; `JSON.parse` {:.2} ms) | {ein:.2} | {:.2}× ({}) | ≤ 1.2× | {verdict} | — | — |",
            all[i].label,
            ascii.len(),
            Sample(parse).median(),
            ratio.median(),
            ratio.range()
        ));
    }
    r.line("");
    Ok(())
}
