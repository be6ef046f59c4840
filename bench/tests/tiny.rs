//! `scf-bench --tiny`: every section of `make bench` runs end to end (real platform, real instances, AWS's
//! clients where installed) at the smallest sizes, and writes a report with every section and its targets.
//! Its figures are a debug build's on a shared machine and are not checked: only that each was measured.

use std::path::Path;
use std::process::Command;

#[test]
fn every_section_runs_and_reports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let out = root.join("target/BENCHMARKS-tiny.md");
    let _ = std::fs::remove_file(&out);
    let run = Command::new(env!("CARGO_BIN_EXE_scf-bench"))
        .arg("--tiny")
        .output()
        .expect("scf-bench runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "scf-bench --tiny failed:\n{stderr}");
    let report = std::fs::read_to_string(&out).expect("the tiny report is written");
    for section in [
        "## Cold start: spawn → ready",
        "## Warm invoke: latency and throughput",
        "## A 1 MB event in, a 1 MB result out",
        "## Memory: resident set of an idle instance",
        "## Scale",
        "## Web functions: the proxy",
        "## Cost per unit of work",
        "## Targets",
    ] {
        assert!(report.contains(section), "no {section:?} in:\n{report}");
    }
    // Every figure was measured: no NaN in any table, and the summary counts the targets it printed.
    assert!(!report.contains("NaN"), "a figure is missing:\n{report}");
    let verdicts = report.matches("| holds |").count() + report.matches("| **missed** |").count();
    let summary = report
        .lines()
        .find_map(|l| l.strip_suffix(" targets hold on this run:"))
        .expect("the summary line");
    let total: usize = summary
        .rsplit(' ')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("N of M");
    assert!(total >= 20, "only {total} targets in:\n{report}");
    assert!(
        verdicts > 0 && verdicts <= total,
        "{verdicts} verdicts in tables, {total} in the summary"
    );
    // With two CPUs or more, the warm rounds, the front door's sync calls and the warm-instance curve were
    // measured again on one, and the API Gateway's routing there, unless the machine does not let the
    // bench move its threads (then it says so, and the run goes on).
    let pinned = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
        && !stderr.contains("scf-bench: not measured on one CPU");
    if pinned {
        for table in [
            "The same calls again with every process of them on CPU",
            "The same rounds again with every process on CPU",
            "The same curve again with every process on CPU",
            "The API Gateway listener as the APIs grow",
        ] {
            assert!(report.contains(table), "no {table:?} in:\n{report}");
        }
    }
    // The warm-instance curve has each of its sizes (twice where it was also measured on one CPU).
    let rows = if pinned { 2 } else { 1 };
    assert!(
        report.matches("| 1 (1) |").count() == rows && report.matches("| 4 (4) |").count() == rows,
        "{report}"
    );
}
