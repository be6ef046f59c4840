//! The Python host: replaces the shim with the function's Python interpreter running the Python SDK's
//! bootstrap (see `sdk-python`, package `scf_sdk`).
//!
//! The interpreter is the function's, the first of:
//! 1. `$SCF_PYTHON` ([`PYTHON_ENV`]): an explicit choice (the platform sets it from the function's
//!    configuration; a virtualenv's `bin/python` works: its site-packages become the function's);
//! 2. `<code root>/.venv/bin/python`: the function's own virtualenv;
//! 3. `python3` on `PATH`.
//!
//! Its first import is `scf_sdk._core`, the shim's core built as a pyo3 extension, which runs the same
//! invocation loop ([`crate::run`]) from inside the interpreter. `scf_sdk` comes from the first place on
//! `sys.path` that has it: the code root (a function that vendors its own SDK version wins), then the
//! interpreter's own packages (`pip install scf-sdk`), then the runtime layout's bundled copy
//! (`lib/scf-runtime/python` beside `bin/scf-shim`, or the checkout's `sdk-python/python`: see
//! [`super::layout`]), which the bootstrap appends from [`SDK_PATH_ENV`]. The environment is kept (the
//! shim's start time travels in `_SCF_SHIM_START_NS`), plus `PYTHONUNBUFFERED=1` (unless the platform set it)
//! so that nothing the function prints is lost when its process dies.
//!
//! When that interpreter cannot import `scf_sdk._core` (no SDK anywhere, a Python older than 3.9, another
//! platform), the bootstrap re-execs this shim with [`BOOTSTRAP_ERROR_ENV`] set; [`exec`] then serves the
//! instance itself, answering every invocation with a classified `InitError` (443) that names the
//! interpreter and the command that installs the SDK, instead of leaving the platform with a process that
//! died during init.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use scf_protocol::{ErrorKind, FunctionError};

use super::layout::{self, NotFound, Piece};
use crate::{Config, Host, Invocation, ShimError};

/// Names the interpreter to run explicitly (else the code directory's `.venv`, else `python3` on `PATH`).
pub const PYTHON_ENV: &str = "SCF_PYTHON";
/// The bundled SDK's folder, for the bootstrap to append to `sys.path` (removed before user code runs).
pub const SDK_PATH_ENV: &str = "_SCF_SDK_PATH";
/// Set by the bootstrap when the interpreter could not import the SDK: `<sys.executable>\n<error>`.
pub const BOOTSTRAP_ERROR_ENV: &str = "_SCF_BOOTSTRAP_ERROR";
/// The path of this shim, for the bootstrap to come back to.
pub const SHIM_EXE_ENV: &str = "_SCF_SHIM_EXE";

/// The program given to `python3 -c`: put the bundled SDK last on `sys.path`, import the core, run the
/// loop. Kept tiny and free of imports beyond the core itself (`os` is loaded at start-up already), because
/// every millisecond here is cold start.
pub const BOOTSTRAP: &str = r#"import os, sys
p = os.environ.pop("_SCF_SDK_PATH", None)
if p:
    sys.path.append(p)
try:
    from scf_sdk._core import run
except Exception as e:
    m = "%s\n%s: %s" % (sys.executable, type(e).__name__, e)
    x = os.environ.get("_SCF_SHIM_EXE")
    if x and "_SCF_BOOTSTRAP_ERROR" not in os.environ:
        os.environ["_SCF_BOOTSTRAP_ERROR"] = m
        os.execv(x, [x])
    sys.stderr.write("scf-shim: %s cannot import scf_sdk._core (%s: %s)\n" % (sys.executable, type(e).__name__, e))
    sys.exit(70)
run()
"#;

/// The program of a zygote (`scf-shim --zygote`, `docs/architecture.md`): the bootstrap's first lines, then
/// the SDK's zygote loop instead of `run()`: it imports what every instance needs (and the modules
/// [`PREIMPORT_ENV`] names), then forks one instance per request from the platform. Each forked instance
/// then runs exactly what [`BOOTSTRAP`]'s `run()` runs.
pub const ZYGOTE_BOOTSTRAP: &str = r#"import os, sys
p = os.environ.pop("_SCF_SDK_PATH", None)
if p:
    sys.path.append(p)
from scf_sdk._core import zygote
zygote()
"#;

/// Names standard modules a zygote imports before it forks (comma-separated), so that instances find them
/// imported; empty by default (`docs/python.md`, "The zygote").
pub const PREIMPORT_ENV: &str = "SCF_ZYGOTE_PREIMPORT";

