//! The error taxonomy: one classification of every failure, the same in every language.
//!
//! Each [`ErrorKind`] has an `errorType` name (the variant's name), the platform's `statusCode`, and, where
//! the platform has one, a canonical `errorMessage`. [`FunctionError::to_body`] renders the body the caller
//! sees, with the keys in alphabetical order:
//!
//! ```text
//! {"errorCode":-1,"errorMessage":…,"errorType":…,"requestId":…,"stackTrace":…,"statusCode":…}
//! ```
//!
//! `docs/errors.md` is the written contract; a test checks that it lists every kind.

use std::fmt;

use crate::json::write_go_string;

/// The message of every error raised or returned by user code (430).
pub const USER_CODE_EXCEPTION: &str = "user code exception caught";
/// The message of a process exit during an invocation (439).
pub const PROCESS_EXIT_MESSAGE: &str = "User process exit when running";
/// The message of a response above the size limit (407).
pub const RESPONSE_TOO_LARGE_MESSAGE: &str = "The size of response exceeds the upper limit (6MB)";

macro_rules! kinds {
    ($( $(#[$doc:meta])* $name:ident = $status:literal ),+ $(,)?) => {
        /// Every class of failure the runtime layer reports. The variant name is the `errorType`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $( $(#[$doc])* $name, )+
        }

        impl ErrorKind {
            /// All kinds, in declaration order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$name),+];

            /// The platform's `statusCode` for this kind.
            pub fn status_code(self) -> u16 {
                match self { $(ErrorKind::$name => $status,)+ }
            }

            /// The `errorType` name of this kind.
            pub fn name(self) -> &'static str {
                match self { $(ErrorKind::$name => stringify!($name),)+ }
            }

            /// The kind named `name` (the inverse of [`ErrorKind::name`]).
            pub fn from_name(name: &str) -> Option<ErrorKind> {
                match name { $(stringify!($name) => Some(ErrorKind::$name),)+ _ => None }
            }
        }
    };
}

