//! Write SCF functions in Rust.
//!
//! A handler is an ordinary function from a deserialisable event and a [`Context`] to a serialisable result
//! or an error. One macro line exports it under the C ABI `scf-shim` loads (`include/scf_handler.h`):
//!
//! ```
//! use scf_sdk::Context;
//!
//! #[derive(serde::Deserialize)]
//! struct Event { name: String }
//!
//! fn main_handler(event: Event, context: Context) -> Result<String, String> {
//!     Ok(format!("Hello {} from {}", event.name, context.function_name))
//! }
//!
//! scf_sdk::export!(main_handler);
//! ```
//!
//! Build the crate as a `cdylib` named after the handler's file (`[lib] name = "index"` gives
//! `libindex.so`) and run it with the handler `index.main_handler`.
//!
//! - An `Err` is a *handled* error (430, `errorType` `HandledError`); a panic is caught at the boundary and
//!   reported as an *unhandled* one (430, `UnhandledError`, with the panic's message and location).
//! - An event that does not fit the event type is an `InvalidEvent` (400); a result that cannot be
//!   serialised is a `MarshalError` (430).
//! - [`invoke`] runs a handler exactly as the shim would, for unit tests.
//! - [`events`] has the event of every trigger (API Gateway, Timer, COS, CMQ, CKafka, CLB, WebSocket) as a
//!   serde type, and [`events::generate`] builds each one's documented sample for tests.
//! - With the `runtime` feature, [`run`] turns a binary into a custom-runtime `bootstrap` that speaks the
//!   runtime API itself, through the same protocol code as `scf-shim`.
//!
//! ## Trigger events
//!
//! A handler behind a trigger takes that trigger's event type; behind API Gateway (or CLB) it answers with
//! an [`ApiGatewayResponse`](events::ApiGatewayResponse), which the gateway turns into the HTTP response:
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use scf_sdk::Context;
//! use scf_sdk::events::{self, ApiGatewayEvent, ApiGatewayResponse, HeaderValue, Kind};
//!
//! fn main_handler(event: ApiGatewayEvent, _context: Context) -> Result<ApiGatewayResponse, String> {
//!     let name = event.path_parameters.as_ref().and_then(|p| p.get("name"));
//!     let content_type = HeaderValue::One("text/plain; charset=utf-8".to_owned());
//!     Ok(ApiGatewayResponse {
//!         is_base64_encoded: Some(false),
//!         status_code: 200,
//!         headers: BTreeMap::from([("Content-Type".to_owned(), content_type)]),
//!         body: format!("Hello, {}!", name.map_or("world", String::as_str)),
//!     })
//! }
//!
//! scf_sdk::export!(main_handler);
//!
//! // In a unit test: the gateway's event for GET /hello/SCF, through production's marshalling.
//! let event = events::generate(Kind::ApiGateway, &[("method", "GET"), ("path", "/hello/SCF"),
//!                                                  ("resource", "/hello/{name}")])?;
//! let answer = scf_sdk::invoke(main_handler, &event.to_string(), None)?;
//! let answer: ApiGatewayResponse = serde_json::from_str(&answer)?;
//! assert_eq!((answer.status_code, answer.body.as_str()), (200, "Hello, SCF!"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

use std::cell::RefCell;
use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use scf_protocol::abi;
/// The trigger events (`docs/events.md`): one serde type per event, and a generator of samples.
pub use scf_protocol::events;
pub use scf_protocol::{Context, ErrorKind, FunctionError, HandlerName};

use scf_protocol::abi::{ErrorDoc, ScfBuffer, ScfRequest};

/// Exports `handler` (a `fn(E, Context) -> Result<R, Err>`) under its own name with the handler ABI.
///
/// `E: serde::de::DeserializeOwned`, `R: serde::Serialize`, `Err: Display`.
#[macro_export]
macro_rules! export {
    ($handler:ident) => {
        const _: () = {
            /// The exported handler symbol (see `scf_handler.h`).
            ///
            /// # Safety
            /// `request` and `output` must be valid pointers as the handler ABI describes.
            #[unsafe(export_name = stringify!($handler))]
            pub unsafe extern "C" fn __scf_export(
                request: *const $crate::abi::ScfRequest,
                output: *mut $crate::abi::ScfBuffer,
            ) -> i32 {
                // SAFETY: forwarded unchanged from the caller, who promises what the ABI requires.
                unsafe { $crate::__private::call_abi(request, output, $handler) }
            }
        };
    };
}

