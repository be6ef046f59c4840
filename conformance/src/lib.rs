//! `scf-conformance`: the cross-language conformance kit (`scf-local conformance`, `docs/conformance.md`).
//!
//! Cases are data (`cases/<case>/case.json`, schema in the suite's `README.md`); the suite (the cases, the
//! Python and Node.js handlers, the README) is embedded in the kit when it is built and written to a
//! temporary directory when it runs, so no checkout is needed (`--cases DIR` runs other cases). Every case
//! runs in every language on its own instance, started the way `scf-local invoke` and `scf-local serve`
//! start them ([`EventInstance`]), and invocations of one case go to the same instance while it lives
//! (warm), a fresh one when it is gone. The outcome is compared with the case's expectation and the
//! whole run printed as a matrix: case × language, `pass`, `FAIL` (with the difference) or `n/a` (with the
//! reason the case gives).
//!
//! With a runtime command, each instance is that command instead of `scf-shim`: it is run through the
//! platform's custom-runtime path (an executable `bootstrap` in the code directory, the runtime API on a
//! loopback TCP port named by `SCF_RUNTIME_API`/`SCF_RUNTIME_API_PORT`, `_HANDLER` = the case's handler), so
//! any implementation of the runtime API can be checked against the same cases.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use scf_platform::config::{FunctionConfig, Overrides};
use scf_platform::{EventInstance, Platform, PlatformError};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/suite.rs"));
}

/// The execution timeout of a case that names none: generous, so that a loaded machine (debug builds, 2
/// cores, other builds) does not fail a case on time; the cases about time set their own.
const DEFAULT_TIMEOUT_SECS: f64 = 30.0;

/// The keys of an error body, in the order `docs/errors.md` fixes.
const ERROR_KEYS: [&str; 6] = [
    "errorCode",
    "errorMessage",
    "errorType",
    "requestId",
    "stackTrace",
    "statusCode",
];

/// A language the suite has handlers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Language {
    /// `handlers/python/` (`conformance.py`), runtime `python3`.
    Python,
    /// `handlers/node/` (`conformance.js`, `esm.mjs`), runtime `nodejs`.
    Node,
    /// `libconformance.so`, built from `handlers/rust/`, runtime `native`.
    Rust,
}

impl Language {
    /// Every language, in the matrix's column order.
    pub const ALL: [Language; 3] = [Language::Python, Language::Node, Language::Rust];

    /// `python`, `node`, `rust`: the name in `case.json` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Node => "node",
            Language::Rust => "rust",
        }
    }

    /// Parses a language name (`python`, `node`/`nodejs`, `rust`).
    pub fn parse(s: &str) -> Result<Language, String> {
        match s.to_ascii_lowercase().as_str() {
            "python" | "python3" => Ok(Language::Python),
            "node" | "nodejs" | "javascript" => Ok(Language::Node),
            "rust" | "native" => Ok(Language::Rust),
            _ => Err(format!(
                "unknown language '{s}': expected python, node or rust"
            )),
        }
    }

    fn runtime(self) -> &'static str {
        match self {
            Language::Python => "python3",
            Language::Node => "nodejs",
            Language::Rust => "native",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The cases: one folder per case (`None`: the suite embedded in the kit).
    pub cases_dir: Option<PathBuf>,
    /// The handlers: `python/`, `node/` (`None`: the embedded suite's, or `handlers` beside `cases_dir`).
    pub handlers_dir: Option<PathBuf>,
    /// The languages (empty: all).
    pub languages: Vec<Language>,
    /// Only these cases (empty: all).
    pub cases: Vec<String>,
    /// An external runtime: a shell command run as the instance through the custom-runtime path.
    pub runtime_cmd: Option<String>,
    /// The Rust handlers' library (`libconformance.so`; `None`: beside the running executable, or built).
    pub rust_lib: Option<PathBuf>,
    /// How many (case, language) pairs run at once.
    pub jobs: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cases_dir: None,
            handlers_dir: None,
            languages: Vec::new(),
            cases: Vec::new(),
            runtime_cmd: None,
            rust_lib: None,
            jobs: 4,
        }
    }
}

/// The directory of the running executable.
fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
}

