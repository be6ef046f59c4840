//! The Python host: replaces the shim with the function's Python interpreter running the Python SDK's
//! bootstrap (see `sdk-python`, package `scf_sdk`).
//!
//! The interpreter is `$SCF_PYTHON` if set (a virtualenv's `bin/python` works: its site-packages become the
//! function's), else `python3` on `PATH`. Its first import is `scf_sdk._core`, the shim's core built as a
//! pyo3 extension, which runs the same invocation loop ([`crate::run`]) from inside the interpreter. The
//! environment is kept (the shim's start time travels in `_SCF_SHIM_START_NS`), plus `PYTHONUNBUFFERED=1`
//! (unless the platform set it) so that nothing the function prints is lost when its process dies.
//!
//! When that interpreter cannot import `scf_sdk._core` (not installed, built for another platform), the
//! bootstrap re-execs this shim with [`BOOTSTRAP_ERROR_ENV`] set; [`exec`] then serves the instance itself,
//! answering every invocation with a classified `InitError` (443) that says what is missing, instead of
//! leaving the platform with a process that died during init.

use std::os::unix::process::CommandExt;
use std::process::Command;

use scf_protocol::{ErrorKind, FunctionError};

use crate::{Config, Host, Invocation, ShimError};

/// Names the interpreter to run (default `python3`, looked up on `PATH`).
pub const PYTHON_ENV: &str = "SCF_PYTHON";
/// Set by the bootstrap when the interpreter could not import the SDK: the reason, for the 443 error.
pub const BOOTSTRAP_ERROR_ENV: &str = "_SCF_BOOTSTRAP_ERROR";
/// The path of this shim, for the bootstrap to come back to.
pub const SHIM_EXE_ENV: &str = "_SCF_SHIM_EXE";

/// The program given to `python3 -c`: import the core, run the loop. Kept tiny and free of imports beyond
/// the core itself, because every millisecond here is cold start.
pub const BOOTSTRAP: &str = r#"try:
    from scf_sdk._core import run
except Exception as e:
    import os, sys
    m = "the Python runtime could not start: %s cannot import scf_sdk._core (%s: %s); install the Python SDK (pip install sdk-python) into that interpreter, or point SCF_PYTHON at one that has it" % (sys.executable, type(e).__name__, e)
    x = os.environ.get("_SCF_SHIM_EXE")
    if x and "_SCF_BOOTSTRAP_ERROR" not in os.environ:
        os.environ["_SCF_BOOTSTRAP_ERROR"] = m
        os.execv(x, [x])
    sys.stderr.write(m + "\n")
    sys.exit(70)
run()
"#;

/// Replaces this process with the Python host. Returns only on failure.
pub fn exec(config: &Config) -> ShimError {
    if let Ok(reason) = std::env::var(BOOTSTRAP_ERROR_ENV) {
        // Back from a bootstrap that could not import the SDK: serve the instance with that load error.
        return serve_load_error(reason);
    }
    let python = std::env::var(PYTHON_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_owned());
    let mut cmd = Command::new(&python);
    cmd.arg("-c").arg(BOOTSTRAP).current_dir(&config.code_root);
    if std::env::var_os("PYTHONUNBUFFERED").is_none() {
        cmd.env("PYTHONUNBUFFERED", "1");
    }
    if let Ok(me) = std::env::current_exe() {
        cmd.env(SHIM_EXE_ENV, me);
    }
    let source = cmd.exec();
    // No interpreter to run: the function cannot load, and every invocation says why.
    serve_load_error(format!(
        "the Python runtime could not start: cannot run '{python}' ({source}); install python3 or set {PYTHON_ENV}"
    ))
}

/// Serves the instance with a load error (443 `InitError`) until the platform goes away, then exits.
fn serve_load_error(reason: String) -> ShimError {
    match crate::run(FailedLoad(FunctionError::new(
        ErrorKind::InitError,
        reason.clone(),
        reason,
    ))) {
        Ok(()) => std::process::exit(0),
        Err(e) => e,
    }
}

/// A host whose load failed before any Python ran: every invocation gets the load error.
#[derive(Debug)]
struct FailedLoad(FunctionError);

impl Host for FailedLoad {
    fn load(&mut self, _config: &Config) -> Result<(), FunctionError> {
        Err(self.0.clone())
    }

    fn invoke(&mut self, _invocation: &Invocation) -> Result<Vec<u8>, FunctionError> {
        Err(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_names_the_variables_it_uses() {
        assert!(BOOTSTRAP.contains(SHIM_EXE_ENV));
        assert!(BOOTSTRAP.contains(BOOTSTRAP_ERROR_ENV));
    }
}