/// The result of one call of a handler: JSON bytes, or the error document the ABI carries.
pub type Outcome = Result<Vec<u8>, ErrorDoc>;

/// Runs `handler` on an event and a context given as JSON, exactly as the exported symbol does.
pub fn call_json<E, R, Err, F>(handler: F, event: &[u8], context: &[u8]) -> Outcome
where
    E: serde::de::DeserializeOwned,
    R: serde::Serialize,
    Err: Display,
    F: FnOnce(E, Context) -> Result<R, Err>,
{
    install_panic_hook();
    let caught = catch_unwind(AssertUnwindSafe(|| -> Outcome {
        let event: E = serde_json::from_slice(event)
            .map_err(|e| doc(ErrorKind::InvalidEvent, e.to_string(), ""))?;
        let context: Context = serde_json::from_slice(context).map_err(|e| {
            doc(
                ErrorKind::UnhandledError,
                format!("the context is unreadable: {e}"),
                "",
            )
        })?;
        match handler(event, context) {
            Ok(result) => serde_json::to_vec(&result).map_err(|e| {
                doc(
                    ErrorKind::MarshalError,
                    format!("Unable to marshal response: {e}"),
                    "",
                )
            }),
            Err(err) => Err(doc(
                ErrorKind::HandledError,
                err.to_string(),
                format!("{}: {err}", std::any::type_name::<Err>()),
            )),
        }
    }));
    caught.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "Box<dyn Any>".to_owned());
        let trace = LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| format!("panicked: {message}"));
        Err(doc(ErrorKind::UnhandledError, message, trace))
    })
}

/// Runs `handler` on `event` for a unit test, with the same marshalling and classification as production.
/// Returns the result's JSON text, or the classified error (whose [`FunctionError::to_body`] is the body a
/// caller would see). `context` defaults to a context with the platform's defaults.
pub fn invoke<E, R, Err, F>(
    handler: F,
    event: &str,
    context: Option<Context>,
) -> Result<String, FunctionError>
where
    E: serde::de::DeserializeOwned,
    R: serde::Serialize,
    Err: Display,
    F: FnOnce(E, Context) -> Result<R, Err>,
{
    let context = context.unwrap_or_else(|| Context {
        memory_limit_in_mb: scf_protocol::limits::DEFAULT_MEMORY_MB,
        time_limit_in_ms: scf_protocol::limits::DEFAULT_TIMEOUT_SECS * 1000,
        request_id: "00000000-0000-0000-0000-000000000000".to_owned(),
        function_version: "$LATEST".to_owned(),
        namespace: "default".to_owned(),
        environment: "{}".to_owned(),
        ..Context::default()
    });
    let outcome = call_json(handler, event.as_bytes(), context.to_json().as_bytes())
        .map_err(|doc| doc.into_function_error(event.as_bytes()));
    // The outcome rule of production (the 6 MB limit, the canonical InvalidEvent text).
    scf_protocol::error::settle(event.as_bytes(), outcome)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

fn doc(kind: ErrorKind, message: impl Into<String>, trace: impl Into<String>) -> ErrorDoc {
    ErrorDoc {
        error_type: kind.name().to_owned(),
        error_message: message.into(),
        stack_trace: trace.into(),
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records each panic's message and location for the error's trace, then lets the previous hook print it
/// (to stderr, i.e. the function's log).
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            previous(info);
        }));
    });
}

#[doc(hidden)]
pub mod __private {
    use super::*;

    /// The body of every exported symbol.
    ///
    /// # Safety
    /// `request` must point at a valid [`ScfRequest`] whose byte ranges are valid for reads, and `output` at a
    /// writable [`ScfBuffer`].
    pub unsafe fn call_abi<E, R, Err, F>(
        request: *const ScfRequest,
        output: *mut ScfBuffer,
        handler: F,
    ) -> i32
    where
        E: serde::de::DeserializeOwned,
        R: serde::Serialize,
        Err: Display,
        F: FnOnce(E, Context) -> Result<R, Err>,
    {
        if request.is_null() || output.is_null() {
            return abi::SCF_ABI_MISMATCH;
        }
        // SAFETY: non-null, and valid per the caller's contract.
        let request = unsafe { &*request };
        if request.abi_version != abi::ABI_VERSION {
            return abi::SCF_ABI_MISMATCH;
        }
        // SAFETY: the ABI promises `event`/`context` point at that many readable bytes for the call.
        let (event, context) = unsafe {
            (
                bytes(request.event, request.event_len),
                bytes(request.context, request.context_len),
            )
        };
        let (code, body) = match call_json(handler, event, context) {
            Ok(json) => (abi::SCF_OK, json),
            Err(doc) => (abi::SCF_ERROR, serde_json::to_vec(&doc).unwrap_or_default()),
        };
        // SAFETY: `output` is non-null and writable per the caller's contract.
        unsafe { fill(&mut *output, body) };
        code
    }