/// Whether an instance's variable `name` decides how its interpreter starts, so that instances whose values
/// differ need different zygotes: every `PYTHON*` variable, the interpreter's choice, the locale (the
/// file-system encoding), `HOME` (the user's site-packages), `PATH` (which `python3`), `TZ` (`time`'s
/// zone, read at import), the dynamic linker's path, and the zygote's pre-imports.
pub fn shapes_interpreter(name: &str) -> bool {
    name.starts_with("PYTHON")
        || name.starts_with("LC_")
        || matches!(
            name,
            PYTHON_ENV
                | PREIMPORT_ENV
                | "LANG"
                | "LANGUAGE"
                | "HOME"
                | "PATH"
                | "TZ"
                | "LD_LIBRARY_PATH"
        )
}

/// Run before [`BOOTSTRAP`] when the platform asks for a debugger ([`scf_protocol::runtime::DEBUG_ENV`],
/// `scf-local --debug`): starts `debugpy` listening (and waits for a client when asked) before the function
/// is imported, or says how to install it and exits.
pub const DEBUGPY: &str = r#"import os, sys
d = os.environ.pop("_SCF_DEBUG", "")
a, _, w = d.partition(",")
h, _, p = a.rpartition(":")
try:
    import debugpy
except ImportError as e:
    sys.stderr.write("scf-shim: --debug needs debugpy in %s (%s); install it with: %s -m pip install debugpy\n" % (sys.executable, e, sys.executable))
    sys.exit(71)
debugpy.listen((h, int(p)))
sys.stderr.write("scf-shim: debugpy listening on %s:%s%s\n" % (h, p, ", waiting for a client" if w else ""))
if w:
    debugpy.wait_for_client()
"#;

/// The interpreter a function runs with, and why that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    /// The program (a path, or `python3` looked up on `PATH`).
    pub program: OsString,
    /// Where the choice came from, for messages.
    pub source: &'static str,
}

impl Interpreter {
    /// The function's interpreter: `explicit` ([`PYTHON_ENV`]) if set, else `<code_root>/.venv/bin/python`
    /// if it exists, else `python3`.
    pub fn choose(explicit: Option<OsString>, code_root: &Path) -> Interpreter {
        if let Some(p) = explicit.filter(|p| !p.is_empty()) {
            return Interpreter {
                program: p,
                source: "named by SCF_PYTHON",
            };
        }
        let venv = code_root.join(".venv/bin/python");
        if venv.is_file() {
            return Interpreter {
                program: venv.into_os_string(),
                source: "the code directory's .venv",
            };
        }
        Interpreter {
            program: OsString::from("python3"),
            source: "python3 on PATH",
        }
    }
}

/// Replaces this process with a zygote (`scf-shim --zygote`): the interpreter named by [`PYTHON_ENV`] (the
/// platform resolves it with [`Interpreter::choose`]) running [`ZYGOTE_BOOTSTRAP`]. Returns only on failure
/// (the platform then starts instances the normal way).
pub fn exec_zygote() -> ShimError {
    // The platform always names the interpreter it resolved; a zygote has no code directory of its own.
    let python = Interpreter::choose(std::env::var_os(PYTHON_ENV), Path::new("/"));
    let mut cmd = Command::new(&python.program);
    cmd.arg("-c").arg(ZYGOTE_BOOTSTRAP);
    prepare(&mut cmd, &layout::locate_here(Piece::Python));
    let source = cmd.exec();
    ShimError::Exec {
        what: Path::new(&python.program).display().to_string(),
        source,
    }
}

/// What every Python process the shim starts gets: unbuffered output, the bundled SDK's folder, the way back.
fn prepare(cmd: &mut Command, bundled: &Result<PathBuf, NotFound>) {
    if std::env::var_os("PYTHONUNBUFFERED").is_none() {
        cmd.env("PYTHONUNBUFFERED", "1");
    }
    match bundled {
        Ok(dir) => cmd.env(SDK_PATH_ENV, dir),
        Err(_) => cmd.env_remove(SDK_PATH_ENV),
    };
    if let Ok(me) = std::env::current_exe() {
        cmd.env(SHIM_EXE_ENV, me);
    }
}

