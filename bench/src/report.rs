//! The report `make bench` writes and what every section shares: samples, the run's size, the machine's
//! description.

use std::process::Command;
use std::time::Duration;

#[derive(Clone, Default)]
pub(crate) struct Sample(pub(crate) Vec<f64>);

impl Sample {
    pub(crate) fn quantile(&self, q: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        let idx = ((v.len() - 1) as f64 * q).round() as usize;
        v[idx.min(v.len() - 1)]
    }
    pub(crate) fn median(&self) -> f64 {
        self.quantile(0.5)
    }

    /// Its lowest and highest value, as ratios: `0.42–0.61×`.
    pub(crate) fn range(&self) -> String {
        format!("{:.2}–{:.2}×", self.quantile(0.0), self.quantile(1.0))
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// How much a run measures: the record (`make bench`), a quick look (`make bench QUICK=1`, under two
/// minutes), or a tiny run that only proves every section still works (`--tiny`, run by `make test` on the
/// debug build; its figures mean nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Full,
    Quick,
    Tiny,
}

impl Mode {
    /// The value for this mode.
    pub fn pick<T>(self, full: T, quick: T, tiny: T) -> T {
        match self {
            Mode::Full => full,
            Mode::Quick => quick,
            Mode::Tiny => tiny,
        }
    }

    pub(crate) fn from_args() -> Mode {
        if std::env::args().any(|a| a == "--tiny") {
            Mode::Tiny
        } else if std::env::args().any(|a| a == "--quick") {
            Mode::Quick
        } else {
            Mode::Full
        }
    }
}

pub(crate) struct Report {
    pub(crate) md: String,
    pub(crate) verdicts: Vec<(String, bool)>,
}

impl Report {
    pub(crate) fn new() -> Report {
        Report {
            md: String::new(),
            verdicts: Vec::new(),
        }
    }
    pub(crate) fn line(&mut self, s: &str) {
        self.md.push_str(s);
        self.md.push('\n');
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{s}\n").as_bytes());
    }
    pub(crate) fn target(&mut self, what: &str, holds: bool) -> &'static str {
        self.verdicts.push((what.to_owned(), holds));
        if holds { "holds" } else { "**missed**" }
    }
}

/// The machine, for the report's head.
pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
            })
        })
        .unwrap_or(0.0)
        / 1024.0
        / 1024.0;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, {mem:.0} GiB; load average at start: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// A program's `--version` (or "not found").
pub(crate) fn version(argv: &[&str]) -> String {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
            .trim()
            .to_owned()
        })
        .unwrap_or_else(|_| "not found".into())
}