/// The Rust handlers' library: `libconformance.so` beside the running executable; else, when the
/// executable was built in a checkout (`<checkout>/target/<profile>/`), built there with cargo.
fn find_rust_lib() -> Result<PathBuf, PlatformError> {
    let dir = exe_dir().unwrap_or_default();
    let beside = dir.join("libconformance.so");
    if beside.is_file() {
        return Ok(beside);
    }
    let checkout = dir.parent().and_then(Path::parent).map(Path::to_path_buf);
    let handlers = checkout
        .as_ref()
        .map(|c| c.join("tests/conformance/handlers/rust/Cargo.toml"));
    if let (Some(checkout), Some(handlers)) = (&checkout, &handlers)
        && handlers.is_file()
    {
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cargo =
            std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cargo
            .current_dir(checkout)
            .args(["build", "-p", "conformance-handlers"]);
        if release {
            cargo.arg("--release");
        }
        let built = cargo.status().map(|s| s.success()).unwrap_or(false);
        if built && beside.is_file() {
            return Ok(beside);
        }
    }
    Err(PlatformError::Config(format!(
        "the Rust handlers' library is not beside scf-local ({}): build it with `cargo build -p conformance-handlers` in the scf-runtime checkout, pass --rust-lib, or leave Rust out (--language python --language node)",
        beside.display()
    )))
}

/// The interpreter for the Python handlers: `SCF_PYTHON`, else a `.venv` of the checkout the executable was
/// built in (`<checkout>/target/<profile>/` → `<checkout>/.venv`), else the shim's default (`python3`).
fn python_interpreter() -> Option<PathBuf> {
    if std::env::var_os("SCF_PYTHON").is_some() {
        return None;
    }
    let venv = exe_dir()?.parent()?.parent()?.join(".venv/bin/python");
    venv.is_file().then_some(venv)
}

/// `scf-local conformance`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run only this language (repeatable): python, node, rust. Default: all three.
    #[arg(long = "language", value_parser = Language::parse)]
    pub languages: Vec<Language>,
    /// Run each instance as this command (with `sh`, in the code directory, `_HANDLER` set to the case's
    /// handler) through the custom-runtime path, instead of scf-shim: any runtime API implementation.
    #[arg(long)]
    pub runtime_cmd: Option<String>,
    /// The cases' directory (default: the suite built into scf-local).
    #[arg(long)]
    pub cases: Option<PathBuf>,
    /// The handlers' directory, with python/ and node/ (default: `handlers` beside the cases' directory).
    #[arg(long)]
    pub handlers: Option<PathBuf>,
    /// Run only this case (repeatable).
    #[arg(long = "case")]
    pub only: Vec<String>,
    /// The Rust handlers' library (default: libconformance.so beside scf-local, built when scf-local was
    /// built in a checkout).
    #[arg(long)]
    pub rust_lib: Option<PathBuf>,
    /// How many case × language pairs run at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
}

/// Runs `scf-local conformance`: prints the matrix, returns the exit code (0: no failure, 1: a failure).
pub fn main(args: Args) -> Result<u8, PlatformError> {
    let mut opts = Options {
        languages: args.languages,
        cases: args.only,
        jobs: args.jobs,
        runtime_cmd: args.runtime_cmd.as_deref().map(absolute_command),
        rust_lib: args.rust_lib,
        ..Options::default()
    };
    if let Some(c) = args.cases {
        opts.handlers_dir = Some(
            args.handlers
                .clone()
                .unwrap_or_else(|| c.parent().unwrap_or(Path::new(".")).join("handlers")),
        );
        opts.cases_dir = Some(c);
    }
    if let Some(h) = args.handlers {
        opts.handlers_dir = Some(h);
    }
    if let Some(venv) = python_interpreter() {
        // SAFETY: no other thread exists yet (the runtime is built below), so nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var("SCF_PYTHON", venv) };
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(PlatformError::io("starting the runtime"))?;
    let report = rt.block_on(async {
        let platform = Platform::discover()?;
        run(&platform, &opts).await
    })?;
    let mut out = std::io::stdout().lock();
    use std::io::Write as _;
    out.write_all(report.render().as_bytes())
        .and_then(|()| out.flush())
        .map_err(PlatformError::io("writing the report"))?;
    Ok(if report.passed() { 0 } else { 1 })
}

// ---------------------------------------------------------------------------------------------------------
// The case schema (tests/conformance/README.md).

/// One case, as `case.json` holds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Case {
    /// What the case checks, in words.
    pub description: String,
    /// The handler string (default `conformance.<case>`).
    #[serde(default)]
    pub handler: Option<String>,
    /// The function's configuration.
    #[serde(default)]
    pub config: CaseConfig,
    /// The invocations, run in order on one instance while it lives.
    pub invocations: Vec<Invocation>,
    /// Per-language settings: not applicable, another handler.
    #[serde(default)]
    pub languages: BTreeMap<String, LanguageSettings>,
}

/// A case's function configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CaseConfig {
    /// The function's name (default: the case's).
    pub name: Option<String>,
    /// Execution timeout, seconds (default 30).
    pub timeout: Option<f64>,
    /// Memory size, MB (default 128).
    pub memory: Option<u32>,
    /// Environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// One language's settings for a case.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LanguageSettings {
    /// Not applicable in this language, and why.
    pub na: Option<String>,
    /// This language's handler string.
    pub handler: Option<String>,
}