    /// # Safety
    /// `ptr` must be null (with `len` 0) or valid for reads of `len` bytes for the returned lifetime.
    unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
        if ptr.is_null() || len == 0 {
            &[]
        } else {
            // SAFETY: as the function's contract says.
            unsafe { std::slice::from_raw_parts(ptr, len) }
        }
    }

    fn fill(output: &mut ScfBuffer, body: Vec<u8>) {
        let mut body = std::mem::ManuallyDrop::new(body);
        output.data = body.as_mut_ptr();
        output.len = body.len();
        output.cap = body.capacity();
        output.free = Some(free_vec);
        output.opaque = std::ptr::null_mut();
    }

    /// Frees a buffer made by `fill`.
    unsafe extern "C" fn free_vec(
        data: *mut u8,
        len: usize,
        cap: usize,
        _opaque: *mut std::ffi::c_void,
    ) {
        if !data.is_null() {
            // SAFETY: `data`, `len` and `cap` come from a Vec<u8> leaked by `fill` in this same library.
            drop(unsafe { Vec::from_raw_parts(data, len, cap) });
        }
    }
}

/// Serves invocations of `handler` over the runtime API until the platform stops the process: the whole
/// `main` of a custom-runtime `bootstrap`.
#[cfg(feature = "runtime")]
pub fn run<E, R, Err, F>(handler: F) -> Result<(), scf_shim::ShimError>
where
    E: serde::de::DeserializeOwned,
    R: serde::Serialize,
    Err: Display,
    F: Fn(E, Context) -> Result<R, Err>,
{
    struct ClosureHost<F>(F);
    impl<F: FnMut(&[u8], &[u8]) -> Outcome> scf_shim::Host for ClosureHost<F> {
        fn load(&mut self, config: &scf_shim::Config) -> Result<(), FunctionError> {
            HandlerName::parse(&config.handler).map(|_| ())
        }
        fn invoke(&mut self, inv: &scf_shim::Invocation) -> Result<Vec<u8>, FunctionError> {
            (self.0)(&inv.event, inv.context.to_json().as_bytes())
                .map_err(|d| d.into_function_error(&inv.event))
        }
        fn flush_logs(&mut self) {
            scf_shim::host::native::flush_stdio();
        }
    }
    scf_shim::run(ClosureHost(|event: &[u8], context: &[u8]| {
        call_json(&handler, event, context)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Ev {
        n: i64,
    }

    fn h(e: Ev, c: Context) -> Result<serde_json::Value, String> {
        match e.n {
            0 => Err("zero".into()),
            1 => panic!("one"),
            _ => Ok(serde_json::json!({"n": e.n, "ns": c.namespace})),
        }
    }

    #[test]
    fn ok_err_and_panic_are_classified() {
        assert_eq!(
            invoke(h, r#"{"n":2}"#, None).as_deref(),
            Ok(r#"{"n":2,"ns":"default"}"#)
        );
        let e = invoke(h, r#"{"n":0}"#, None).expect_err("err");
        assert_eq!(
            (e.kind, e.stack_trace.as_str()),
            (ErrorKind::HandledError, "alloc::string::String: zero")
        );
        let e = invoke(h, r#"{"n":1}"#, None).expect_err("panic");
        assert_eq!(e.kind, ErrorKind::UnhandledError);
        assert!(
            e.stack_trace.contains("one") && e.stack_trace.contains("lib.rs"),
            "{}",
            e.stack_trace
        );
        let e = invoke(h, "{", None).expect_err("not json");
        assert_eq!(e.kind.status_code(), 400);
        let e = invoke(h, r#"{"m":1}"#, None).expect_err("wrong shape");
        assert_eq!(
            (e.kind, e.message.as_str()),
            (
                ErrorKind::InvalidEvent,
                "missing field `n` at line 1 column 7"
            )
        );
    }
}
