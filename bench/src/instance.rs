//! The instance side's targets: one exchange per warm invocation (a result and the next `next` written back to
//! back), and the Node host against the Python host and against `JSON.parse` of an ASCII-only event.

use std::path::Path;

use bytes::Bytes;
use scf_platform::Platform;

use super::{Report, Runner, Sample, interpreter_codec, warm};
use crate::hosts::warm_rounds;

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
    let p50 = warm_rounds(&pairs, rounds, n).await?;
    r.line(&format!("One exchange per warm invocation: the shim writes its result and its next `next` back to back on the kept-alive connection (HTTP/1.1 pipelining), so the `next` is waiting when the platform has the result, and back-to-back invocations cost one round trip. Measured apart from the table above, in {rounds} rounds of {n} calls each, every round the bare round trip, then native, Python and Node: each ratio is taken within a round, so a host that slows down for a minute slows both sides of it. The figures are the medians over the rounds; the range is the rounds' lowest and highest ratio."));
    r.line("");
    r.line("| runtime | no-op p50 (µs) | baseline (same rounds) | ratio | range | target | |");
    r.line("|---|---|---|---|---|---|---|");
    let median = |col: usize| Sample(p50.iter().map(|row| row[col]).collect()).median();
    let ratios = |a: usize, b: usize| Sample(p50.iter().map(|row| row[a] / row[b]).collect());
    let floor = median(0);
    for (col, lang) in [(1, "native"), (2, "python")] {
        let ratio = ratios(col, 0);
        let verdict = r.target(
            &format!("warm {lang} no-op ≤ 1.3× one bare round trip"),
            ratio.median() <= 1.3,
        );
        r.line(&format!(
            "| {lang} | {:.1} | one bare round trip {floor:.1} µs | {:.2}× | {:.2}–{:.2}× | ≤ 1.3× | {verdict} |",
            median(col),
            ratio.median(),
            ratio.quantile(0.0),
            ratio.quantile(1.0)
        ));
    }
    let ratio = ratios(3, 2);
    let verdict = r.target(
        "warm node no-op ≤ 1.3× the Python host's",
        ratio.median() <= 1.3,
    );
    r.line(&format!(
        "| node | {:.1} | the Python host {:.1} µs | {:.2}× | {:.2}–{:.2}× | ≤ 1.3× | {verdict} |",
        median(3),
        median(2),
        ratio.median(),
        ratio.quantile(0.0),
        ratio.quantile(1.0)
    ));
    r.line("");
    Ok(())
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

/// The Node host's *event in* for an ASCII-only version of the 1 MB event, against `JSON.parse` of the same
/// text (the section's own row is the event with non-ASCII text). `noop` is the Node no-op p50, µs.
pub async fn node_ascii_event_row(
    r: &mut Report,
    platform: &Platform,
    node: &Runner,
    python: &str,
    event: &str,
    noop: f64,
    n: usize,
) -> anyhow::Result<()> {
    let text = ascii_only(event);
    let path =
        std::env::temp_dir().join(format!("scf-bench-event-ascii-{}.json", std::process::id()));
    std::fs::write(&path, &text)?;
    let [_, _, js_parse, _] = interpreter_codec(python, "node", Path::new(&path))?;
    let _ = std::fs::remove_file(&path);
    let size = warm(platform, node, "size", &Bytes::from(text.clone()), n)
        .await?
        .median()
        / 1000.0;
    let event_in = size - noop / 1000.0;
    let verdict = r.target("1 MB event node, ASCII only", event_in <= 1.2 * js_parse);
    r.line(&format!(
        "| {} (the same records, ASCII only: {} bytes; `JSON.parse` {js_parse:.2} ms) | {event_in:.2} | {:.2}× | ≤ 1.2× | {verdict} | — | — |",
        node.label,
        text.len(),
        event_in / js_parse
    ));
    Ok(())
}
