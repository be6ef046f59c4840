//! The Python host: handler resolution, the call, and the classification of every failure.
//!
//! [`PythonHost`] implements [`scf_shim::Host`]; `scf_sdk._core.run()` hands it to [`scf_shim::run`] with the
//! GIL released, and each method takes the GIL back for the time it needs Python. The same functions serve
//! `scf_sdk.invoke` (local unit tests), so marshalling and classification are the production ones.

use std::path::Path;

use pyo3::exceptions::{PyAttributeError, PyModuleNotFoundError, PySyntaxError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString};
use pyo3::{IntoPyObjectExt, intern};
use scf_protocol::{Context, ErrorKind, FunctionError};
use scf_shim::{Config, HandlerName, Host, Invocation};

use crate::{decode, encode};

/// The instance's asyncio event loop, created the first time a handler returns an awaitable.
static EVENT_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
/// The `sys` module (looked up once: an import statement per invocation costs more than the whole call).
static SYS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn sys_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    SYS.get_or_try_init(py, || py.import("sys").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// The Python host of one function instance.
#[derive(Debug, Default)]
pub struct PythonHost {
    handler: Option<Py<PyAny>>,
    /// The context dict of the previous invocation and the context it was built from: the per-instance
    /// fields never change, so the next dict is a copy with three fields replaced.
    context_template: Option<(Context, Py<PyDict>)>,
    logging_ready: bool,
    /// The last invocation's event, when it was large: kept until its result has been sent
    /// ([`Host::release`]), so that freeing its objects is not on the caller's wait.
    kept: Option<Py<PyAny>>,
}

/// An event of at least this many bytes of text is kept until its invocation's result has been sent (freeing
/// the objects of a 1 MB event takes about a millisecond; a small one's, less than sending the result early).
const KEPT_EVENT_BYTES: usize = 64 * 1024;

impl PythonHost {
    /// A host with nothing loaded.
    pub fn new() -> Self {
        Self::default()
    }

    /// The handler, once loaded.
    pub fn handler(&self) -> Option<&Py<PyAny>> {
        self.handler.as_ref()
    }

    /// Uses `handler` as the loaded handler (for benchmarks and tests that resolve it themselves).
    pub fn set_handler(&mut self, handler: Py<PyAny>) {
        self.handler = Some(handler);
    }

    fn context_dict<'py>(
        &mut self,
        py: Python<'py>,
        c: &Context,
    ) -> Result<Bound<'py, PyDict>, FunctionError> {
        let internal = |e: PyErr| FunctionError::internal(format!("building the context: {e}"));
        if let Some((prev, dict)) = &self.context_template {
            let same_instance = prev.environment == c.environment
                && prev.environ == c.environ
                && prev.function_version == c.function_version
                && prev.function_name == c.function_name
                && prev.namespace == c.namespace
                && prev.tencentcloud_region == c.tencentcloud_region
                && prev.tencentcloud_appid == c.tencentcloud_appid
                && prev.tencentcloud_uin == c.tencentcloud_uin;
            if same_instance {
                let d = dict.bind(py).copy().map_err(internal)?;
                d.set_item(intern!(py, "memory_limit_in_mb"), c.memory_limit_in_mb)
                    .map_err(internal)?;
                d.set_item(intern!(py, "time_limit_in_ms"), c.time_limit_in_ms)
                    .map_err(internal)?;
                d.set_item(intern!(py, "request_id"), &c.request_id)
                    .map_err(internal)?;
                return Ok(d);
            }
        }
        let d = context_dict(py, c).map_err(internal)?;
        self.context_template = Some((c.clone(), d.copy().map_err(internal)?.unbind()));
        Ok(d)
    }
}

