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

/// The language host a handler's file calls for, when no runtime names one: `FILE.METHOD` with `FILE.py`
/// (split at the last dot, as Python resolves it; dots of a package path may be slashes) → Python; a module
/// `M.js`/`.mjs`/`.cjs` (the text before the first dot, as Node resolves it) → Node.js; otherwise native.
/// `exists` says whether a file (relative to the code root) is there.
pub fn detect_host(handler: &str, exists: impl Fn(&str) -> bool) -> Runtime {
    let python_file = handler.rsplit_once('.').map(|(f, _)| f).unwrap_or("");
    let py = |f: &str| !f.is_empty() && exists(&format!("{f}.py"));
    if py(python_file) || py(&python_file.replace('.', "/")) {
        return Runtime::Python;
    }
    let node_module = handler.split_once('.').map(|(m, _)| m).unwrap_or("");
    if !node_module.is_empty()
        && ["js", "mjs", "cjs"]
            .iter()
            .any(|ext| exists(&format!("{node_module}.{ext}")))
    {
        return Runtime::Node;
    }
    Runtime::Native
}

/// Names the debugger an instance starts (set by `scf-local --debug`, read by the Python and Node.js hosts,
/// which remove it before the function's code runs): `HOST:PORT`, then `,wait` when the instance waits for a
/// debugger to attach before it loads the function ([`DebugListen`]).
pub const DEBUG_ENV: &str = "_SCF_DEBUG";

/// Where an instance's debugger listens, and whether it waits for a client: the value of [`DEBUG_ENV`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugListen {
    /// The address to listen on (`127.0.0.1`).
    pub host: String,
    /// The port.
    pub port: u16,
    /// Wait for a debugger to attach before the function loads.
    pub wait: bool,
}

impl DebugListen {
    /// The variable's value.
    pub fn to_env(&self) -> String {
        format!(
            "{}:{}{}",
            self.host,
            self.port,
            if self.wait { ",wait" } else { "" }
        )
    }

    /// Reads the variable's value back.
    pub fn parse(value: &str) -> Option<DebugListen> {
        let (addr, wait) = match value.split_once(',') {
            Some((a, "wait")) => (a, true),
            Some(_) => return None,
            None => (value, false),
        };
        let (host, port) = addr.rsplit_once(':')?;
        Some(DebugListen {
            host: host.to_owned(),
            port: port.parse().ok()?,
            wait,
        })
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
    fn the_handlers_file_decides_the_host() {
        let files = ["index.py", "pkg/mod.py", "app.mjs"];
        let exists = |f: &str| files.contains(&f);
        assert_eq!(detect_host("index.main_handler", exists), Runtime::Python);
        assert_eq!(detect_host("pkg.mod.main", exists), Runtime::Python);
        assert_eq!(detect_host("app.nested.handler", exists), Runtime::Node);
        assert_eq!(detect_host("lib.main", exists), Runtime::Native);
    }

    #[test]
    fn debug_listen_round_trips() {
        for wait in [false, true] {
            let d = DebugListen {
                host: "127.0.0.1".into(),
                port: 5678,
                wait,
            };
            assert_eq!(DebugListen::parse(&d.to_env()), Some(d));
        }
        assert_eq!(DebugListen::parse("127.0.0.1:x"), None);
        assert_eq!(DebugListen::parse("127.0.0.1:1,later"), None);
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
