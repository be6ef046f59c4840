//! `scf-local`: the SCF platform on a developer's machine.
//!
//! - [`config`]: a function's definition (flags, or the `serverless.yml` users already have);
//! - [`api`]: the runtime API server one instance talks to (`docs/protocol.md`);
//! - [`instance`]: one instance: its process, its private directories, its init phases, its limits;
//! - [`logs`]: capture of the instance's output and the request log in SCF's format;
//! - [`invoke`]: one invocation on a fresh instance, as `scf-local invoke` runs it;
//! - [`scheduler`]: a function's instances: cold and warm, concurrency, idle repossession, provisioned;
//! - [`asyncq`]: asynchronous invocation: the durable queue's dispatcher and the retry policy;
//! - [`store`]: the durable state (queues, dead letters, logs) in SQLite;
//! - [`frontdoor`]: the TencentCloud-API-shaped HTTP front door, and [`tc3`], its request signatures;
//! - [`serve`]: `scf-local serve`, all of the above running together.
//! - [`web`]: web functions and image-style event functions (an HTTP server as the instance).
//! - [`conformance`]: `scf-local conformance`, the cross-language conformance suite's runner.

pub mod api;
pub mod asyncq;
pub mod config;
pub mod conformance;
pub mod frontdoor;
pub mod instance;
pub mod invoke;
pub mod logs;
pub mod scheduler;
pub mod serve;
pub mod store;
pub mod tc3;
pub mod web;

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
}

impl PlatformError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> PlatformError {
        let context = context.into();
        move |source| PlatformError::Io { context, source }
    }
}
