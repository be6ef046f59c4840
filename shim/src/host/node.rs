//! The Node.js host: replaces the shim with `node` running the Node SDK's bootstrap (see `sdk-node`).

use crate::{Config, ShimError};

/// Replaces this process with the Node.js host. Returns only on failure.
pub fn exec(_config: &Config) -> ShimError {
    ShimError::Config("the Node.js host is not available in this build".into())
}
