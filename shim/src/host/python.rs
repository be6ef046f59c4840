//! The Python host: replaces the shim with the function's Python interpreter running the Python SDK's
//! bootstrap (see `sdk-python`).

use crate::{Config, ShimError};

/// Replaces this process with the Python host. Returns only on failure.
pub fn exec(_config: &Config) -> ShimError {
    ShimError::Config("the Python host is not available in this build".into())
}