/// Replaces this process with the Python host. Returns only on failure.
pub fn exec(config: &Config) -> ShimError {
    let bundled = layout::locate_here(Piece::Python);
    if let Ok(report) = std::env::var(BOOTSTRAP_ERROR_ENV) {
        // Back from a bootstrap that could not import the SDK: serve the instance with that load error.
        return serve_load_error(missing_sdk(&report, &bundled));
    }
    let python = Interpreter::choose(std::env::var_os(PYTHON_ENV), &config.code_root);
    let mut cmd = Command::new(&python.program);
    let program = match std::env::var_os(scf_protocol::runtime::DEBUG_ENV) {
        // Frozen standard modules hide their source from the debugger (3.11 and later; older versions
        // ignore the option).
        Some(_) => {
            cmd.arg("-Xfrozen_modules=off");
            std::borrow::Cow::Owned(format!("{DEBUGPY}{BOOTSTRAP}"))
        }
        None => std::borrow::Cow::Borrowed(BOOTSTRAP),
    };
    cmd.arg("-c").arg(&*program).current_dir(&config.code_root);
    prepare(&mut cmd, &bundled);
    let source = cmd.exec();
    // No interpreter to run: the function cannot load, and every invocation says why.
    serve_load_error(format!(
        "the Python runtime could not start: cannot run '{}' ({}: {source}); install python3, or name an \
         interpreter with {PYTHON_ENV}",
        Path::new(&python.program).display(),
        python.source,
    ))
}

/// The load error for an interpreter that could not import the SDK: which interpreter, what failed, and
/// the commands that fix it. `report` is the bootstrap's `<sys.executable>\n<error>`.
pub fn missing_sdk(report: &str, bundled: &Result<PathBuf, NotFound>) -> String {
    let (interpreter, error) = report.split_once('\n').unwrap_or(("python3", report));
    let interpreter = if interpreter.is_empty() {
        "python3"
    } else {
        interpreter
    };
    let install = format!(
        "install the SDK into that interpreter (`{interpreter} -m pip install scf-sdk`, or `pip install` the \
         release's scf_sdk wheel)"
    );
    let layout = match bundled {
        Ok(dir) => format!(
            "the runtime's bundled SDK ({}) was on sys.path after the code directory and the interpreter's \
             own packages, and needs CPython 3.9 or later on x86_64 Linux",
            dir.display()
        ),
        Err(not_found) => format!(
            "or install the scf-runtime release, whose bundled SDK scf-shim finds in lib/scf-runtime/python \
             beside its bin/ ({not_found})"
        ),
    };
    format!(
        "the Python runtime could not start: {interpreter} cannot import scf_sdk._core ({error}); {install}{}{layout}",
        if bundled.is_ok() { "; " } else { ", " },
    )
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
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn bootstrap_names_the_variables_it_uses() {
        assert!(BOOTSTRAP.contains(SHIM_EXE_ENV));
        assert!(BOOTSTRAP.contains(BOOTSTRAP_ERROR_ENV));
        assert!(BOOTSTRAP.contains(SDK_PATH_ENV));
        // The bundled SDK goes last: after the code root ('' for `-c`) and the interpreter's packages.
        assert!(BOOTSTRAP.contains("sys.path.append(p)"));
        assert!(DEBUGPY.contains(scf_protocol::runtime::DEBUG_ENV));
    }

    #[test]
    fn interpreter_explicit_then_venv_then_path() {
        let dir = std::env::temp_dir().join(format!("scf-python-choose-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(Interpreter::choose(None, &dir).program, "python3");
        assert_eq!(
            Interpreter::choose(Some(OsString::new()), &dir).program,
            "python3"
        );
        std::fs::create_dir_all(dir.join(".venv/bin")).unwrap();
        std::fs::write(dir.join(".venv/bin/python"), "").unwrap();
        let venv = Interpreter::choose(None, &dir);
        assert_eq!(PathBuf::from(&venv.program), dir.join(".venv/bin/python"));
        assert!(venv.source.contains(".venv"));
        let explicit = Interpreter::choose(Some("/opt/py/bin/python3".into()), &dir);
        assert_eq!(explicit.program, "/opt/py/bin/python3");
        assert!(explicit.source.contains(PYTHON_ENV));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_sdk_names_the_interpreter_and_the_install_command() {
        let not_found = Err(NotFound {
            piece: Piece::Python,
            tried: vec![PathBuf::from("/opt/scf/lib/scf-runtime/python")],
        });
        let m = missing_sdk(
            "/usr/bin/python3\nModuleNotFoundError: No module named 'scf_sdk'",
            &not_found,
        );
        assert!(m.contains("/usr/bin/python3 -m pip install scf-sdk"), "{m}");
        assert!(m.contains("No module named 'scf_sdk'"), "{m}");
        assert!(m.contains("/opt/scf/lib/scf-runtime/python"), "{m}");
        assert!(!m.contains("sdk-python"), "no folder names: {m}");
        let found = missing_sdk(
            "/usr/bin/python3.8\nImportError: bad",
            &Ok(PathBuf::from("/opt/scf/lib/scf-runtime/python")),
        );
        assert!(found.contains("3.9 or later") && found.contains("/usr/bin/python3.8 -m pip"));
    }
}