/// The context as the `dict` handlers receive: the eleven fields, in the platform's order and types.
pub fn context_dict<'py>(py: Python<'py>, c: &Context) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "memory_limit_in_mb"), c.memory_limit_in_mb)?;
    d.set_item(intern!(py, "time_limit_in_ms"), c.time_limit_in_ms)?;
    d.set_item(intern!(py, "request_id"), &c.request_id)?;
    d.set_item(intern!(py, "environment"), &c.environment)?;
    d.set_item(intern!(py, "environ"), &c.environ)?;
    d.set_item(intern!(py, "function_version"), &c.function_version)?;
    d.set_item(intern!(py, "function_name"), &c.function_name)?;
    d.set_item(intern!(py, "namespace"), &c.namespace)?;
    d.set_item(intern!(py, "tencentcloud_region"), &c.tencentcloud_region)?;
    d.set_item(intern!(py, "tencentcloud_appid"), &c.tencentcloud_appid)?;
    d.set_item(intern!(py, "tencentcloud_uin"), &c.tencentcloud_uin)?;
    Ok(d)
}

impl Host for PythonHost {
    fn load(&mut self, config: &Config) -> Result<(), FunctionError> {
        Python::attach(|py| {
            let h = load_handler(py, &config.handler, Some(&config.code_root))?;
            self.handler = Some(h);
            self.logging_ready = setup_logging(py);
            Ok(())
        })
    }

    fn invoke(&mut self, inv: &Invocation) -> Result<Vec<u8>, FunctionError> {
        Python::attach(|py| {
            let Some(handler) = self.handler.as_ref().map(|h| h.clone_ref(py)) else {
                return Err(FunctionError::internal("invoke before a successful load"));
            };
            if !self.logging_ready {
                self.logging_ready = setup_logging(py);
            }
            self.kept = None;
            let event = decode::loads(py, &inv.event).map_err(invalid_event(&inv.event))?;
            if inv.event.len() >= KEPT_EVENT_BYTES {
                self.kept = Some(event.clone().unbind());
            }
            let context = self.context_dict(py, &inv.context)?;
            call_handler(py, handler.bind(py), event, context.into_any())
        })
    }

    fn flush_logs(&mut self) {
        Python::attach(flush_stdio);
    }

    fn keeps_last(&self) -> bool {
        self.kept.is_some()
    }

    fn release(&mut self) {
        if let Some(event) = self.kept.take() {
            Python::attach(|_| drop(event));
        }
    }
}

/// An event the decoder refused: the canonical `InvalidEvent` (worded from one parser, the same in every
/// language).
pub fn invalid_event(event: &[u8]) -> impl FnOnce(decode::DecodeError) -> FunctionError + '_ {
    move |_| FunctionError::invalid_event(event)
}

/// Flushes `sys.stdout` and `sys.stderr` (whatever they are now), ignoring failures: a function may have
/// closed or replaced them.
pub fn flush_stdio(py: Python<'_>) {
    let Ok(sys) = sys_module(py) else {
        return;
    };
    for name in [intern!(py, "stdout"), intern!(py, "stderr")] {
        if let Ok(stream) = sys.getattr(name) {
            if !stream.is_none() && stream.call_method0(intern!(py, "flush")).is_err() {
                // A stream that cannot flush has nowhere else to report to.
                let _ = PyErr::take(py);
            }
        }
    }
}

/// Gives the root logger a handler that writes raw messages to stdout, the first time the function has
/// imported `logging` (importing it ourselves would cost every cold start milliseconds). Returns whether the
/// job is done (logging imported and configured, by us or by the function).
fn setup_logging(py: Python<'_>) -> bool {
    let Ok(modules) = sys_module(py).and_then(|s| s.getattr(intern!(py, "modules"))) else {
        return true;
    };
    match modules.contains(intern!(py, "logging")) {
        Ok(true) => {}
        _ => return false,
    }
    let done = py
        .import(intern!(py, "scf_sdk._logging"))
        .and_then(|m| m.call_method0(intern!(py, "install_root_handler")));
    if done.is_err() {
        let _ = PyErr::take(py);
    }
    true
}

