//! `scf-platform`: the SCF platform on a developer's machine, as a library (`scf-local` is its command).
//!
//! - [`config`]: a function's definition (flags, or the `serverless.yml` users already have: components
//!   `scf`, `multi-scf`, `http`, their triggers), and [`cron`], the timers' expressions;
//! - [`build`]: Rust functions run from their crate (the one function that runs cargo);
//! - [`package`]: `scf-local package`: zips the real cloud accepts, and the `serverless.yml` that deploys them;
//! - [`Platform`]: where the platform finds `scf-shim`, and the supervisor of its instances
//!   (`scf-supervisor`);
//! - [`EventInstance`]: one instance of an event function, started, invoked and stopped: what
//!   [`invoke_once`] (`scf-local invoke`), the conformance kit and the benchmarks use;
//! - [`serve`]: `scf-local serve`: the pools of instances (event functions over the runtime API, web and
//!   image-style functions over HTTP), the async queue with its retries, the TencentCloud-API front door and
//!   the web functions behind one listener, the API Gateway listener, the timers, the on-demand triggers,
//!   the request logs in the store (`scf-store`);
//! - [`RequestLog`]: the request log in SCF's format;
//! - the development loop: [`activity`] (what happens on the platform, the one source of the terminal and the
//!   console), [`terminal`] (the readable lines of `serve` and `logs --follow`), [`watch`] (reload on save),
//!   [`debug`] (instances under a debugger), and the web console at `/console` (`console.rs`).

mod actions;
pub mod activity;
mod asyncq;
pub mod build;
pub mod config;
mod console;
pub mod cron;
pub mod debug;
mod event;
mod frontdoor;
mod functions;
mod gateway;
mod http;
mod instance;
mod invoke;
mod ondemand;
pub mod package;
mod pool;
mod requestlog;
mod router;
mod serve;
mod tc3;
pub mod terminal;
mod timer;
pub mod watch;

pub use event::{EventInstance, Outcome, caller_body};
pub use frontdoor::Credentials;
pub use gateway::DEFAULT_APIGW_PORT;
pub use instance::{Platform, StartFailure, ZYGOTE_ENV, ZYGOTE_PREIMPORT_ENV};
pub use invoke::{Invoked, invoke_once};
pub use requestlog::{ColdStart, RequestLog};
/// Every trigger's event (`scf-local event`, `scf-local trigger`), as `scf-protocol` describes them.
pub use scf_protocol::events;
pub use serve::{DEFAULT_PORT, ServeOptions, serve};

/// Failures of the platform itself (not of the function, which are classified
/// [`FunctionError`](scf_protocol::FunctionError)s).
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The function's definition is unusable.
    #[error("{0}")]
    Config(String),
    /// An I/O failure of the platform.
    #[error("{context}: {source}")]
    Io {
        /// What the platform was doing.
        context: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] scf_store::StoreError),
}

impl PlatformError {
    /// An I/O failure while doing `context`.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> PlatformError {
        let context = context.into();
        move |source| PlatformError::Io { context, source }
    }
}