kinds! {
    /// The handler returned an error on purpose (a Rust `Err`, a Node `callback(err)`, `context.fail`).
    HandledError = 430,
    /// An uncaught exception, a thrown value or a panic in user code.
    UnhandledError = 430,
    /// The result has no JSON form: `Unable to marshal response: …`.
    MarshalError = 430,
    /// The concurrency limit of the function was reached (sync invocations).
    ConcurrencyLimit = 432,
    /// The invocation ran past the function's execution timeout; the instance was killed.
    Timeout = 433,
    /// The instance used more memory than the function's memory size; the instance was killed.
    MemoryLimitExceeded = 434,
    /// No function of that name exists.
    FunctionNotFound = 435,
    /// A parameter of the invoke request is invalid.
    InvalidParameter = 436,
    /// The handler's file loaded but has no attribute of the handler's name.
    HandlerNotFound = 437,
    /// The instance process exited while an invocation was running.
    ProcessExit = 439,
    /// A module the function's code imports cannot be found.
    ModuleNotFound = 443,
    /// The handler string is not of the form `file.method`.
    MalformedHandler = 443,
    /// The handler's attribute exists but cannot be called.
    HandlerNotCallable = 443,
    /// The function's code does not parse.
    SyntaxError = 443,
    /// Any other failure while loading the function's code (an exception during import, a library that
    /// does not load, an ABI mismatch).
    InitError = 443,
    /// The instance did not become ready within the init timeout.
    InitTimeout = 450,
    /// A web function's `scf_bootstrap` is not executable, or exited before its server listened.
    BootstrapError = 405,
    /// A web function's server never listened on its port within the init timeout.
    PortBindingFailed = 446,
    /// The event is not a JSON document.
    InvalidEvent = 400,
    /// The event is larger than the platform accepts.
    RequestTooLarge = 406,
    /// The result is larger than the platform returns.
    ResponseTooLarge = 407,
    /// A fault of the runtime layer itself.
    InternalError = 500,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl ErrorKind {
    /// Whether this kind comes from the function's own code rather than from the platform.
    pub fn is_user_error(self) -> bool {
        matches!(
            self,
            ErrorKind::HandledError | ErrorKind::UnhandledError | ErrorKind::MarshalError
        )
    }

    /// Whether this kind is a failure to load the function (reported on every invocation of the instance).
    pub fn is_load_error(self) -> bool {
        matches!(
            self,
            ErrorKind::HandlerNotFound
                | ErrorKind::ModuleNotFound
                | ErrorKind::MalformedHandler
                | ErrorKind::HandlerNotCallable
                | ErrorKind::SyntaxError
                | ErrorKind::InitError
        )
    }
}

/// A classified failure of one invocation (or of loading the function).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} ({}): {message}", kind.status_code())]
pub struct FunctionError {
    /// The class of the failure.
    pub kind: ErrorKind,
    /// The `errorMessage` the caller sees.
    pub message: String,
    /// The language-native trace (`""` when there is none).
    pub stack_trace: String,
}

impl FunctionError {
    /// A failure of kind `kind` with the given message and trace.
    pub fn new(
        kind: ErrorKind,
        message: impl Into<String>,
        stack_trace: impl Into<String>,
    ) -> Self {
        FunctionError {
            kind,
            message: message.into(),
            stack_trace: stack_trace.into(),
        }
    }

    /// An error raised or returned by user code: message `user code exception caught`, the trace as given.
    pub fn user(kind: ErrorKind, stack_trace: impl Into<String>) -> Self {
        Self::new(kind, USER_CODE_EXCEPTION, stack_trace)
    }

    /// 437: the handler's file has no attribute `name` (the seed document's text).
    pub fn handler_not_found(name: &str) -> Self {
        Self::new(
            ErrorKind::HandlerNotFound,
            format!("'module' object has no attribute '{name}'"),
            "",
        )
    }

    /// 443: a module the code needs is missing (the seed document's text).
    pub fn module_not_found(name: &str) -> Self {
        Self::new(
            ErrorKind::ModuleNotFound,
            format!("global name '{name}' is not defined"),
            "",
        )
    }

    /// 443: the handler's attribute `name` of the file `file` exists but is not a function; `what` says what it
    /// is, in the language's own words (`a number`, `an object of type 'int'`).
    pub fn handler_not_callable(name: &str, file: &str, what: &str) -> Self {
        Self::new(
            ErrorKind::HandlerNotCallable,
            format!("Handler '{name}' of '{file}' is not callable: it is {what}"),
            "",
        )
    }

    /// 443: the handler string is malformed.
    pub fn malformed_handler(handler: &str, why: &str) -> Self {
        Self::new(
            ErrorKind::MalformedHandler,
            format!("Bad handler '{handler}': {why}"),
            "",
        )
    }

    /// 430: the result has no JSON form.
    pub fn marshal(detail: &str) -> Self {
        Self::new(
            ErrorKind::MarshalError,
            format!("Unable to marshal response: {detail}"),
            "",
        )
    }

    /// 400: `event` is not a JSON document. The message is the same in every language because it is derived
    /// here, from one parser.
    pub fn invalid_event(event: &[u8]) -> Self {
        let detail = match serde_json::from_slice::<serde::de::IgnoredAny>(event) {
            Err(e) => e.to_string(),
            Ok(_) => "the runtime could not decode it".to_owned(),
        };
        Self::new(
            ErrorKind::InvalidEvent,
            format!("Invalid event: not a JSON document ({detail})"),
            "",
        )
    }

    /// This error as reported for `event`: an `InvalidEvent` about an event that is not JSON gets the canonical
    /// wording of [`FunctionError::invalid_event`], whatever the host said (so every language gives the same
    /// text); one about a JSON event that does not fit a handler's type keeps its message (the deserialiser's).
    pub fn for_event(self, event: &[u8]) -> FunctionError {
        if self.kind == ErrorKind::InvalidEvent
            && serde_json::from_slice::<serde::de::IgnoredAny>(event).is_err()
        {
            return FunctionError::invalid_event(event);
        }
        self
    }

    /// 407: the result is larger than the platform returns.
    pub fn response_too_large(len: usize) -> Self {
        Self::new(
            ErrorKind::ResponseTooLarge,
            RESPONSE_TOO_LARGE_MESSAGE,
            format!(
                "response of {len} bytes; the limit is {} bytes",
                crate::MAX_RESPONSE_BYTES
            ),
        )
    }

    /// 433: the invocation ran past `secs` seconds. `asynchronous` selects the async invocation's wording.
    pub fn timeout(secs: f64, asynchronous: bool) -> Self {
        let prefix = if asynchronous {
            "Async invoking"
        } else {
            "Invoking"
        };
        Self::new(
            ErrorKind::Timeout,
            format!("{prefix} task timed out after {} seconds", fmt_secs(secs)),
            "",
        )
    }

    /// 434: the instance used more than `limit_mb` MB.
    pub fn memory_limit(limit_mb: u32) -> Self {
        Self::new(
            ErrorKind::MemoryLimitExceeded,
            format!("Task memory exceeded {limit_mb} MB"),
            "",
        )
    }

    /// 439: the instance process exited during the invocation; `how` describes the exit.
    pub fn process_exit(how: &str) -> Self {
        Self::new(ErrorKind::ProcessExit, PROCESS_EXIT_MESSAGE, how)
    }

    /// 500: a fault of the runtime layer.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InternalError, "InternalError", detail)
    }

    /// The caller-visible body for the request `request_id`, keys in alphabetical order, escaped like the
    /// platform's own bodies.
    pub fn to_body(&self, request_id: &str) -> String {
        let mut out = String::with_capacity(96 + self.message.len() + self.stack_trace.len());
        out.push_str("{\"errorCode\":-1,\"errorMessage\":");
        write_go_string(&mut out, &self.message);
        out.push_str(",\"errorType\":");
        write_go_string(&mut out, self.kind.name());
        out.push_str(",\"requestId\":");
        write_go_string(&mut out, request_id);
        out.push_str(",\"stackTrace\":");
        write_go_string(&mut out, &self.stack_trace);
        out.push_str(",\"statusCode\":");
        out.push_str(&self.kind.status_code().to_string());
        out.push('}');
        out
    }

    /// Parses a body produced by [`FunctionError::to_body`] (or by any implementation of the same contract)
    /// back into the error and its request id.
    pub fn from_body(body: &[u8]) -> Option<(FunctionError, String)> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Body {
            error_message: String,
            error_type: String,
            #[serde(default)]
            request_id: String,
            #[serde(default)]
            stack_trace: Option<String>,
        }
        let b: Body = serde_json::from_slice(body).ok()?;
        let kind = ErrorKind::from_name(&b.error_type)?;
        Some((
            FunctionError::new(kind, b.error_message, b.stack_trace.unwrap_or_default()),
            b.request_id,
        ))
    }
}