/// One invocation: its event and what must come back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Invocation {
    /// The event as a JSON value (sent in compact form).
    pub event: Option<Value>,
    /// The event's exact text (need not be JSON).
    pub event_text: Option<String>,
    /// A file in the case's folder holding the event's exact bytes.
    pub event_file: Option<String>,
    /// A generated event: `{"data":"<a-z0-9 repeated>"}` of exactly `size` bytes.
    pub event_generate: Option<Generate>,
    /// The expectation, for every language without its own.
    pub expect: Expect,
    /// Python's own expectation, where Python legitimately differs.
    pub python: Option<Expect>,
    /// Node's own expectation.
    pub node: Option<Expect>,
    /// Rust's own expectation.
    pub rust: Option<Expect>,
}

/// A generated event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    /// The event's size in bytes.
    pub size: usize,
}

/// What an invocation must produce. Without `error`, it must succeed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    /// The exact body text (`${requestId}` is the request's id).
    pub body: Option<String>,
    /// The body, compared as JSON (`"${requestId}"` is the request's id).
    pub json: Option<Value>,
    /// The body is the event, compared as JSON.
    #[serde(default)]
    pub echo: bool,
    /// A regular expression the raw body must match.
    pub body_pattern: Option<String>,
    /// The error the invocation must fail with.
    pub error: Option<ExpectError>,
    /// Lines the function's log must contain, in this order (others may come between).
    pub log: Option<Vec<LogLine>>,
    /// The function's log lines, exactly.
    pub log_exact: Option<Vec<LogLine>>,
}

/// An expected error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExpectError {
    /// `errorType`.
    pub error_type: String,
    /// `statusCode`.
    pub status_code: u16,
    /// `errorMessage`, exactly.
    pub error_message: Option<String>,
    /// A regular expression `errorMessage` must match.
    pub error_message_pattern: Option<String>,
    /// A regular expression `stackTrace` must match.
    pub stack_trace_pattern: Option<String>,
}

/// An expected log line: its exact text, or `{"pattern": "<regex>"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum LogLine {
    /// The line's text.
    Exact(String),
    /// A regular expression the line matches.
    Pattern {
        /// The expression.
        pattern: String,
    },
}

impl LogLine {
    fn matches(&self, line: &str) -> Result<bool, String> {
        match self {
            LogLine::Exact(s) => Ok(s == line),
            LogLine::Pattern { pattern } => Ok(regex(pattern)?.is_match(line)),
        }
    }

    fn show(&self) -> String {
        match self {
            LogLine::Exact(s) => format!("{:?}", clip(s)),
            LogLine::Pattern { pattern } => format!("/{pattern}/"),
        }
    }
}

/// Loads every case (a folder with a `case.json`) under `dir`, by name.
pub fn load_cases(dir: &Path) -> Result<BTreeMap<String, (PathBuf, Case)>, PlatformError> {
    let entries =
        std::fs::read_dir(dir).map_err(PlatformError::io(format!("reading {}", dir.display())))?;
    let mut cases = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(PlatformError::io(format!("reading {}", dir.display())))?;
        let path = entry.path();
        let file = path.join("case.json");
        if !file.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file)
            .map_err(PlatformError::io(format!("reading {}", file.display())))?;
        let case: Case = serde_json::from_str(&text)
            .map_err(|e| PlatformError::Config(format!("{}: {e}", file.display())))?;
        validate(&name, &case)
            .map_err(|e| PlatformError::Config(format!("{}: {e}", file.display())))?;
        cases.insert(name, (path, case));
    }
    Ok(cases)
}

fn validate(name: &str, case: &Case) -> Result<(), String> {
    if case.invocations.is_empty() {
        return Err("no invocations".into());
    }
    for lang in case.languages.keys() {
        Language::parse(lang)?;
    }
    for (i, inv) in case.invocations.iter().enumerate() {
        let sources = [
            inv.event.is_some(),
            inv.event_text.is_some(),
            inv.event_file.is_some(),
            inv.event_generate.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(format!("invocation {i}: more than one event source"));
        }
        for e in [
            Some(&inv.expect),
            inv.python.as_ref(),
            inv.node.as_ref(),
            inv.rust.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            let checks = [
                e.body.is_some(),
                e.json.is_some(),
                e.echo,
                e.body_pattern.is_some(),
                e.error.is_some(),
                e.log.is_some(),
                e.log_exact.is_some(),
            ];
            if !checks.iter().any(|c| *c) {
                return Err(format!(
                    "{name}: invocation {i}: an expectation that checks nothing"
                ));
            }
            for p in [
                e.body_pattern.as_ref(),
                e.error
                    .as_ref()
                    .and_then(|x| x.error_message_pattern.as_ref()),
                e.error
                    .as_ref()
                    .and_then(|x| x.stack_trace_pattern.as_ref()),
            ]
            .into_iter()
            .flatten()
            {
                regex(p)?;
            }
        }
    }
    Ok(())
}

