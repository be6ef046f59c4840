//! The C ABI between `scf-shim` and a native handler library (version [`ABI_VERSION`]).
//!
//! A handler library exports, for each handler method, one symbol named exactly like the method:
//!
//! ```c
//! int32_t main_handler(const scf_request *request, scf_buffer *output);
//! ```
//!
//! The shim passes the event and the context as JSON bytes in `request`. The handler fills `output` with
//! JSON bytes it allocated, and a `free` function the shim calls to give them back (so the library's own
//! allocator frees them). It returns [`SCF_OK`] with the result, [`SCF_ERROR`] with an error document
//! `{"errorType":…,"errorMessage":…,"stackTrace":…}`, or [`SCF_ABI_MISMATCH`] when it was built for another
//! version of this ABI. `sdk-rust/include/scf_handler.h` is the same contract for C, Zig or Go.

use std::ffi::c_void;

/// The version of this ABI. A library built for another one answers [`SCF_ABI_MISMATCH`].
pub const ABI_VERSION: u32 = 1;
/// Return code: `output` holds the JSON result.
pub const SCF_OK: i32 = 0;
/// Return code: `output` holds an error document.
pub const SCF_ERROR: i32 = 1;
/// Return code: the library was built for another ABI version; `output` is untouched.
pub const SCF_ABI_MISMATCH: i32 = 2;

/// What the shim passes to a handler.
#[repr(C)]
#[derive(Debug)]
pub struct ScfRequest {
    /// [`ABI_VERSION`] of the caller.
    pub abi_version: u32,
    /// Event JSON bytes (not NUL-terminated).
    pub event: *const u8,
    /// Length of `event`.
    pub event_len: usize,
    /// Context JSON bytes (not NUL-terminated).
    pub context: *const u8,
    /// Length of `context`.
    pub context_len: usize,
}

/// Frees a buffer the library allocated: called with the buffer's `data`, `len` and `cap`.
pub type FreeFn = unsafe extern "C" fn(data: *mut u8, len: usize, cap: usize, opaque: *mut c_void);

/// Bytes a handler returns, with the function that frees them.
#[repr(C)]
#[derive(Debug)]
pub struct ScfBuffer {
    /// Start of the bytes (may be null when `len` is 0).
    pub data: *mut u8,
    /// Number of bytes.
    pub len: usize,
    /// Allocation size, for `free`.
    pub cap: usize,
    /// Frees `data`; null when there is nothing to free.
    pub free: Option<FreeFn>,
    /// Passed back to `free` untouched.
    pub opaque: *mut c_void,
}

impl ScfBuffer {
    /// An empty buffer for a handler to fill.
    pub fn empty() -> Self {
        ScfBuffer {
            data: std::ptr::null_mut(),
            len: 0,
            cap: 0,
            free: None,
            opaque: std::ptr::null_mut(),
        }
    }
}

/// The signature of an exported handler symbol.
pub type HandlerFn =
    unsafe extern "C" fn(request: *const ScfRequest, output: *mut ScfBuffer) -> i32;

/// The error document a handler writes with [`SCF_ERROR`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDoc {
    /// An [`crate::ErrorKind`] name: `HandledError`, `UnhandledError`, `MarshalError` or `InvalidEvent`
    /// (anything else is reported as `UnhandledError`).
    pub error_type: String,
    /// The message; for `HandledError`/`UnhandledError` it goes into the trace, as the caller-visible
    /// message of user errors is always the canonical one.
    pub error_message: String,
    /// The trace, if the language has one.
    #[serde(default)]
    pub stack_trace: String,
}

impl ErrorDoc {
    /// The classified error this document reports, for the invocation whose event was `event`.
    ///
    /// This is the one place where a handler's own report becomes a taxonomy entry: user errors keep the
    /// canonical message and carry the handler's message and trace in `stackTrace`; an event the handler could
    /// not read is an `InvalidEvent` (with the canonical parser message when the event is not JSON at all).
    pub fn into_function_error(self, event: &[u8]) -> crate::FunctionError {
        use crate::{ErrorKind, FunctionError};
        let trace = match (self.error_message.is_empty(), self.stack_trace.is_empty()) {
            (_, false) => self.stack_trace,
            (false, true) => self.error_message.clone(),
            (true, true) => String::new(),
        };
        match ErrorKind::from_name(&self.error_type) {
            Some(ErrorKind::HandledError) => FunctionError::user(ErrorKind::HandledError, trace),
            Some(ErrorKind::MarshalError) => {
                FunctionError::new(ErrorKind::MarshalError, self.error_message, "")
            }
            Some(ErrorKind::InvalidEvent) => {
                FunctionError::new(ErrorKind::InvalidEvent, self.error_message, "").for_event(event)
            }
            _ => FunctionError::user(ErrorKind::UnhandledError, trace),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn doc(t: &str, m: &str, s: &str) -> ErrorDoc {
        ErrorDoc {
            error_type: t.into(),
            error_message: m.into(),
            stack_trace: s.into(),
        }
    }

    #[test]
    fn user_errors_keep_the_canonical_message() {
        let e = doc("HandledError", "bad input", "").into_function_error(b"{}");
        assert_eq!(
            (e.kind, e.message.as_str(), e.stack_trace.as_str()),
            (
                ErrorKind::HandledError,
                crate::error::USER_CODE_EXCEPTION,
                "bad input"
            )
        );
        let e = doc("Timeout", "sneaky", "trace").into_function_error(b"{}");
        assert_eq!(
            e.kind,
            ErrorKind::UnhandledError,
            "a handler cannot claim a platform kind"
        );
    }

    #[test]
    fn invalid_event_uses_the_canonical_parser_message() {
        let e = doc("InvalidEvent", "expected value at line 1 column 1", "")
            .into_function_error(b"nope");
        assert_eq!(e, crate::FunctionError::invalid_event(b"nope"));
        let e = doc("InvalidEvent", "missing field `name`", "").into_function_error(b"{}");
        assert_eq!(e.message, "missing field `name`");
    }
}
