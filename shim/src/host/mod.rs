//! Language hosts.
//!
//! Every host has the same lifecycle, described by [`Host`]: `load` once, then `invoke` once per event,
//! never two at a time. The native host runs inside the shim; the Python and Node.js hosts live in their
//! SDKs' native modules, and the shim reaches them by replacing itself with the language's interpreter.

pub mod native;
pub mod node;
pub mod python;

use scf_protocol::FunctionError;

use crate::{Config, Invocation};

/// One language host.
///
/// Lifecycle: [`Host::load`] is called once, and is the InitFunction phase (resolve `file.method`, run the
/// module's top-level code). Then [`Host::invoke`] is called once per invocation, one at a time, with the
/// event as JSON text; it returns the result as JSON text, or a classified [`FunctionError`]. Before each
/// result is posted, [`Host::flush_logs`] makes everything the function printed reach the process's
/// stdout/stderr, so the platform's log has it before the `Response` line.
pub trait Host {
    /// Loads the function named by `config.handler` from `config.code_root`.
    fn load(&mut self, config: &Config) -> Result<(), FunctionError>;
    /// Runs the handler on one invocation.
    fn invoke(&mut self, invocation: &Invocation) -> Result<Vec<u8>, FunctionError>;
    /// Flushes whatever the function printed.
    fn flush_logs(&mut self) {}
}

/// Which host serves a runtime name (`SCF_RUNTIME`) and handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Handler libraries loaded with `dlopen`.
    Native,
    /// CPython, through the Python SDK's native module.
    Python,
    /// Node.js, through the Node SDK's add-on.
    Node,
}

impl Kind {
    /// The host for `runtime` (case-insensitive: `python3`, `Python3.9`, `nodejs`, `Nodejs16.13`, `native`,
    /// `rust`, `go`, …). With no runtime named, the handler's file decides: `FILE.py` → Python,
    /// `FILE.js`/`.mjs`/`.cjs` → Node.js, otherwise native.
    pub fn select(config: &Config) -> Result<Kind, String> {
        let r = config.runtime.to_ascii_lowercase();
        if r.starts_with("python") {
            return Ok(Kind::Python);
        }
        if r.starts_with("node") {
            return Ok(Kind::Node);
        }
        if matches!(
            r.as_str(),
            "native" | "rust" | "c" | "go" | "zig" | "customruntime" | "custom"
        ) {
            return Ok(Kind::Native);
        }
        if !r.is_empty() {
            return Err(format!(
                "unknown runtime '{}'; expected python3 (Python3.x), nodejs (Nodejs1x.y) or native",
                config.runtime
            ));
        }
        let file = config
            .handler
            .rsplit_once('.')
            .map(|(f, _)| f)
            .unwrap_or("");
        let exists = |ext: &str| config.code_root.join(format!("{file}.{ext}")).is_file();
        Ok(if exists("py") {
            Kind::Python
        } else if exists("js") || exists("mjs") || exists("cjs") {
            Kind::Node
        } else {
            Kind::Native
        })
    }
}
