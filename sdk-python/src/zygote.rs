//! The Python zygote (`docs/architecture.md`, "The Python zygote"): an interpreter that has started, run
//! `site`, and imported the SDK's core, and that forks one instance per request from the platform. No user
//! code ever runs in it, so nothing a function opens at import is shared between instances.
//!
//! Per request: the zygote checks it has no thread but its own (`/proc/self/task` and, once `threading` is
//! imported, `threading.active_count()`), then forks twice: the first child with a plain `fork(2)` (it runs
//! no Python), the instance with `os.fork()` (so CPython's own at-fork work runs for it: its locks, `random`'s
//! re-seed hook, `os.register_at_fork` users). The first child joins the
//! instance's cgroup and its init's namespaces ([`scf_shim::zygote::join`]), forks the instance (inside its
//! PID namespace where it has one) and exits at once; the zygote reaps it, so the instance is re-parented to the platform (a child
//! subreaper), which then holds it exactly like an instance it spawned. The instance enters its world
//! ([`enter_instance`]), re-seeds, and runs the same loop as a spawned instance (`run()`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;

use pyo3::exceptions::PySystemExit;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use scf_shim::zygote::{self as control, Request};

/// Exit code of a zygote that refuses to go on (a thread appeared, its channel failed).
const EXIT_REFUSED: i32 = 4;

/// `zygote()`: serves spawn requests until the platform closes the channel. In each forked instance it
/// returns what `run()` returns, after the instance's life.
#[pyfunction]
pub fn zygote(py: Python<'_>) -> PyResult<()> {
    let started = top_level_modules(py)?;
    // What every instance imports before its function: the handler's file is found with
    // `importlib.util.find_spec` (`host::load_handler`) before the function's module is imported.
    py.import("importlib.util")?;
    preimport(py);
    // What a fresh instance would import with its code root first on `sys.path` (the SDK, and what was
    // imported here since the interpreter's start): a code root that has one of these names must not find
    // them imported already.
    let mut shadowable: HashSet<String> = top_level_modules(py)?
        .difference(&started)
        .cloned()
        .collect();
    shadowable.insert("scf_sdk".to_owned());
    let sys = py.import("sys")?;
    let executable: String = sys.getattr("executable")?.extract()?;
    let os = py.import("os")?;
    let gc = py.import("gc")?;
    // What its children compare with the instance's init's namespaces: read once, here.
    scf_shim::zygote::own_namespaces().map_err(|e| exit(py, &format!("its namespaces: {e}")))?;
    control::hello(&executable).map_err(|e| exit(py, &format!("hello: {e}")))?;
    loop {
        let mut request = match py.detach(control::recv_request) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let _ = control::reply_err(&e.to_string());
                continue;
            }
            Err(e) => return Err(exit(py, &format!("control channel: {e}"))),
        };
        let threads = threads(py)?;
        if threads != 1 {
            let why = format!("the zygote has {threads} threads; it forks only with one");
            let _ = control::reply_err(&why);
            return Err(exit(py, &why));
        }
        // Objects the zygote made are never freed by an instance: keep the collector from touching (and so
        // copying) their pages in every child.
        gc.call_method0("freeze")?;
        let (read, write) = pipe()?;
        // The intermediate runs no Python (only `join`, then `os.fork()` for the instance, where CPython's
        // at-fork work runs for the process that matters): a plain fork(2), without the interpreter's
        // after-fork work in a process that exits at once.
        // SAFETY: fork(2) in a process with one thread (checked above); the child runs only Rust code of this
        // function, then `os.fork()`, and exits.
        let first = unsafe { libc::fork() };
        if first < 0 {
            let e = std::io::Error::last_os_error();
            let _ = control::reply_err(&format!("fork: {e}"));
            continue;
        }
        if first == 0 {
            // The intermediate: join the instance's cgroup and namespaces, fork the instance, say its pid,
            // exit at once.
            drop(read);
            if let Err(e) = control::join(&mut request) {
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!("scf-shim: zygote: joining the instance's world: {e}\n").as_bytes(),
                );
                // SAFETY: _exit(2) ends this intermediate child without running anything of the zygote's.
                unsafe { libc::_exit(1) }
            }
            let second: i32 = match os.call_method0("fork").and_then(|p| p.extract()) {
                Ok(p) => p,
                // SAFETY: _exit(2) ends this intermediate child without running anything of the zygote's.
                Err(_) => unsafe { libc::_exit(1) },
            };
            if second == 0 {
                drop(write);
                return instance(py, request, &shadowable);
            }
            let bytes = second.to_ne_bytes();
            // SAFETY: write(2) of 4 bytes we own to the pipe's write end, then _exit(2): nothing else of
            // the zygote runs in this child.
            unsafe {
                libc::write(write.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                libc::_exit(0)
            }
        }
        drop(write);
        drop(request); // the instance's descriptors: only the instance keeps them
        let mut pid = [0u8; 4];
        // SAFETY: read(2) into our 4-byte buffer; waitpid(2) reaps the intermediate, our own child.
        let got = unsafe {
            let n = libc::read(read.as_raw_fd(), pid.as_mut_ptr().cast(), pid.len());
            let mut status = 0;
            while libc::waitpid(first, &mut status, 0) < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
            }
            n
        };
        let answered = if got == 4 {
            control::reply_ok(i32::from_ne_bytes(pid))
        } else {
            control::reply_err("the instance could not be forked")
        };
        if let Err(e) = answered {
            return Err(exit(py, &format!("control channel: {e}")));
        }
    }
}

