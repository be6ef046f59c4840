//! The runtime API between an instance and the platform, modelled once.
//!
//! An instance makes four kinds of call ([`Call`]); a [`Dialect`] says how each is written on the wire
//! (paths and header names). Today the one dialect is the SCF Custom Runtime API (`docs/protocol.md`);
//! another one is a new variant of [`Dialect`], not another client or server.

/// One call an instance makes to the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `POST /runtime/init/ready`: initialisation finished; the instance can take invocations.
    InitReady,
    /// `GET /runtime/invocation/next`: long poll for the next invocation.
    Next,
    /// `POST /runtime/invocation/response`: the result of the invocation in flight.
    Response,
    /// `POST /runtime/invocation/error`: the invocation in flight failed; the body is the error.
    Error,
}

/// How the calls are written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// The SCF Custom Runtime API: fixed paths, per-invocation data in `request_id`,
    /// `memory_limit_in_mb` and `time_limit_in_ms` headers.
    #[default]
    Scf,
}

/// Header names of the SCF dialect (matched case-insensitively; HTTP header names are).
pub mod headers {
    /// Id of the invocation, on the answer to `next`.
    pub const REQUEST_ID: &str = "request_id";
    /// Memory size in MB, on the answer to `next`.
    pub const MEMORY_LIMIT_IN_MB: &str = "memory_limit_in_mb";
    /// Execution timeout in ms, on the answer to `next`.
    pub const TIME_LIMIT_IN_MS: &str = "time_limit_in_ms";
    /// Our extension, on `init/ready`: microseconds from the instance process's start until the language
    /// runtime was ready (the InitRuntime phase as the instance saw it). Platforms that do not know it ignore it.
    pub const INIT_RUNTIME_US: &str = "x-scf-init-runtime-us";
    /// Our extension, on `init/ready`: microseconds spent loading the function's code (InitFunction).
    pub const INIT_FUNCTION_US: &str = "x-scf-init-function-us";
}

/// The body of `init/ready`: one space, as the official sample sends (the cloud rejects an empty body).
pub const READY_BODY: &[u8] = b" ";

impl Dialect {
    /// The HTTP method and path of `call`.
    pub fn route(self, call: &Call) -> (&'static str, &'static str) {
        match (self, call) {
            (Dialect::Scf, Call::InitReady) => ("POST", "/runtime/init/ready"),
            (Dialect::Scf, Call::Next) => ("GET", "/runtime/invocation/next"),
            (Dialect::Scf, Call::Response) => ("POST", "/runtime/invocation/response"),
            (Dialect::Scf, Call::Error) => ("POST", "/runtime/invocation/error"),
        }
    }

    /// The call a request with `method` and `path` makes, if any.
    pub fn parse(self, method: &str, path: &str) -> Option<Call> {
        let path = path.split('?').next().unwrap_or(path);
        [Call::InitReady, Call::Next, Call::Response, Call::Error]
            .into_iter()
            .find(|c| self.route(c) == (method, path))
    }
}

/// Per-invocation data carried on the answer to `next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationMeta {
    /// Id of the invocation.
    pub request_id: String,
    /// Memory size in MB.
    pub memory_limit_in_mb: u32,
    /// Execution timeout in ms.
    pub time_limit_in_ms: u64,
}

impl InvocationMeta {
    /// Header `(name, value)` pairs that carry this metadata in `dialect`.
    pub fn to_headers(&self, dialect: Dialect) -> Vec<(&'static str, String)> {
        match dialect {
            Dialect::Scf => vec![
                (headers::REQUEST_ID, self.request_id.clone()),
                (
                    headers::MEMORY_LIMIT_IN_MB,
                    self.memory_limit_in_mb.to_string(),
                ),
                (headers::TIME_LIMIT_IN_MS, self.time_limit_in_ms.to_string()),
            ],
        }
    }

    /// Reads the metadata back from headers; `get` looks a header up by its lower-case name.
    pub fn from_headers<'a>(
        dialect: Dialect,
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Self, String> {
        match dialect {
            Dialect::Scf => {
                let request_id = get(headers::REQUEST_ID)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        format!("the answer to next has no {} header", headers::REQUEST_ID)
                    })?
                    .to_owned();
                let num = |name: &str| -> Result<u64, String> {
                    get(name)
                        .ok_or_else(|| format!("the answer to next has no {name} header"))?
                        .trim()
                        .parse::<u64>()
                        .map_err(|e| format!("header {name}: {e}"))
                };
                let memory = num(headers::MEMORY_LIMIT_IN_MB)?;
                Ok(InvocationMeta {
                    request_id,
                    memory_limit_in_mb: u32::try_from(memory)
                        .map_err(|e| format!("memory_limit_in_mb: {e}"))?,
                    time_limit_in_ms: num(headers::TIME_LIMIT_IN_MS)?,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_back() {
        for c in [Call::InitReady, Call::Next, Call::Response, Call::Error] {
            let (m, p) = Dialect::Scf.route(&c);
            assert_eq!(Dialect::Scf.parse(m, p), Some(c));
        }
        assert_eq!(
            Dialect::Scf.parse("GET", "/runtime/invocation/response"),
            None
        );
        assert_eq!(
            Dialect::Scf.parse("GET", "/runtime/invocation/next?x=1"),
            Some(Call::Next)
        );
    }

    #[test]
    fn metadata_round_trips_through_headers() {
        let m = InvocationMeta {
            request_id: "r".into(),
            memory_limit_in_mb: 128,
            time_limit_in_ms: 3000,
        };
        let hs = m.to_headers(Dialect::Scf);
        let back = InvocationMeta::from_headers(Dialect::Scf, |n| {
            hs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str())
        });
        assert_eq!(back, Ok(m));
        assert!(InvocationMeta::from_headers(Dialect::Scf, |_| None).is_err());
    }
}
