//! The Node.js host: replaces the shim (exec, same process id, same environment) with
//! `node <bootstrap.js>`. The bootstrap loads the shim core as a neon add-on and runs the invocation loop
//! from Node's event loop (see `sdk-node/` and `docs/node.md`).
//!
//! - The Node binary: `SCF_NODE` if set, else `node` looked up on `PATH`.
//! - The bootstrap, the first that exists: `SCF_NODE_BOOTSTRAP` (must exist if set); the function's own
//!   copy of the SDK, `<code root>/node_modules/scf-sdk/bootstrap.js` (as a vendored `scf_sdk` wins for
//!   Python); the runtime layout's copy (`lib/scf-runtime/node` beside `bin/scf-shim`, or the checkout's
//!   `sdk-node`: see [`super::layout`]).
//! - The add-on is the package's business: its `lib/native.js` finds it (a prebuilt one for the platform, or
//!   a local build) and, when there is none, fails the instance's start with a message saying what to do.
//!
//! Nothing in the environment is changed: the shim has already set `_SCF_SHIM_START_NS`, which the core
//! inside the add-on reads to measure InitRuntime. When the platform asks for a debugger
//! ([`scf_protocol::runtime::DEBUG_ENV`]), Node gets `--inspect=HOST:PORT` (or `--inspect-wait=`, which waits
//! for the debugger before the bootstrap runs; Node.js 20.15 or later).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use super::layout::{self, NotFound, Piece};
use crate::{Config, ShimError};

/// Names the Node.js binary (default: `node` on `PATH`).
pub const NODE_ENV: &str = "SCF_NODE";
/// Names the Node SDK's bootstrap file.
pub const BOOTSTRAP_ENV: &str = "SCF_NODE_BOOTSTRAP";
/// Where a function's own copy of the Node SDK is, under its code root.
pub const VENDORED_BOOTSTRAP: &str = "node_modules/scf-sdk/bootstrap.js";

/// Replaces this process with the Node.js host. Returns only on failure.
pub fn exec(config: &Config) -> ShimError {
    let bootstrap = match locate_bootstrap(
        std::env::var_os(BOOTSTRAP_ENV),
        &config.code_root,
        layout::locate_here(Piece::Node),
    ) {
        Ok(p) => p,
        Err(message) => return ShimError::Config(message),
    };
    let node = std::env::var_os(NODE_ENV)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| OsString::from("node"));
    let mut cmd = std::process::Command::new(&node);
    // A debugger asked for by the platform (`scf-local --debug`): Node's inspector, as command-line flags so
    // that the function's own child processes do not inherit it.
    if let Some(d) = std::env::var(scf_protocol::runtime::DEBUG_ENV)
        .ok()
        .and_then(|v| scf_protocol::runtime::DebugListen::parse(&v))
    {
        let flag = if d.wait {
            "--inspect-wait"
        } else {
            "--inspect"
        };
        cmd.arg(format!("{flag}={}:{}", d.host, d.port))
            .env_remove(scf_protocol::runtime::DEBUG_ENV);
    }
    let source = cmd.arg(&bootstrap).exec();
    ShimError::Exec {
        what: format!(
            "{} {} (install Node.js 18 or later, or set {NODE_ENV} to the node binary)",
            Path::new(&node).display(),
            bootstrap.display()
        ),
        source,
    }
}

/// Where the Node SDK's bootstrap is (see the module documentation for the order); `runtime` is the
/// runtime layout's Node folder, or why there is none.
pub fn locate_bootstrap(
    explicit: Option<OsString>,
    code_root: &Path,
    runtime: Result<PathBuf, NotFound>,
) -> Result<PathBuf, String> {
    if let Some(p) = explicit.filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{BOOTSTRAP_ENV}={} is not a file", p.display()))
        };
    }
    let vendored = code_root.join(VENDORED_BOOTSTRAP);
    if vendored.is_file() {
        return Ok(vendored);
    }
    match runtime {
        Ok(dir) => Ok(dir.join(Piece::Node.marker())),
        Err(not_found) => Err(format!(
            "cannot find the Node SDK's bootstrap.js: install the scf-runtime release (its lib/scf-runtime/node \
             sits beside bin/scf-shim), or `npm install scf-sdk` in the function's directory ({} is not there \
             either), or set {BOOTSTRAP_ENV}; {not_found}",
            vendored.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn nowhere() -> Result<PathBuf, NotFound> {
        Err(NotFound {
            piece: Piece::Node,
            tried: vec![PathBuf::from("/opt/scf/lib/scf-runtime/node")],
        })
    }

    #[test]
    fn explicit_bootstrap_must_exist() {
        let err = locate_bootstrap(
            Some("/nonexistent/b.js".into()),
            Path::new("/tmp"),
            nowhere(),
        );
        assert!(err.is_err_and(|e| e.contains(BOOTSTRAP_ENV)));
        let this = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/host/node.rs");
        assert_eq!(
            locate_bootstrap(Some(this.clone().into()), Path::new("/tmp"), nowhere()).ok(),
            Some(this)
        );
    }

    #[test]
    fn the_functions_own_copy_wins_over_the_runtime_layout() {
        let dir = std::env::temp_dir().join(format!("scf-node-vendored-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let vendored = dir.join(VENDORED_BOOTSTRAP);
        std::fs::create_dir_all(vendored.parent().unwrap()).unwrap();
        let layout = Ok(PathBuf::from("/opt/scf/lib/scf-runtime/node"));
        assert_eq!(
            locate_bootstrap(None, &dir, layout.clone()).unwrap(),
            PathBuf::from("/opt/scf/lib/scf-runtime/node/bootstrap.js")
        );
        std::fs::write(&vendored, "").unwrap();
        assert_eq!(locate_bootstrap(None, &dir, layout).unwrap(), vendored);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nowhere_explains_every_way_to_get_it() {
        let e = locate_bootstrap(None, Path::new("/nonexistent"), nowhere()).unwrap_err();
        assert!(e.contains("npm install scf-sdk"), "{e}");
        assert!(e.contains("/opt/scf/lib/scf-runtime/node"), "{e}");
        assert!(e.contains(BOOTSTRAP_ENV), "{e}");
    }
}
