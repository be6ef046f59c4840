//! The instance side's targets: one exchange per warm invocation (a result and the next `next` written back to
//! back), and the Node host against the Python host and against `JSON.parse` of an ASCII-only event.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use scf_platform::Platform;

use super::{Report, Runner, interpreter_codec, warm};

/// The warm no-op p50 of native and Python against one bare round trip (the floor measured in the same run),
/// and Node's against Python's. `warm_p50` maps (runner label, handler) to (p50, p99) in µs.
pub fn one_exchange_rows(
    r: &mut Report,
    warm_p50: &HashMap<(String, &'static str), (f64, f64)>,
    floor: f64,
) {
    r.line("One exchange per warm invocation: the shim writes its result and its next `next` back to back on the kept-alive connection (HTTP/1.1 pipelining), so the `next` is waiting when the platform has the result, and back-to-back invocations cost one round trip.");
    r.line("");
    r.line("| runtime | no-op p50 (µs) | baseline (same run) | ratio | target | |");
    r.line("|---|---|---|---|---|---|");
    let p50 = |label: &str| warm_p50.get(&(label.to_owned(), "noop")).map(|v| v.0);
    for (label, lang) in [("scf-shim native", "native"), ("scf-shim python", "python")] {
        let Some(ours) = p50(label) else { continue };
        let verdict = r.target(
            &format!("warm {lang} no-op ≤ 1.3× one bare round trip"),
            ours <= 1.3 * floor,
        );
        r.line(&format!(
            "| {lang} | {ours:.1} | one bare round trip {floor:.1} µs | {:.2}× | ≤ 1.3× | {verdict} |",
            ours / floor
        ));
    }
    if let (Some(node), Some(python)) = (p50("scf-shim node"), p50("scf-shim python")) {
        let verdict = r.target(
            "warm node no-op ≤ 1.3× the Python host's",
            node <= 1.3 * python,
        );
        r.line(&format!(
            "| node | {node:.1} | the Python host {python:.1} µs | {:.2}× | ≤ 1.3× | {verdict} |",
            node / python
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
