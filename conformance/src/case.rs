//! The case schema (`tests/conformance/README.md`): a case as `case.json` holds it, loading and validating a
//! directory of cases, and the events an invocation sends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use scf_platform::PlatformError;

use crate::Language;
use crate::check::clip;

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
    pub(crate) fn matches(&self, line: &str) -> Result<bool, String> {
        match self {
            LogLine::Exact(s) => Ok(s == line),
            LogLine::Pattern { pattern } => Ok(regex(pattern)?.is_match(line)),
        }
    }

    pub(crate) fn show(&self) -> String {
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

pub(crate) fn regex(pattern: &str) -> Result<regex_lite::Regex, String> {
    regex_lite::Regex::new(pattern).map_err(|e| format!("bad pattern /{pattern}/: {e}"))
}

impl Invocation {
    pub(crate) fn event_bytes(&self, case_dir: &Path) -> Result<Bytes, String> {
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

    pub(crate) fn expect_for(&self, lang: Language) -> &Expect {
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