/// The forked instance: enters its world, re-seeds, runs.
fn instance(py: Python<'_>, request: Request, shadowable: &HashSet<String>) -> PyResult<()> {
    let say = |what: String| {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("scf-shim: {what}\n").as_bytes(),
        );
    };
    if let Err(e) = enter_instance(py, request) {
        // Its stdout may not be its own yet: say it where it can, and end as a failed start does.
        say(format!("entering the instance: {e}"));
        // SAFETY: _exit(2): the instance never ran; nothing of it needs finalising.
        unsafe { libc::_exit(70) }
    }
    if let Some(name) = shadowed(shadowable) {
        // The code root has its own `name` (a vendored SDK, say), which a fresh interpreter would import
        // instead of the one imported here: start the normal way, in this same process (its pid, cgroup,
        // environment and output stay the instance's).
        let Ok(shim) = std::env::var(scf_shim::host::python::SHIM_EXE_ENV) else {
            say(format!(
                "the code directory has its own {name}, and scf-shim is not known"
            ));
            // SAFETY: _exit(2): the instance never ran.
            unsafe { libc::_exit(70) }
        };
        use std::os::unix::process::CommandExt as _;
        let e = std::process::Command::new(&shim).exec();
        say(format!("cannot start {shim}: {e}"));
        // SAFETY: _exit(2): the instance never ran.
        unsafe { libc::_exit(70) }
    }
    crate::run(py)
}

/// The first entry of the working directory (the code root) named like a module in `names`.
fn shadowed(names: &HashSet<String>) -> Option<String> {
    std::fs::read_dir(".").ok()?.flatten().find_map(|e| {
        let file = e.file_name().to_string_lossy().into_owned();
        let stem = file.split('.').next().unwrap_or_default().to_owned();
        names.contains(&stem).then_some(stem)
    })
}

/// The top-level names of the modules imported now (`json` for `json.decoder`).
fn top_level_modules(py: Python<'_>) -> PyResult<HashSet<String>> {
    let modules = py.import("sys")?.getattr("modules")?;
    let mut names = HashSet::new();
    for key in modules.call_method0("keys")?.try_iter()? {
        let key: String = key?.extract()?;
        names.insert(key.split('.').next().unwrap_or_default().to_owned());
    }
    Ok(names)
}

/// The forked child's "enter the instance's world", all of it, before anything of the function runs: the
/// operating-system part ([`scf_shim::zygote::enter`]: process group, memory cgroup, stdio, working
/// directory, descriptors), then the environment (the instance's whole environment replaces the zygote's,
/// in the C environment and in `os.environ` alike: `replace_environment`), then what must differ per
/// process: `random` is re-seeded from `os.urandom` (its at-fork hook already did; done again so no path
/// misses it). `uuid` and `secrets` read `os.urandom` each time, and `tempfile` notices the new pid itself.
pub fn enter_instance(py: Python<'_>, request: Request) -> PyResult<()> {
    use scf_shim::host::python::SHIM_EXE_ENV;
    let start_ns = request.start_ns;
    let mut env =
        control::enter(request).map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
    // What the shim adds for an interpreter it starts: its start time (here the platform's request), the
    // way back to it, unbuffered output unless the platform chose.
    let has = |env: &[(OsString, OsString)], name: &str| env.iter().any(|(k, _)| k == name);
    env.retain(|(k, _)| k != scf_shim::SHIM_START_ENV && k != SHIM_EXE_ENV);
    env.push((scf_shim::SHIM_START_ENV.into(), start_ns.to_string().into()));
    if let Some(shim) = std::env::var_os(SHIM_EXE_ENV) {
        env.push((SHIM_EXE_ENV.into(), shim));
    }
    if !has(&env, "PYTHONUNBUFFERED") {
        env.push(("PYTHONUNBUFFERED".into(), "1".into()));
    }
    replace_environment(py, env)?;
    let modules = py.import("sys")?.getattr("modules")?;
    if let Some(random) = modules.get_item("random").ok().filter(|m| !m.is_none()) {
        random.call_method0("seed")?;
    }
    Ok(())
}