/// Resolves `handler` (`file.method`) to a callable. With `code_root`, the code root becomes the working
/// directory and the first entry of `sys.path` first (the production set-up).
pub fn load_handler(
    py: Python<'_>,
    handler: &str,
    code_root: Option<&Path>,
) -> Result<Py<PyAny>, FunctionError> {
    let name = HandlerName::parse(handler)?;
    let internal = |e: PyErr| FunctionError::internal(format!("preparing sys.path: {e}"));
    if let Some(root) = code_root {
        std::env::set_current_dir(root).map_err(|e| {
            FunctionError::new(
                ErrorKind::InitError,
                format!("cannot enter the code root {}: {e}", root.display()),
                "",
            )
        })?;
        let root_s = root.to_string_lossy().into_owned();
        let path = py
            .import("sys")
            .and_then(|s| s.getattr("path"))
            .map_err(internal)?;
        let path = path.cast_into::<PyList>().map_err(|e| internal(e.into()))?;
        let first_is_root = path
            .get_item(0)
            .ok()
            .and_then(|p| p.extract::<String>().ok())
            .is_some_and(|p| p == root_s);
        if !first_is_root {
            path.insert(0, &root_s).map_err(internal)?;
        }
    }
    // `dir/sub/index` → `dir.sub.index` (directories are packages, namespace packages included).
    let module_name = name.file.replace('/', ".");
    // The handler's own file must resolve inside the code root: found (not run) first.
    if let Some(root) = code_root
        && let Some(file) = module_origin(py, &module_name)
    {
        scf_protocol::check_handler_file(handler, root, Path::new(&file))?;
    }
    let module = match py.import(module_name.as_str()) {
        Ok(m) => m,
        Err(e) => {
            return Err(classify_load_error(
                py,
                &e,
                &name.file,
                &module_name,
                code_root,
            ));
        }
    };
    let attr = match module.getattr(name.method.as_str()) {
        Ok(a) => a,
        Err(e) if e.is_instance_of::<PyAttributeError>(py) => {
            let file = module
                .getattr("__file__")
                .and_then(|f| f.extract::<String>())
                .unwrap_or_default();
            let mut err = FunctionError::handler_not_found(&name.method);
            err.stack_trace = format!(
                "module '{module_name}' ({file}) has no attribute '{}'",
                name.method
            );
            return Err(err);
        }
        Err(e) => return Err(load_traceback_error(py, ErrorKind::InitError, &e)),
    };
    if !attr.is_callable() {
        let t = attr
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        return Err(FunctionError::handler_not_callable(
            &name.method,
            &name.file,
            &format!("an object of type '{t}'"),
        ));
    }
    Ok(attr.unbind())
}

/// Where Python would load `module_name` from (`importlib.util.find_spec(…).origin`), without running it
/// (its parent packages are imported). `None` when it cannot say: the import that follows reports why.
fn module_origin(py: Python<'_>, module_name: &str) -> Option<String> {
    let spec = py
        .import("importlib.util")
        .and_then(|u| u.call_method1("find_spec", (module_name,)))
        .ok()?;
    if spec.is_none() {
        return None;
    }
    spec.getattr("origin").ok()?.extract::<String>().ok()
}

fn classify_load_error(
    py: Python<'_>,
    e: &PyErr,
    file: &str,
    module_name: &str,
    code_root: Option<&Path>,
) -> FunctionError {
    if e.is_instance_of::<PyModuleNotFoundError>(py) {
        let missing: Option<String> = e
            .value(py)
            .getattr("name")
            .ok()
            .and_then(|n| n.extract().ok());
        if let Some(missing) = missing {
            let own = missing == module_name || module_name.starts_with(&format!("{missing}."));
            let mut err = if own {
                // The handler's own file is missing: same class (443) and text, naming the file.
                FunctionError::module_not_found(file)
            } else {
                FunctionError::module_not_found(&missing)
            };
            err.stack_trace = format_exception(py, e);
            if own {
                let root = code_root
                    .map(|r| r.display().to_string())
                    .unwrap_or_else(|| "sys.path".to_owned());
                err.stack_trace.push_str(&format!(
                    "\n(the handler's file {file}.py is not in {root})"
                ));
            }
            return err;
        }
    }
    if e.is_instance_of::<PySyntaxError>(py) {
        return load_traceback_error(py, ErrorKind::SyntaxError, e);
    }
    load_traceback_error(py, ErrorKind::InitError, e)
}