/// The outcome of one invocation as the caller sees it, from what the host produced for `event`: a result over
/// [`MAX_RESPONSE_BYTES`](crate::MAX_RESPONSE_BYTES) becomes a 407, an error is reported
/// [`for the event`](FunctionError::for_event). Every host's outcome goes through this one rule, in production
/// (the shim's core) and in each SDK's local `invoke`.
pub fn settle<B: AsRef<[u8]>>(
    event: &[u8],
    outcome: Result<B, FunctionError>,
) -> Result<B, FunctionError> {
    match outcome {
        Ok(body) => result_size(body.as_ref().len()).map(|()| body),
        Err(e) => Err(e.for_event(event)),
    }
}

/// The rule [`settle`] applies to a result of `len` bytes: a 407 over
/// [`MAX_RESPONSE_BYTES`](crate::MAX_RESPONSE_BYTES). A host that can tell a result's size before it has the
/// bytes (the Node host, from the length of the JavaScript string) asks this first, and so never copies a result
/// that cannot be returned.
pub fn result_size(len: usize) -> Result<(), FunctionError> {
    if len > crate::MAX_RESPONSE_BYTES {
        return Err(FunctionError::response_too_large(len));
    }
    Ok(())
}

/// Seconds as the platform prints them: whole numbers without a fraction.
fn fmt_secs(secs: f64) -> String {
    if secs.fract() == 0.0 {
        format!("{}", secs as u64)
    } else {
        format!("{secs}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_keys_in_order_and_go_escaping() {
        let e = FunctionError::user(ErrorKind::UnhandledError, "Traceback <x> & y");
        let body = e.to_body("req-1");
        assert_eq!(
            body,
            r#"{"errorCode":-1,"errorMessage":"user code exception caught","errorType":"UnhandledError","requestId":"req-1","stackTrace":"Traceback \u003cx\u003e \u0026 y","statusCode":430}"#
        );
        let (back, id) = FunctionError::from_body(body.as_bytes()).expect("parses");
        assert_eq!(back, e);
        assert_eq!(id, "req-1");
    }

    #[test]
    fn names_round_trip_and_statuses_match_the_spec() {
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(k.name()), Some(*k));
        }
        assert_eq!(ErrorKind::HandlerNotFound.status_code(), 437);
        assert_eq!(ErrorKind::ModuleNotFound.status_code(), 443);
        assert_eq!(ErrorKind::Timeout.status_code(), 433);
        assert_eq!(ErrorKind::ProcessExit.status_code(), 439);
        assert_eq!(ErrorKind::from_name("nope"), None);
    }

    #[test]
    fn canonical_messages() {
        assert_eq!(
            FunctionError::handler_not_found("x").message,
            "'module' object has no attribute 'x'"
        );
        assert_eq!(
            FunctionError::handler_not_callable("h", "index", "a number").message,
            "Handler 'h' of 'index' is not callable: it is a number"
        );
        assert_eq!(
            FunctionError::module_not_found("y").message,
            "global name 'y' is not defined"
        );
        assert_eq!(
            FunctionError::timeout(3.0, false).message,
            "Invoking task timed out after 3 seconds"
        );
        assert_eq!(
            FunctionError::timeout(0.5, true).message,
            "Async invoking task timed out after 0.5 seconds"
        );
        assert_eq!(
            FunctionError::memory_limit(128).message,
            "Task memory exceeded 128 MB"
        );
        let e = FunctionError::invalid_event(b"{not json");
        assert_eq!(e.kind.status_code(), 400);
        assert!(
            e.message
                .starts_with("Invalid event: not a JSON document (key must be a string"),
            "{}",
            e.message
        );
    }
}