fn regex(pattern: &str) -> Result<regex_lite::Regex, String> {
    regex_lite::Regex::new(pattern).map_err(|e| format!("bad pattern /{pattern}/: {e}"))
}

impl Invocation {
    fn event_bytes(&self, case_dir: &Path) -> Result<Bytes, String> {
        if let Some(v) = &self.event {
            return Ok(Bytes::from(v.to_string()));
        }
        if let Some(t) = &self.event_text {
            return Ok(Bytes::from(t.clone()));
        }
        if let Some(f) = &self.event_file {
            let p = case_dir.join(f);
            return std::fs::read(&p)
                .map(Bytes::from)
                .map_err(|e| format!("reading {}: {e}", p.display()));
        }
        if let Some(g) = &self.event_generate {
            return Ok(Bytes::from(generate(g.size)));
        }
        Ok(Bytes::from_static(b"{}"))
    }

    fn expect_for(&self, lang: Language) -> &Expect {
        let own = match lang {
            Language::Python => &self.python,
            Language::Node => &self.node,
            Language::Rust => &self.rust,
        };
        own.as_ref().unwrap_or(&self.expect)
    }
}

/// `{"data":"abc…"}` of exactly `size` bytes (at least 11).
pub fn generate(size: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = Vec::with_capacity(size.max(11));
    out.extend_from_slice(b"{\"data\":\"");
    let n = size.saturating_sub(11);
    out.extend((0..n).map(|i| ALPHABET[i % ALPHABET.len()]));
    out.extend_from_slice(b"\"}");
    out
}

// ---------------------------------------------------------------------------------------------------------
// Running.

/// The verdict of one case in one language.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Every invocation met its expectation.
    Pass,
    /// What differed.
    Fail(String),
    /// Not applicable, and why.
    NotApplicable(String),
}

/// The matrix of one run.
#[derive(Debug)]
pub struct Report {
    /// The languages, in column order.
    pub languages: Vec<Language>,
    /// Per case, per language.
    pub rows: BTreeMap<String, BTreeMap<Language, Verdict>>,
    /// The runtime command, if the run used one.
    pub runtime_cmd: Option<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Report {
    /// Counts of pass, fail and not applicable.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for v in self.rows.values().flat_map(BTreeMap::values) {
            match v {
                Verdict::Pass => c.0 += 1,
                Verdict::Fail(_) => c.1 += 1,
                Verdict::NotApplicable(_) => c.2 += 1,
            }
        }
        c
    }

    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.counts().1 == 0
    }

    /// The matrix, then the failures' differences and the reasons for n/a, then a summary line.
    pub fn render(&self) -> String {
        let width = self.rows.keys().map(String::len).max().unwrap_or(4).max(4);
        let mut s = String::new();
        let _ = write!(s, "{:width$}", "case");
        for l in &self.languages {
            let _ = write!(s, "  {:6}", l.name());
        }
        s.push('\n');
        for (case, row) in &self.rows {
            let _ = write!(s, "{case:width$}");
            for l in &self.languages {
                let cell = match row.get(l) {
                    Some(Verdict::Pass) => "pass",
                    Some(Verdict::Fail(_)) => "FAIL",
                    Some(Verdict::NotApplicable(_)) => "n/a",
                    None => "-",
                };
                let _ = write!(s, "  {cell:6}");
            }
            s.push('\n');
        }
        let mut failures = String::new();
        let mut na = String::new();
        for (case, row) in &self.rows {
            for (l, v) in row {
                match v {
                    Verdict::Fail(d) => {
                        let _ = writeln!(failures, "FAIL {case} [{}]:", l.name());
                        for line in d.lines() {
                            let _ = writeln!(failures, "    {line}");
                        }
                    }
                    Verdict::NotApplicable(r) => {
                        let _ = writeln!(na, "  {case} [{}]: {r}", l.name());
                    }
                    Verdict::Pass => {}
                }
            }
        }
        if !na.is_empty() {
            s.push_str("\nnot applicable:\n");
            s.push_str(&na);
        }
        if !failures.is_empty() {
            s.push('\n');
            s.push_str(&failures);
        }
        let (p, f, n) = self.counts();
        let _ = writeln!(
            s,
            "\n{} cases × {} language{} = {} cells: {p} pass, {f} FAIL, {n} n/a ({:.1} s{})",
            self.rows.len(),
            self.languages.len(),
            if self.languages.len() == 1 { "" } else { "s" },
            self.rows.len() * self.languages.len(),
            self.elapsed.as_secs_f64(),
            self.runtime_cmd
                .as_deref()
                .map(|c| format!(", runtime command: {c}"))
                .unwrap_or_default(),
        );
        s
    }
}

