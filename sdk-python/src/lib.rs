//! `scf_sdk._core`: the native core of the Python SDK.
//!
//! - [`host::PythonHost`]: the Python host of `scf-shim` (the [`scf_shim::Host`] of a Python function). The
//!   shim execs the function's interpreter, whose bootstrap imports this module and calls `run()`, which runs
//!   the shim's invocation loop ([`scf_shim::run`]) in this process with the GIL released while it waits.
//! - [`zygote`]: `zygote()`, the loop of a Python zygote that forks pre-initialised instances.
//! - [`decode`] / [`encode`]: JSON text ↔ Python objects (the marshalling of events and results).
//! - `invoke`: the production call path for `scf_sdk.invoke`, the local unit-test helper.
#![warn(missing_docs)]

pub mod decode;
pub mod encode;
pub mod host;
pub mod zygote;

use std::path::PathBuf;
use std::time::Instant;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use scf_protocol::{Context, FunctionError};
use scf_shim::{Host, Invocation};

use host::PythonHost;

/// Text of a `str`/`bytes`/`bytearray`/`memoryview` argument as bytes.
fn text_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_cow()?.as_bytes().to_vec());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    obj.extract::<Vec<u8>>()
        .map_err(|_| PyTypeError::new_err("expected str, bytes or bytearray containing JSON text"))
}

/// `loads(text)`: JSON text (`str` or `bytes`) → Python objects, as `json.loads` builds them (strict JSON).
#[pyfunction]
fn loads<'py>(py: Python<'py>, text: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(b) = text.cast::<PyBytes>() {
        return decode::loads(py, b.as_bytes()).map_err(decode::DecodeError::into_pyerr);
    }
    if let Ok(s) = text.cast::<PyString>() {
        if let Some(b) = encode::str_utf8(s) {
            return decode::loads(py, b).map_err(decode::DecodeError::into_pyerr);
        }
    }
    let owned = text_bytes(text)?;
    decode::loads(py, &owned).map_err(decode::DecodeError::into_pyerr)
}

/// `dumps(obj) -> str`: `json.dumps(obj, ensure_ascii=False)` rules, refusing NaN/Infinity.
#[pyfunction]
fn dumps<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    let out = encode::dumps(obj).map_err(encode::EncodeError::into_pyerr)?;
    // The encoder writes UTF-8 only (lone surrogates are escaped).
    let s = std::str::from_utf8(&out).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    Ok(PyString::new(py, s))
}

/// `dumps_bytes(obj) -> bytes`: like `dumps`, UTF-8 encoded (what the runtime posts).
#[pyfunction]
fn dumps_bytes<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let out = encode::dumps(obj).map_err(encode::EncodeError::into_pyerr)?;
    Ok(PyBytes::new(py, &out))
}

/// `run()`: serves this function instance: the runtime API named by the environment, the handler named by
/// `_HANDLER`. Returns when the platform closes the connection. When the shim cannot go on (the platform's
/// socket is gone, a protocol violation), it writes one line to stderr and raises `SystemExit(3)`, the exit
/// code `scf-shim` itself uses for runtime failures.
#[pyfunction]
fn run(py: Python<'_>) -> PyResult<()> {
    let host = PythonHost::new();
    match py.detach(|| scf_shim::run(host)) {
        Ok(()) => Ok(()),
        Err(e) => {
            host::flush_stdio(py);
            let line = format!("scf-shim: {e}\n");
            let written = py
                .import("sys")
                .and_then(|s| s.getattr("stderr"))
                .and_then(|err| err.call_method1("write", (line,)).map(|_| ()));
            if written.is_err() {
                let _ = PyErr::take(py);
            }
            host::flush_stdio(py);
            Err(pyo3::exceptions::PySystemExit::new_err(3))
        }
    }
}

