//! Runtime names, parsed once for the shim and the platform.
//!
//! A function names its runtime the way SCF does (`Python3.9`, `Nodejs16.13`, `CustomRuntime`) or in our
//! short forms (`python3`, `nodejs`, `native`, `custom`); case does not matter. No name (or `auto`) lets the
//! handler's file decide (see [`Runtime::Auto`]).

use std::fmt;

/// Which runtime runs a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// No runtime named: `scf-shim` picks the host from the handler's file (`index.py` → Python,
    /// `index.js`/`.mjs`/`.cjs` → Node.js, otherwise native).
    Auto,
    /// A handler library loaded with `dlopen` through the C ABI (Rust, C, Zig, Go with cgo).
    Native,
    /// CPython 3, through the Python SDK's native module.
    Python,
    /// Node.js, through the Node SDK's add-on.
    Node,
    /// The code directory's own executable `bootstrap` (the custom-runtime contract).
    Custom,
}

/// A runtime name no host serves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UnknownRuntime {
    /// What is wrong with the name, and what is accepted.
    pub message: String,
}

/// The names accepted, for messages.
pub const ACCEPTED: &str = "python3 (or Python3.6 … Python3.13), nodejs (or Nodejs12.16 … Nodejs20.x), \
native (rust, c, zig, go), custom (or CustomRuntime), or auto";

impl Runtime {
    /// Parses a runtime name (case-insensitive).
    pub fn parse(name: &str) -> Result<Runtime, UnknownRuntime> {
        let n = name.trim().to_ascii_lowercase();
        let unknown = |why: String| Err(UnknownRuntime { message: why });
        match n.as_str() {
            "" | "auto" => return Ok(Runtime::Auto),
            "native" | "rust" | "c" | "zig" | "go" => return Ok(Runtime::Native),
            "custom" | "customruntime" => return Ok(Runtime::Custom),
            _ => {}
        }
        if let Some(version) = n.strip_prefix("python") {
            return match version.split('.').next() {
                Some("" | "3") => Ok(Runtime::Python),
                _ => unknown(format!(
                    "runtime '{name}' is not supported: the Python host runs Python 3; expected {ACCEPTED}"
                )),
            };
        }
        if let Some(version) = n.strip_prefix("nodejs").or_else(|| n.strip_prefix("node")) {
            let major = version.split('.').next().unwrap_or("");
            return match major.parse::<u32>() {
                _ if major.is_empty() => Ok(Runtime::Node),
                Ok(m) if m >= 12 => Ok(Runtime::Node),
                _ => unknown(format!(
                    "runtime '{name}' is not supported: the Node.js host needs Node.js 12 or later; expected {ACCEPTED}"
                )),
            };
        }
        unknown(format!("unknown runtime '{name}'; expected {ACCEPTED}"))
    }

    /// The name an instance sees in `SCF_RUNTIME` (empty for [`Runtime::Auto`]).
    pub fn env_name(self) -> &'static str {
        match self {
            Runtime::Auto => "",
            Runtime::Native => "native",
            Runtime::Python => "python3",
            Runtime::Node => "nodejs",
            Runtime::Custom => "CustomRuntime",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Runtime::Auto => "auto",
            other => other.env_name(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scf_and_short_names() {
        for (name, want) in [
            ("", Runtime::Auto),
            ("auto", Runtime::Auto),
            ("Python3.9", Runtime::Python),
            ("python3", Runtime::Python),
            ("PYTHON", Runtime::Python),
            ("Nodejs16.13", Runtime::Node),
            ("nodejs", Runtime::Node),
            ("Nodejs12.16", Runtime::Node),
            ("native", Runtime::Native),
            ("rust", Runtime::Native),
            ("go", Runtime::Native),
            ("zig", Runtime::Native),
            ("CustomRuntime", Runtime::Custom),
            ("custom", Runtime::Custom),
        ] {
            assert_eq!(Runtime::parse(name), Ok(want), "{name}");
        }
    }

    #[test]
    fn unsupported_names_are_refused_with_the_list() {
        for name in [
            "Python2.7",
            "python2",
            "Nodejs8.9",
            "Php7",
            "Java8",
            "cobol",
        ] {
            let e = Runtime::parse(name).expect_err(name);
            assert!(e.message.contains(name), "{}", e.message);
            assert!(e.message.contains("python3"), "{}", e.message);
        }
    }

    #[test]
    fn env_names_parse_back() {
        for r in [
            Runtime::Auto,
            Runtime::Native,
            Runtime::Python,
            Runtime::Node,
            Runtime::Custom,
        ] {
            assert_eq!(Runtime::parse(r.env_name()), Ok(r));
        }
    }
}
