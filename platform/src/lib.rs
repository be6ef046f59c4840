//! `scf-local`: the SCF platform on a developer's machine.
//!
//! - [`config`]: a function's definition (flags, or the `serverless.yml` users already have);
//! - [`api`]: the runtime API server one instance talks to (`docs/protocol.md`);
//! - [`instance`]: one instance: its process, its private directories, its init phases, its limits;
//! - [`logs`]: capture of the instance's output and the request log in SCF's format;
//! - [`invoke`]: one invocation on a fresh instance, as `scf-local invoke` runs it.

pub mod api;
pub mod config;
pub mod instance;
pub mod invoke;
pub mod logs;

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
