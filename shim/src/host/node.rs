//! The Node.js host: replaces the shim (exec, same process id, same environment) with
//! `node <sdk-node/bootstrap.js>`. The bootstrap loads the shim core as a neon add-on (`sdk-node/index.node`)
//! and runs the invocation loop from Node's event loop (see `sdk-node/` and `docs/node.md`).
//!
//! - The Node binary: `SCF_NODE` if set, else `node` looked up on `PATH`.
//! - The bootstrap, first that exists: `SCF_NODE_BOOTSTRAP` (must exist if set);
//!   `<dir of scf-shim>/../../sdk-node/bootstrap.js` (a dev checkout: `target/<profile>/scf-shim`);
//!   `<dir of scf-shim>/../lib/scf-sdk/bootstrap.js` (an installed layout);
//!   `<code root>/node_modules/scf-sdk/bootstrap.js` (the function ships the SDK);
//!   the checkout this shim was built from (`sdk-node/bootstrap.js` beside `shim/`).
//! - The add-on must sit beside the bootstrap as `index.node` (or be named by `SCF_NODE_ADDON`); a
//!   missing one is reported here, before exec, with the command that builds it.
//!
//! Nothing in the environment is changed: the shim has already set `_SCF_SHIM_START_NS`, which the core
//! inside the add-on reads to measure InitRuntime.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::{Config, ShimError};

/// Names the Node.js binary (default: `node` on `PATH`).
pub const NODE_ENV: &str = "SCF_NODE";
/// Names the Node SDK's bootstrap file.
pub const BOOTSTRAP_ENV: &str = "SCF_NODE_BOOTSTRAP";
/// Names the add-on file, when it is not `index.node` beside the bootstrap.
pub const ADDON_ENV: &str = "SCF_NODE_ADDON";

/// Replaces this process with the Node.js host. Returns only on failure.
pub fn exec(config: &Config) -> ShimError {
    let exe = std::env::current_exe().ok();
    let bootstrap = match locate_bootstrap(
        std::env::var_os(BOOTSTRAP_ENV),
        exe.as_deref(),
        &config.code_root,
    ) {
        Ok(p) => p,
        Err(message) => return ShimError::Config(message),
    };
    if std::env::var_os(ADDON_ENV).is_none_or(|v| v.is_empty()) {
        let addon = bootstrap.with_file_name("index.node");
        if !addon.is_file() {
            return ShimError::Config(format!(
                "the Node SDK's add-on {} is not built: run `make -C sdk-node build` (cargo build -p scf-sdk-node \
                 --release, then copy libscf_sdk_node.so to that path), or name one with {ADDON_ENV}",
                addon.display()
            ));
        }
    }
    let node = std::env::var_os(NODE_ENV)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| OsString::from("node"));
    let source = std::process::Command::new(&node).arg(&bootstrap).exec();
    ShimError::Exec {
        what: format!(
            "{} {} (set {NODE_ENV} to the node binary, or put node on PATH)",
            Path::new(&node).display(),
            bootstrap.display()
        ),
        source,
    }
}

/// Where the Node SDK's bootstrap is (see the module documentation for the order).
pub fn locate_bootstrap(
    explicit: Option<OsString>,
    exe: Option<&Path>,
    code_root: &Path,
) -> Result<PathBuf, String> {
    if let Some(p) = explicit.filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{BOOTSTRAP_ENV}={} is not a file", p.display()))
        };
    }
    let mut tried = Vec::new();
    if let Some(dir) = exe.and_then(Path::parent) {
        tried.push(dir.join("../../sdk-node/bootstrap.js"));
        tried.push(dir.join("../lib/scf-sdk/bootstrap.js"));
    }
    tried.push(code_root.join("node_modules/scf-sdk/bootstrap.js"));
    tried.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk-node/bootstrap.js"));
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let list = tried
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(format!(
        "cannot find the Node SDK's bootstrap.js: set {BOOTSTRAP_ENV}, or install scf-sdk in the function's \
         node_modules (tried {list})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_bootstrap_must_exist() {
        let err = locate_bootstrap(Some("/nonexistent/b.js".into()), None, Path::new("/tmp"));
        assert!(err.is_err_and(|e| e.contains(BOOTSTRAP_ENV)));
        let this = PathBuf::from(file!());
        let abs = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(&this);
        if abs.is_file() {
            assert_eq!(
                locate_bootstrap(Some(abs.clone().into()), None, Path::new("/tmp")).ok(),
                Some(abs)
            );
        }
    }

    #[test]
    fn falls_back_to_the_checkout_or_explains() {
        match locate_bootstrap(
            None,
            Some(Path::new("/nonexistent/bin/scf-shim")),
            Path::new("/nonexistent"),
        ) {
            Ok(p) => assert!(p.ends_with("sdk-node/bootstrap.js"), "{}", p.display()),
            Err(e) => assert!(
                e.contains("bootstrap.js") && e.contains(BOOTSTRAP_ENV),
                "{e}"
            ),
        }
    }
}
