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
//! The shim has already set `_SCF_SHIM_START_NS`, which the core inside the add-on reads to measure
//! InitRuntime. V8's heap is sized for the instance's memory ([`heap_options`]), as `NODE_OPTIONS` (flags on
//! the command line would cost every cold start 2–3 ms, `docs/node.md`); the bootstrap puts the function's
//! own `NODE_OPTIONS` back into `process.env` before any of its code runs, from [`USER_NODE_OPTIONS_ENV`]
//! (a bootstrap that does not, a function's own copy of an older SDK, gets no sizes).
//! When the platform asks for a debugger
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
/// The function's own `NODE_OPTIONS` (empty: it had none) while `NODE_OPTIONS` also carries the heap's sizes;
/// the bootstrap restores it and removes this one.
pub const USER_NODE_OPTIONS_ENV: &str = "_SCF_NODE_OPTIONS";

/// The V8 options, each in both spellings Node.js accepts, that size the heap: a function that gives one of
/// them in its `NODE_OPTIONS` sizes the heap itself, and the host adds none.
const HEAP_OPTIONS: [&str; 6] = [
    "max-old-space-size",
    "max_old_space_size",
    "max-semi-space-size",
    "max_semi_space_size",
    "max-heap-size",
    "max_heap_size",
];

/// The memory the instance is held to, MB: its memory cgroup's limit (what `node` itself sizes the heap
/// from), else the Lambda dialect's `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`; `None` where neither says (memory
/// sampled by the platform, SCF dialect), and V8 keeps its own sizes.
fn instance_memory_mb(config: &Config) -> Option<u32> {
    if let Some(bytes) = scf_supervisor::own_memory_limit() {
        return u32::try_from(bytes >> 20).ok();
    }
    std::env::var_os("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").map(|_| config.memory_mb)
}

/// The V8 heap's sizes for an instance of `memory_mb`, as Node.js options, or `None` when the function's own
/// `NODE_OPTIONS` (`user`) sizes the heap.
///
/// Node.js sizes the heap from the memory it may use, but V8's old generation is never given less than 256 MB:
/// in a 128 MB instance V8 lets garbage grow past the memory size, and the instance is killed for its memory
/// where a collection would have kept it alive (48–56 MB of live objects, `docs/node.md`). Its young generation
/// it sizes down to 1 MB semi-spaces there, too small for the objects of a large event, which are promoted and
/// collected only in full collections. So: three quarters of the memory for the heap (the rest for `node`'s
/// own memory and buffers outside the heap), of which the young generation is three semi-spaces of a 32nd of
/// the memory each (1 to 16 MB), the old generation the remainder. Seven eighths kept more alive on a quiet
/// machine, but let the kernel kill a function holding 48 MB in a 128 MB instance under a full test run's
/// load, where three quarters ends it with V8's own out-of-heap error instead (`docs/node.md`).
pub fn heap_options(memory_mb: u32, user: Option<&str>) -> Option<String> {
    if user.is_some_and(|u| HEAP_OPTIONS.iter().any(|o| u.contains(o))) {
        return None;
    }
    let semi = (memory_mb / 32).clamp(1, 16);
    let old = (memory_mb / 4 * 3).saturating_sub(3 * semi).max(16);
    Some(format!(
        "--max-old-space-size={old} --max-semi-space-size={semi}"
    ))
}

/// Whether `bootstrap` puts the function's own `NODE_OPTIONS` back: it names [`USER_NODE_OPTIONS_ENV`]. A
/// function's own copy of an SDK from before the heap was sized (`node_modules/scf-sdk`) does not, and its
/// code and its child processes would see the heap's sizes in `NODE_OPTIONS`; such an instance keeps V8's
/// own sizes. One read of a file of a few KB, at the cold start only.
fn restores_node_options(bootstrap: &Path) -> bool {
    let name = USER_NODE_OPTIONS_ENV.as_bytes();
    std::fs::read(bootstrap).is_ok_and(|text| text.windows(name.len()).any(|w| w == name))
}

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
    let user = std::env::var("NODE_OPTIONS")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let sized = restores_node_options(&bootstrap)
        .then(|| instance_memory_mb(config))
        .flatten()
        .and_then(|mb| heap_options(mb, user.as_deref()));
    if let Some(heap) = sized {
        let all = match &user {
            Some(u) => format!("{u} {heap}"),
            None => heap,
        };
        cmd.env("NODE_OPTIONS", all)
            .env(USER_NODE_OPTIONS_ENV, user.unwrap_or_default());
    }
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
    fn the_heap_is_sized_for_the_memory_unless_the_function_sizes_it() {
        let sizes = |mb| heap_options(mb, None).unwrap();
        assert_eq!(sizes(64), "--max-old-space-size=42 --max-semi-space-size=2");
        assert_eq!(
            sizes(128),
            "--max-old-space-size=84 --max-semi-space-size=4"
        );
        assert_eq!(
            sizes(1024),
            "--max-old-space-size=720 --max-semi-space-size=16"
        );
        assert_eq!(
            sizes(3072),
            "--max-old-space-size=2256 --max-semi-space-size=16"
        );
        assert_eq!(sizes(16), "--max-old-space-size=16 --max-semi-space-size=1");
        assert!(heap_options(128, Some("--enable-source-maps")).is_some());
        for own in [
            "--max-old-space-size=200",
            "--enable-source-maps --max_old_space_size=200",
            "--max-semi-space-size=8",
            "--max_semi_space_size=8",
            "--max-heap-size=100",
        ] {
            assert_eq!(heap_options(128, Some(own)), None, "{own}");
        }
    }

    #[test]
    fn nowhere_explains_every_way_to_get_it() {
        let e = locate_bootstrap(None, Path::new("/nonexistent"), nowhere()).unwrap_err();
        assert!(e.contains("npm install scf-sdk"), "{e}");
        assert!(e.contains("/opt/scf/lib/scf-runtime/node"), "{e}");
        assert!(e.contains(BOOTSTRAP_ENV), "{e}");
    }
}
