//! Language hosts.
//!
//! Every host has the same lifecycle, described by [`Host`]: `load` once, then `invoke` once per event,
//! never two at a time. The native host runs inside the shim; the Python and Node.js hosts live in their
//! SDKs' native modules, and the shim reaches them by replacing itself with the language's interpreter.

pub mod layout;
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
///
/// A host may keep what an invocation built (a large event's objects) until its result has been sent:
/// [`Host::keeps_last`] says so, and [`Host::release`] then lets go of it while the instance waits for its
/// next invocation, so that freeing it is not on the caller's wait.
pub trait Host {
    /// Loads the function named by `config.handler` from `config.code_root`.
    fn load(&mut self, config: &Config) -> Result<(), FunctionError>;
    /// Runs the handler on one invocation.
    fn invoke(&mut self, invocation: &Invocation) -> Result<Vec<u8>, FunctionError>;
    /// Flushes whatever the function printed.
    fn flush_logs(&mut self) {}
    /// Whether the last [`Host::invoke`] kept something to let go of once its result is sent.
    fn keeps_last(&self) -> bool {
        false
    }
    /// Lets go of what the last invocation kept (called after its result is sent, before the next invocation
    /// is read; [`Host::invoke`] lets go of it too, if this was not called).
    fn release(&mut self) {}
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
    /// The host for the runtime named by `config.runtime` (the names of [`scf_protocol::runtime`]). With no
    /// runtime named, or a custom runtime (the shim is then the function's `bootstrap`), the handler's file
    /// decides (see [`Kind::detect`]).
    pub fn select(config: &Config) -> Result<Kind, String> {
        use scf_protocol::Runtime;
        match Runtime::parse(&config.runtime).map_err(|e| e.message)? {
            Runtime::Python => Ok(Kind::Python),
            Runtime::Node => Ok(Kind::Node),
            Runtime::Native => Ok(Kind::Native),
            Runtime::Auto | Runtime::Custom => Ok(Self::detect(&config.code_root, &config.handler)),
        }
    }

    /// The host a handler's file in `code_root` calls for ([`scf_protocol::runtime::detect_host`]: `FILE.py`
    /// → Python, `M.js`/`.mjs`/`.cjs` → Node.js, otherwise native).
    pub fn detect(code_root: &std::path::Path, handler: &str) -> Kind {
        match scf_protocol::runtime::detect_host(handler, |f| code_root.join(f).is_file()) {
            scf_protocol::Runtime::Python => Kind::Python,
            scf_protocol::Runtime::Node => Kind::Node,
            _ => Kind::Native,
        }
    }
}
