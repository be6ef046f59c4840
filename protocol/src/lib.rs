//! Shared vocabulary of the SCF runtime layer.
//!
//! Everything that more than one side needs lives here, once:
//! - [`error`]: the error taxonomy (kind, status code, canonical message) and the caller-visible body;
//! - [`context`]: the invocation context handed to every handler;
//! - [`api`]: the runtime API between an instance and the platform (paths, headers, messages);
//! - [`abi`]: the C ABI between `scf-shim` and a native handler library;
//! - [`handler`]: the handler string `file.method`, parsed once for every language;
//! - [`runtime`]: runtime names (`Python3.9`, `nodejs`, `CustomRuntime`, …), parsed once;
//! - [`json`]: JSON strings with the platform's escaping, and the event depth check;
//! - [`limits`]: the platform's documented limits;
//! - [`events`]: the trigger events (API Gateway, Timer, COS, CMQ, CKafka, CLB, WebSocket) and their samples.
#![warn(missing_docs)]

pub mod abi;
pub mod api;
pub mod context;
pub mod error;
pub mod events;
pub mod handler;
pub mod json;
pub mod limits;
pub mod runtime;

pub use context::Context;
pub use error::{ErrorKind, FunctionError};
pub use handler::{HandlerName, check_handler_file};
pub use limits::MAX_RESPONSE_BYTES;
pub use runtime::Runtime;