/// `resolve(handler, code_root=None)`: the production handler resolution. Returns `(True, callable)` or
/// `(False, error_body)`.
#[pyfunction]
#[pyo3(signature = (handler, code_root=None, request_id="local"))]
fn resolve<'py>(
    py: Python<'py>,
    handler: &str,
    code_root: Option<PathBuf>,
    request_id: &str,
) -> PyResult<(bool, Bound<'py, PyAny>)> {
    match host::load_handler(py, handler, code_root.as_deref()) {
        Ok(h) => Ok((true, h.into_bound(py))),
        Err(e) => Ok((false, PyString::new(py, &e.to_body(request_id)).into_any())),
    }
}

/// `invoke(handler, event_json, context, request_id)`: one invocation through the production path (event
/// decoding, the call, awaiting, encoding, classification). Returns `(True, result_json)` or
/// `(False, error_body)`.
#[pyfunction]
fn invoke<'py>(
    py: Python<'py>,
    handler: &Bound<'py, PyAny>,
    event_json: &Bound<'py, PyAny>,
    context: &Bound<'py, PyDict>,
    request_id: &str,
) -> PyResult<(bool, String)> {
    let event = text_bytes(event_json)?;
    let outcome = decode::loads(py, &event)
        .map_err(host::invalid_event(&event))
        .and_then(|ev| host::call_handler(py, handler, ev, context.clone().into_any()));
    host::flush_stdio(py);
    // The outcome rule of production (the core's): the 6 MB limit, the canonical InvalidEvent text.
    Ok(match scf_protocol::error::settle(&event, outcome) {
        Ok(body) => (true, String::from_utf8_lossy(&body).into_owned()),
        Err(e) => (false, e.to_body(request_id)),
    })
}

/// `encode_environment(pairs) -> (environment, environ)`: the context's two views of the function's
/// environment (a JSON object as a string, and `K=V;K=V`), built as the core builds them.
#[pyfunction]
fn encode_environment(pairs: Vec<(String, String)>) -> (String, String) {
    Context::encode_environment(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// `_bench_warm(handler, event_json, n) -> seconds per invocation`: the warm path of the production host
/// (`PythonHost::invoke` + `flush_logs`: decode the event, build the context, call, encode), `n` times.
#[pyfunction]
fn _bench_warm(
    py: Python<'_>,
    handler: &Bound<'_, PyAny>,
    event_json: &Bound<'_, PyAny>,
    n: u32,
) -> PyResult<f64> {
    let event = text_bytes(event_json)?;
    let mut host = PythonHost::new();
    host.set_handler(handler.clone().unbind());
    let inv = Invocation {
        request_id: "bench".to_owned(),
        event: event.into(),
        context: Context {
            memory_limit_in_mb: 128,
            time_limit_in_ms: 3000,
            request_id: "bench".to_owned(),
            function_name: "bench".to_owned(),
            namespace: "default".to_owned(),
            function_version: "$LATEST".to_owned(),
            ..Context::default()
        },
        deadline: Instant::now(),
    };
    let n = n.max(1);
    let elapsed = py.detach(|| {
        let t = Instant::now();
        for _ in 0..n {
            let r = host.invoke(&inv);
            host.flush_logs();
            r?;
        }
        Ok(t.elapsed())
    });
    let elapsed =
        elapsed.map_err(|e: FunctionError| PyRuntimeError::new_err(e.to_body("bench")))?;
    Ok(elapsed.as_secs_f64() / f64::from(n))
}

/// The native module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(loads, m)?)?;
    m.add_function(wrap_pyfunction!(dumps, m)?)?;
    m.add_function(wrap_pyfunction!(dumps_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(zygote::zygote, m)?)?;
    m.add_function(wrap_pyfunction!(resolve, m)?)?;
    m.add_function(wrap_pyfunction!(invoke, m)?)?;
    m.add_function(wrap_pyfunction!(encode_environment, m)?)?;
    m.add_function(wrap_pyfunction!(_bench_warm, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