#[cfg(test)]
mod settle_tests {
    use super::*;

    #[test]
    fn the_limit_and_the_invalid_event_wording_apply_to_every_outcome() {
        assert_eq!(
            settle(b"{}", Ok::<_, FunctionError>(b"1".to_vec())),
            Ok(b"1".to_vec())
        );
        let big = vec![b'x'; crate::MAX_RESPONSE_BYTES + 1];
        let e = settle(b"{}", Ok(big)).expect_err("too large");
        assert_eq!(e.kind, ErrorKind::ResponseTooLarge);
        assert_eq!(e.message, RESPONSE_TOO_LARGE_MESSAGE);
        let exact = vec![b'x'; crate::MAX_RESPONSE_BYTES];
        assert!(
            settle(b"{}", Ok(exact)).is_ok(),
            "the limit itself is allowed"
        );
        // A host's own words for a non-JSON event are replaced by the canonical text …
        let host = FunctionError::new(ErrorKind::InvalidEvent, "Unexpected token n", "");
        let e = settle::<Vec<u8>>(b"{not json", Err(host)).expect_err("invalid");
        assert_eq!(e, FunctionError::invalid_event(b"{not json"));
        // … while a JSON event that does not fit a type keeps the deserialiser's message.
        let typed = FunctionError::new(ErrorKind::InvalidEvent, "missing field `n`", "");
        let e = settle::<Vec<u8>>(b"{}", Err(typed.clone())).expect_err("typed");
        assert_eq!(e, typed);
        let user = FunctionError::user(ErrorKind::UnhandledError, "trace");
        assert_eq!(settle::<Vec<u8>>(b"{bad", Err(user.clone())), Err(user));
    }
}

#[cfg(test)]
mod docs_tests {
    use super::ErrorKind;

    #[test]
    fn docs_errors_md_lists_every_kind_with_its_status() {
        let doc = include_str!("../../docs/errors.md");
        for k in ErrorKind::ALL {
            let row = format!("| `{}` | {} |", k.name(), k.status_code());
            assert!(doc.contains(&row), "docs/errors.md has no row {row}");
        }
    }
}