/// Makes `env` the whole environment of this (single-threaded) process: the C one (`clearenv(3)`, then
/// `setenv(3)` for each variable, last one of a name wins), and Python's two views of it, `os.environ` (str)
/// and `os.environb` (bytes). Each keeps the variables as a dict of their bytes (`_data`, the file system
/// encoding with `surrogateescape`: exactly the bytes here; the two share one dict), refilled in place, so
/// that all agree without a `putenv` call per variable from Python. A view without such a dict (something
/// the zygote's `site` ran, a `sitecustomize` say, replaced `os.environ` with a mapping of its own) is
/// refilled through its mapping (`clear`, `update`) with decoded names and values for `os.environ`, bytes for
/// `os.environb`.
fn replace_environment(py: Python<'_>, env: Vec<(OsString, OsString)>) -> PyResult<()> {
    let bad = |_| pyo3::exceptions::PyValueError::new_err("a NUL byte in an environment variable");
    let mut c = Vec::with_capacity(env.len());
    for (k, v) in &env {
        c.push((
            std::ffi::CString::new(k.as_bytes()).map_err(bad)?,
            std::ffi::CString::new(v.as_bytes()).map_err(bad)?,
        ));
    }
    // SAFETY: clearenv(3) and setenv(3) in a process with one thread (a child just forked from the zygote,
    // which forks only with one), from NUL-terminated strings that live for the calls.
    unsafe {
        libc::clearenv();
        for (k, v) in &c {
            if libc::setenv(k.as_ptr(), v.as_ptr(), 1) != 0 {
                return Err(pyo3::exceptions::PyOSError::new_err(
                    std::io::Error::last_os_error().to_string(),
                ));
            }
        }
    }
    let os = py.import("os")?;
    let fsdecode = os.getattr("fsdecode")?;
    let mut refilled: Vec<Bound<'_, PyAny>> = Vec::with_capacity(2);
    for (view, decoded) in [("environ", true), ("environb", false)] {
        let Ok(mapping) = os.getattr(view) else {
            continue;
        };
        let (target, decode) = match mapping
            .getattr("_data")
            .ok()
            .filter(|d| d.is_exact_instance_of::<PyDict>())
        {
            Some(data) => (data, None),
            None => (mapping, decoded.then_some(&fsdecode)),
        };
        if refilled.iter().any(|done| done.is(&target)) {
            continue;
        }
        let item = |b: &[u8]| -> PyResult<Bound<'_, PyAny>> {
            let bytes = PyBytes::new(py, b).into_any();
            match decode {
                Some(decode) => decode.call1((bytes,)),
                None => Ok(bytes),
            }
        };
        let fresh = PyDict::new(py);
        for (k, v) in &env {
            fresh.set_item(item(k.as_bytes())?, item(v.as_bytes())?)?;
        }
        target.call_method0("clear")?;
        target.call_method1("update", (fresh,))?;
        refilled.push(target);
    }
    Ok(())
}

/// The zygote's threads: `/proc/self/task`, and `threading`'s count when it is imported.
fn threads(py: Python<'_>) -> PyResult<usize> {
    let tasks = control::threads();
    let modules = py.import("sys")?.getattr("modules")?;
    let python = match modules.get_item("threading") {
        Ok(t) if !t.is_none() => t.call_method0("active_count")?.extract()?,
        _ => 1,
    };
    Ok(tasks.max(python))
}

/// Imports the standard modules the platform asked the zygote to pre-import (comma-separated in
/// `SCF_ZYGOTE_PREIMPORT`); one that fails to import is skipped.
fn preimport(py: Python<'_>) {
    let Ok(list) = std::env::var(scf_shim::host::python::PREIMPORT_ENV) else {
        return;
    };
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if py.import(name).is_err() {
            let _ = PyErr::take(py);
        }
    }
}

fn pipe() -> PyResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(pyo3::exceptions::PyOSError::new_err(
            std::io::Error::last_os_error().to_string(),
        ));
    }
    // SAFETY: pipe2 succeeded: both descriptors are open and ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The zygote gives up: one line on its stderr, then `SystemExit`.
fn exit(py: Python<'_>, why: &str) -> PyErr {
    let _ = py;
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("scf-shim: zygote: {why}\n").as_bytes(),
    );
    PySystemExit::new_err(EXIT_REFUSED)
}
