//! `scf-shim`: the runtime initializer of one function instance.
//!
//! The platform starts one `scf-shim` process per instance. The shim reads its configuration from the
//! environment the platform sets ([`Config`]), starts the function's language ([`host`]), loads the
//! handler named `file.method` ([`HandlerName`]), tells the platform it is ready, then pulls invocations
//! over the runtime API ([`Runtime`]) and answers each with a JSON result or a classified
//! [`FunctionError`](scf_protocol::FunctionError), until the platform stops it.
//!
//! The invocation rules live once, in the sans-IO state machine [`core`]; [`Runtime`] is its blocking driver
//! over the runtime API client, and [`run`] the one invocation loop, over the [`Host`] trait. The native host
//! lives in this crate, the Python and Node.js hosts in their SDKs (which link this crate and drive the same
//! core) and reach it through [`host::python::exec`] and [`host::node::exec`].

mod client;
mod clock;
mod config;
pub mod core;
mod handler;
pub mod host;
mod runtime;
pub mod zygote;

pub use clock::{SHIM_START_ENV, monotonic_ns};
pub use config::{Config, Endpoint, lambda_api};
pub use core::{Core, Invocation, Request, Step};
pub use handler::HandlerName;
pub use host::Host;
pub use runtime::{Outcome, Progress, Runtime, run};
pub use scf_protocol as protocol;

/// Why the shim could not do its job. Failures of the function itself are not `ShimError`s: they are
/// [`FunctionError`](scf_protocol::FunctionError)s reported to the platform.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The environment does not describe a usable instance.
    #[error("configuration: {0}")]
    Config(String),
    /// The runtime API could not be reached.
    #[error("cannot connect to the runtime API at {endpoint}: {source}")]
    Connect {
        /// Where the shim tried to connect.
        endpoint: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The platform closed the runtime API and does not accept a new connection: it stopped the instance.
    #[error("the platform closed the runtime API")]
    Disconnected,
    /// The platform answered something the protocol does not allow.
    #[error("runtime API protocol: {0}")]
    Protocol(String),
    /// The language runtime could not be started.
    #[error("cannot start {what}: {source}")]
    Exec {
        /// The program that failed to start.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// An I/O failure inside the shim, or on its connection to the runtime API (one that ended is
    /// [`ShimError::Disconnected`]).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ShimError {
    /// Whether the platform went away (closed the connection). The shim then ends quietly.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, ShimError::Disconnected)
    }
}
