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

use scf_platform::config::{FunctionConfig, Overrides};
use scf_platform::{EventInstance, Platform, PlatformError};

mod case;
mod check;

pub use case::{
    Case, CaseConfig, Expect, ExpectError, Generate, Invocation, LanguageSettings, LogLine,
    generate, load_cases,
};
use check::check;

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

#[cfg(test)]
mod tests {
    use serde_json::Value;

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
}