/// A load failure whose message is the full load traceback (as the platform shows it) and whose stackTrace
/// is the same text.
fn load_traceback_error(py: Python<'_>, kind: ErrorKind, e: &PyErr) -> FunctionError {
    let tb = format_exception(py, e);
    FunctionError::new(kind, tb.clone(), tb)
}

/// Calls the handler and encodes its result. Awaitable results run to completion on the instance's event loop.
/// (The response limit is the core's: [`scf_protocol::error::settle`].)
pub fn call_handler(
    py: Python<'_>,
    handler: &Bound<'_, PyAny>,
    event: Bound<'_, PyAny>,
    context: Bound<'_, PyAny>,
) -> Result<Vec<u8>, FunctionError> {
    let result = handler
        .call1((event, context))
        .map_err(|e| user_error(py, &e))?;
    let result = if needs_await(&result) {
        run_awaitable(py, result)?
    } else {
        result
    };
    encode::dumps(&result).map_err(|e| FunctionError::marshal(&e.detail()))
}

fn needs_await(v: &Bound<'_, PyAny>) -> bool {
    use pyo3::types::{PyBool, PyFloat, PyInt, PyTuple};
    if v.is_none()
        || v.is_exact_instance_of::<PyDict>()
        || v.is_exact_instance_of::<PyList>()
        || v.is_exact_instance_of::<PyString>()
        || v.is_exact_instance_of::<PyInt>()
        || v.is_exact_instance_of::<PyFloat>()
        || v.is_exact_instance_of::<PyBool>()
        || v.is_exact_instance_of::<PyTuple>()
    {
        return false;
    }
    v.hasattr(intern!(v.py(), "__await__")).unwrap_or(false)
}

fn run_awaitable<'py>(
    py: Python<'py>,
    aw: Bound<'py, PyAny>,
) -> Result<Bound<'py, PyAny>, FunctionError> {
    let lp = EVENT_LOOP
        .get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            let asyncio = py.import("asyncio")?;
            let lp = asyncio.call_method0("new_event_loop")?;
            asyncio.call_method1("set_event_loop", (&lp,))?;
            Ok(lp.unbind())
        })
        .map_err(|e| FunctionError::internal(format!("creating the asyncio event loop: {e}")))?;
    lp.bind(py)
        .call_method1(intern!(py, "run_until_complete"), (aw,))
        .map_err(|e| user_error(py, &e))
}

/// An exception that escaped the handler (SystemExit and KeyboardInterrupt included): 430 with the traceback.
pub fn user_error(py: Python<'_>, e: &PyErr) -> FunctionError {
    FunctionError::user(ErrorKind::UnhandledError, format_exception(py, e))
}

/// `traceback.format_exception(type, value, tb)` joined, without the trailing newline, with the leading
/// frames of the runtime itself (asyncio's loop, this package) removed.
pub fn format_exception(py: Python<'_>, e: &PyErr) -> String {
    let text = (|| -> PyResult<String> {
        let tb_mod = py.import("traceback")?;
        let mut tb = e.traceback(py).map(|t| t.into_any());
        while let Some(t) = &tb {
            let file: String = t
                .getattr("tb_frame")?
                .getattr("f_code")?
                .getattr("co_filename")?
                .extract()?;
            if !is_runtime_file(&file) {
                break;
            }
            let next = t.getattr("tb_next")?;
            tb = if next.is_none() { None } else { Some(next) };
        }
        let tb_obj = match tb {
            Some(t) => t,
            None => py.None().into_bound_py_any(py)?,
        };
        let lines =
            tb_mod.call_method1("format_exception", (e.get_type(py), e.value(py), tb_obj))?;
        let joined: String = PyString::new(py, "")
            .call_method1("join", (lines,))?
            .extract()?;
        Ok(joined.trim_end_matches('\n').to_owned())
    })();
    text.unwrap_or_else(|fmt_err| {
        let _ = PyErr::take(py);
        format!("{e} (the traceback could not be formatted: {fmt_err})")
    })
}

fn is_runtime_file(file: &str) -> bool {
    let f = file.replace('\\', "/");
    f.contains("/asyncio/") || f.contains("/scf_sdk/")
}