/// A temporary directory removed on drop.
#[derive(Debug)]
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where a run's cases and handlers are.
struct Suite {
    /// Removed when the run ends.
    _staging: Staging,
    cases_dir: PathBuf,
    /// Each language's code directory.
    dirs: BTreeMap<Language, PathBuf>,
}

/// Writes the suite built into the kit under `root`.
fn write_embedded(root: &Path) -> Result<(), PlatformError> {
    for (rel, bytes) in embedded::SUITE {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(PlatformError::io(format!("creating {}", parent.display())))?;
        }
        std::fs::write(&path, bytes)
            .map_err(PlatformError::io(format!("writing {}", path.display())))?;
    }
    Ok(())
}

/// Prepares the run: the suite (the cases given, or the embedded ones written out), and each language's
/// code directory: a copy of its handlers (the Rust library for Rust), and, with a runtime command, a
/// `bootstrap` that execs it. Blocking.
fn stage(opts: &Options, langs: &[Language]) -> Result<Suite, PlatformError> {
    let root = std::env::temp_dir().join(format!(
        "scf-conformance-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let staging = Staging(root.clone());
    let (cases_dir, handlers_dir) = match &opts.cases_dir {
        Some(cases) => (
            cases.clone(),
            opts.handlers_dir
                .clone()
                .unwrap_or_else(|| cases.parent().unwrap_or(Path::new(".")).join("handlers")),
        ),
        None => {
            let suite = root.join("suite");
            write_embedded(&suite)?;
            (
                suite.join("cases"),
                opts.handlers_dir
                    .clone()
                    .unwrap_or_else(|| suite.join("handlers")),
            )
        }
    };
    let mut dirs = BTreeMap::new();
    for &lang in langs {
        let dir = root.join(lang.name());
        std::fs::create_dir_all(&dir)
            .map_err(PlatformError::io(format!("creating {}", dir.display())))?;
        match lang {
            Language::Rust => {
                let lib = match &opts.rust_lib {
                    Some(l) if l.is_file() => l.clone(),
                    Some(l) => {
                        return Err(PlatformError::Config(format!(
                            "{} is missing: build the Rust handlers with `cargo build -p conformance-handlers`",
                            l.display()
                        )));
                    }
                    None => find_rust_lib()?,
                };
                let to = dir.join("libconformance.so");
                std::fs::copy(&lib, &to)
                    .map_err(PlatformError::io(format!("copying {}", lib.display())))?;
            }
            _ => {
                let from = handlers_dir.join(lang.name());
                copy_dir(&from, &dir)
                    .map_err(PlatformError::io(format!("copying {}", from.display())))?;
            }
        }
        if let Some(cmd) = &opts.runtime_cmd {
            let bootstrap = dir.join("bootstrap");
            std::fs::write(
                &bootstrap,
                format!("#!/bin/sh\n# scf-local conformance --runtime-cmd\nexec {cmd}\n"),
            )
            .map_err(PlatformError::io(format!(
                "writing {}",
                bootstrap.display()
            )))?;
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755))
                .map_err(PlatformError::io(format!("chmod {}", bootstrap.display())))?;
        }
        dirs.insert(lang, dir);
    }
    Ok(Suite {
        _staging: staging,
        cases_dir,
        dirs,
    })
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "__pycache__" || name == "node_modules" {
            continue;
        }
        let ty = entry.file_type()?;
        if ty.is_dir() {
            copy_dir(&entry.path(), &to.join(&name))?;
        } else {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

/// Makes the relative paths in a runtime command absolute (the instance runs in its code directory): each
/// word with a `/` in it that names an existing file or directory from here.
pub fn absolute_command(cmd: &str) -> String {
    cmd.split(' ')
        .map(|word| {
            let p = Path::new(word);
            if word.contains('/') && p.is_relative() && p.exists() {
                if let Ok(abs) = p.canonicalize() {
                    return abs.display().to_string();
                }
            }
            word.to_owned()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the suite and returns the matrix.
pub async fn run(platform: &Platform, opts: &Options) -> Result<Report, PlatformError> {
    let started = Instant::now();
    let languages = if opts.languages.is_empty() {
        Language::ALL.to_vec()
    } else {
        let mut l = opts.languages.clone();
        l.sort();
        l.dedup();
        l
    };
    let suite = {
        let (opts, languages) = (opts.clone(), languages.clone());
        tokio::task::spawn_blocking(move || stage(&opts, &languages))
            .await
            .map_err(|e| PlatformError::Config(format!("preparing the run: {e}")))??
    };
    let mut cases = load_cases(&suite.cases_dir)?;
    if !opts.cases.is_empty() {
        for name in &opts.cases {
            if !cases.contains_key(name) {
                return Err(PlatformError::Config(format!("no case named '{name}'")));
            }
        }
        cases.retain(|name, _| opts.cases.contains(name));
    }
    let dirs = &suite.dirs;
    let semaphore = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    // The slowest cases (timeouts, memory) first, so they overlap with the rest.
    let mut order: Vec<(&String, &(PathBuf, Case))> = cases.iter().collect();
    order.sort_by_key(|(name, _)| !(name.contains("timeout") || name.contains("memory")));
    for (name, (case_dir, case)) in order {
        for &lang in &languages {
            let settings = case.languages.get(lang.name()).cloned().unwrap_or_default();
            if let Some(reason) = settings.na {
                set.spawn(std::future::ready((
                    name.clone(),
                    lang,
                    Verdict::NotApplicable(reason),
                )));
                continue;
            }
            let job = Job {
                name: name.clone(),
                case_dir: case_dir.clone(),
                case: case.clone(),
                lang,
                handler: settings
                    .handler
                    .or_else(|| case.handler.clone())
                    .unwrap_or_else(|| format!("conformance.{name}")),
                code_dir: dirs.get(&lang).cloned().unwrap_or_default(),
                custom: opts.runtime_cmd.is_some(),
            };
            let platform = platform.clone();
            let semaphore = semaphore.clone();
            set.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let verdict = match job.run(&platform).await {
                    Ok(()) => Verdict::Pass,
                    Err(diff) => Verdict::Fail(diff),
                };
                (job.name, job.lang, verdict)
            });
        }
    }
    let mut rows: BTreeMap<String, BTreeMap<Language, Verdict>> = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((name, lang, verdict)) => {
                rows.entry(name).or_default().insert(lang, verdict);
            }
            Err(e) => {
                return Err(PlatformError::Config(format!(
                    "a conformance job failed: {e}"
                )));
            }
        }
    }
    Ok(Report {
        languages,
        rows,
        runtime_cmd: opts.runtime_cmd.clone(),
        elapsed: started.elapsed(),
    })
}

struct Job {
    name: String,
    case_dir: PathBuf,
    case: Case,
    lang: Language,
    handler: String,
    code_dir: PathBuf,
    custom: bool,
}

/// What one invocation produced.
struct Got {
    request_id: String,
    body: Bytes,
    failed: bool,
    lines: Vec<String>,
}

impl Job {
    async fn run(&self, platform: &Platform) -> Result<(), String> {
        let over = Overrides {
            name: Some(
                self.case
                    .config
                    .name
                    .clone()
                    .unwrap_or_else(|| self.name.replace('_', "-")),
            ),
            handler: Some(self.handler.clone()),
            runtime: Some(
                if self.custom {
                    "custom"
                } else {
                    self.lang.runtime()
                }
                .to_owned(),
            ),
            memory_mb: self.case.config.memory,
            timeout: Some(self.case.config.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS)),
            init_timeout: Some(30.0),
            env: self
                .case
                .config
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..Overrides::default()
        };
        let function = FunctionConfig::load(&self.code_dir, &over).map_err(|e| e.to_string())?;
        let mut instance: Option<EventInstance> = None;
        let mut problems = Vec::new();
        for (i, inv) in self.case.invocations.iter().enumerate() {
            let event = inv.event_bytes(&self.case_dir)?;
            let got = invoke(platform, &function, &mut instance, event.clone()).await;
            let expect = inv.expect_for(self.lang);
            if let Err(diff) = check(expect, &got, &event) {
                let n = self.case.invocations.len();
                problems.push(if n > 1 {
                    format!("invocation {}: {diff}", i + 1)
                } else {
                    diff
                });
            }
        }
        if let Some(instance) = instance {
            instance.stop().await;
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// Runs one invocation on `slot`'s instance, starting one when there is none or it is gone.
async fn invoke(
    platform: &Platform,
    function: &FunctionConfig,
    slot: &mut Option<EventInstance>,
    event: Bytes,
) -> Got {
    let request_id = uuid::Uuid::new_v4().to_string();
    if let Some(old) = slot.take_if(|i| !i.is_usable()) {
        old.stop().await;
    }
    let instance = match slot {
        Some(i) => i,
        None => match EventInstance::start(platform, function).await {
            Ok(i) => slot.insert(i),
            Err(failure) => {
                return Got {
                    body: Bytes::from(failure.error.to_body(&request_id)),
                    request_id,
                    failed: true,
                    lines: failure.lines,
                };
            }
        },
    };
    let outcome = instance.invoke(&request_id, event, false).await;
    let lines = outcome.lines;
    let (body, failed) = scf_platform::caller_body(outcome.result);
    Got {
        request_id,
        body,
        failed,
        lines,
    }
}

fn clip(s: &str) -> String {
    const MAX: usize = 400;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

fn substitute(v: &Value, request_id: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("${requestId}", request_id)),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, request_id)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), substitute(x, request_id)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Compares what came back with the expectation; the error is every difference, one per line.
fn check(expect: &Expect, got: &Got, event: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(&got.body);
    let mut diffs = Vec::new();
    match (&expect.error, got.failed) {
        (None, true) => diffs.push(format!("expected success, got the error {}", clip(&text))),
        (Some(e), false) => diffs.push(format!(
            "expected the error {} {}, got success: {}",
            e.status_code,
            e.error_type,
            clip(&text)
        )),
        (Some(e), true) => check_error(e, got, &text, &mut diffs),
        (None, false) => {}
    }
    if expect.error.is_some() != got.failed {
        // The body cannot match either; the function's last lines say more.
        let tail = &got.lines[got.lines.len().saturating_sub(8)..];
        if !tail.is_empty() {
            diffs.push(format!("the function's last log lines: {tail:?}"));
        }
        return Err(diffs.join("\n"));
    }
    if let Some(body) = &expect.body {
        let want = body.replace("${requestId}", &got.request_id);
        if want != text {
            diffs.push(format!(
                "body: expected {:?}\n      got      {:?}",
                clip(&want),
                clip(&text)
            ));
        }
    }
    if let Some(json) = &expect.json {
        let want = substitute(json, &got.request_id);
        match serde_json::from_slice::<Value>(&got.body) {
            Ok(v) if v == want => {}
            Ok(_) => diffs.push(format!(
                "json: expected {}\n      got      {}",
                clip(&want.to_string()),
                clip(&text)
            )),
            Err(e) => diffs.push(format!("json: the body is not JSON ({e}): {}", clip(&text))),
        }
    }
    if expect.echo {
        let want = serde_json::from_slice::<Value>(event);
        let have = serde_json::from_slice::<Value>(&got.body);
        match (want, have) {
            (Ok(w), Ok(h)) if w == h => {}
            (Ok(_), Ok(_)) => {
                diffs.push(format!("echo: the body is not the event: {}", clip(&text)))
            }
            (w, h) => diffs.push(format!(
                "echo: event or body is not JSON ({:?}, {:?})",
                w.err(),
                h.err()
            )),
        }
    }
    if let Some(p) = &expect.body_pattern {
        match regex(p) {
            Ok(re) if re.is_match(&text) => {}
            Ok(_) => diffs.push(format!("body does not match /{p}/: {}", clip(&text))),
            Err(e) => diffs.push(e),
        }
    }
    if let Some(want) = &expect.log {
        let mut it = got.lines.iter();
        for w in want {
            let mut found = false;
            for line in it.by_ref() {
                match w.matches(line) {
                    Ok(true) => {
                        found = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        diffs.push(e);
                        break;
                    }
                }
            }
            if !found {
                diffs.push(format!(
                    "log: no line {} (in this order); the log was {:?}",
                    w.show(),
                    got.lines.iter().map(|l| clip(l)).collect::<Vec<_>>()
                ));
                break;
            }
        }
    }
    if let Some(want) = &expect.log_exact {
        let ok = want.len() == got.lines.len()
            && want
                .iter()
                .zip(&got.lines)
                .all(|(w, l)| w.matches(l).unwrap_or(false));
        if !ok {
            diffs.push(format!(
                "log: expected exactly [{}]\n     got {:?}",
                want.iter()
                    .map(LogLine::show)
                    .collect::<Vec<_>>()
                    .join(", "),
                got.lines.iter().map(|l| clip(l)).collect::<Vec<_>>()
            ));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("\n"))
    }
}

/// The error body's shape (`docs/errors.md`) and the expected class, message and trace.
fn check_error(e: &ExpectError, got: &Got, text: &str, diffs: &mut Vec<String>) {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(err) => {
            diffs.push(format!(
                "the error body is not JSON ({err}): {}",
                clip(text)
            ));
            return;
        }
    };
    let Some(o) = v.as_object() else {
        diffs.push(format!("the error body is not an object: {}", clip(text)));
        return;
    };
    // serde_json's map sorts its keys; the order is checked on the text.
    let keys: Vec<&str> = o.keys().map(String::as_str).collect();
    let positions: Vec<Option<usize>> = ERROR_KEYS
        .iter()
        .map(|k| text.find(&format!("\"{k}\":")))
        .collect();
    let in_order =
        positions.iter().all(Option::is_some) && positions.windows(2).all(|w| w[0] < w[1]);
    if keys != ERROR_KEYS || !in_order {
        diffs.push(format!(
            "the error body's keys are not {ERROR_KEYS:?} in that order: {}",
            clip(text)
        ));
    }
    if v["errorCode"] != -1 {
        diffs.push(format!("errorCode: expected -1, got {}", v["errorCode"]));
    }
    if v["requestId"] != got.request_id.as_str() {
        diffs.push(format!(
            "requestId: expected {:?}, got {}",
            got.request_id, v["requestId"]
        ));
    }
    if v["errorType"] != e.error_type.as_str() {
        diffs.push(format!(
            "errorType: expected {:?}, got {}",
            e.error_type, v["errorType"]
        ));
    }
    if v["statusCode"] != e.status_code {
        diffs.push(format!(
            "statusCode: expected {}, got {}",
            e.status_code, v["statusCode"]
        ));
    }
    let message = v["errorMessage"].as_str().unwrap_or_default();
    let trace = v["stackTrace"].as_str().unwrap_or_default();
    if let Some(m) = &e.error_message
        && m != message
    {
        diffs.push(format!(
            "errorMessage: expected {m:?}\n              got      {:?}",
            clip(message)
        ));
    }
    for (what, pattern, value) in [
        ("errorMessage", &e.error_message_pattern, message),
        ("stackTrace", &e.stack_trace_pattern, trace),
    ] {
        if let Some(p) = pattern {
            match regex(p) {
                Ok(re) if re.is_match(value) => {}
                Ok(_) => diffs.push(format!("{what} does not match /{p}/: {:?}", clip(value))),
                Err(err) => diffs.push(err),
            }
        }
    }
    // Strings are escaped as the platform (in Go) escapes them.
    if let Some(c) = text
        .chars()
        .find(|c| matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}'))
    {
        diffs.push(format!(
            "the error body has {c:?} unescaped (expected \\u{:04x})",
            u32::from(c)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_events_have_the_size_asked() {
        let e = generate(100);
        assert_eq!(e.len(), 100);
        let v: Value = serde_json::from_slice(&e).expect("json");
        assert_eq!(v["data"].as_str().map(str::len), Some(89));
    }

    #[test]
    fn the_embedded_suite_loads_and_every_case_checks_something() {
        let root =
            std::env::temp_dir().join(format!("scf-conformance-test-{}", std::process::id()));
        let _staging = Staging(root.clone());
        write_embedded(&root).expect("the embedded suite is written");
        let suite = root.join("cases");
        assert!(root.join("handlers/python/conformance.py").is_file());
        assert!(root.join("handlers/node/conformance.js").is_file());
        let cases = load_cases(&suite).expect("cases");
        assert!(cases.len() >= 40, "{} cases", cases.len());
        // The handler contract (tests/conformance/README.md) has a row for every case.
        let readme =
            std::fs::read_to_string(suite.join("../README.md")).expect("the suite's README");
        for name in cases.keys() {
            assert!(
                readme.contains(&format!("| `{name}` |")),
                "tests/conformance/README.md has no row for {name}"
            );
        }
    }

    #[test]
    fn log_lines_match_in_order() {
        let got = Got {
            request_id: "r".into(),
            body: Bytes::from_static(b"\"done\""),
            failed: false,
            lines: vec!["a".into(), "b".into(), "c".into()],
        };
        let mut e = Expect {
            log: Some(vec![
                LogLine::Exact("a".into()),
                LogLine::Pattern {
                    pattern: "^c$".into(),
                },
            ]),
            ..Expect::default()
        };
        assert!(check(&e, &got, b"{}").is_ok());
        e.log = Some(vec![LogLine::Exact("c".into()), LogLine::Exact("a".into())]);
        assert!(check(&e, &got, b"{}").is_err());
        e.log = None;
        e.body = Some("\"done\"".into());
        assert!(check(&e, &got, b"{}").is_ok());
    }

    #[test]
    fn error_bodies_are_checked_for_shape_and_escaping() {
        let e = ExpectError {
            error_type: "UnhandledError".into(),
            status_code: 430,
            error_message: Some("user code exception caught".into()),
            error_message_pattern: None,
            stack_trace_pattern: Some("boom".into()),
        };
        let good = r#"{"errorCode":-1,"errorMessage":"user code exception caught","errorType":"UnhandledError","requestId":"r","stackTrace":"boom \u003c","statusCode":430}"#;
        let got = |body: &str| Got {
            request_id: "r".into(),
            body: Bytes::from(body.to_owned()),
            failed: true,
            lines: Vec::new(),
        };
        let mut diffs = Vec::new();
        check_error(&e, &got(good), good, &mut diffs);
        assert!(diffs.is_empty(), "{diffs:?}");
        let raw = good.replace("\\u003c", "<");
        check_error(&e, &got(&raw), &raw, &mut diffs);
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        let reordered = r#"{"errorMessage":"user code exception caught","errorCode":-1,"errorType":"UnhandledError","requestId":"r","stackTrace":"boom","statusCode":430}"#;
        diffs.clear();
        check_error(&e, &got(reordered), reordered, &mut diffs);
        assert_eq!(diffs.len(), 1, "{diffs:?}");
    }
}
