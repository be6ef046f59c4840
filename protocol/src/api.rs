//! The runtime API between an instance and the platform, modelled once.
//!
//! An instance makes a handful of calls ([`Call`]); a [`Dialect`] says how each is written on the wire
//! (paths, headers, status codes, the error body). Two dialects exist: the SCF Custom Runtime API and the
//! AWS Lambda Runtime API (`docs/protocol.md`). Both the shim's client and the platform's server speak either
//! through this one model, so a dialect is an encoding, not another code path.

/// One call an instance makes to the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Initialisation finished; the instance can take invocations. (SCF: `POST /runtime/init/ready`.
    /// Lambda has no such call: the first `next` means ready.)
    InitReady,
    /// Initialisation failed; the body is the error and the instance exits. (Lambda only:
    /// `POST /2018-06-01/runtime/init/error`.)
    InitError,
    /// Long poll for the next invocation.
    Next,
    /// The result of the invocation in flight.
    Response,
    /// The invocation in flight failed; the body is the error.
    Error,
}

/// How the calls are written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// The SCF Custom Runtime API: fixed paths, per-invocation data in `request_id`,
    /// `memory_limit_in_mb` and `time_limit_in_ms` headers, results answered 200.
    #[default]
    Scf,
    /// The AWS Lambda Runtime API (`/2018-06-01/...`): the request id in the result's path,
    /// `Lambda-Runtime-*` headers, results answered 202, errors as `{"errorMessage","errorType","stackTrace":[…]}`.
    Lambda,
}

/// Header names of both dialects (HTTP header names are case-insensitive; these are lower case).
pub mod headers {
    /// SCF: id of the invocation, on the answer to `next`.
    pub const REQUEST_ID: &str = "request_id";
    /// SCF: memory size in MB, on the answer to `next`.
    pub const MEMORY_LIMIT_IN_MB: &str = "memory_limit_in_mb";
    /// SCF: execution timeout in ms, on the answer to `next`.
    pub const TIME_LIMIT_IN_MS: &str = "time_limit_in_ms";
    /// Our extension, on `init/ready`: microseconds from the instance process's start until the language
    /// runtime was ready (the InitRuntime phase as the instance saw it). Platforms that do not know it ignore it.
    pub const INIT_RUNTIME_US: &str = "x-scf-init-runtime-us";
    /// Our extension, on `init/ready`: microseconds spent loading the function's code (InitFunction).
    pub const INIT_FUNCTION_US: &str = "x-scf-init-function-us";
    /// Lambda: id of the invocation.
    pub const LAMBDA_REQUEST_ID: &str = "lambda-runtime-aws-request-id";
    /// Lambda: the deadline, ms since the epoch.
    pub const LAMBDA_DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
    /// Lambda: the invoked function's ARN.
    pub const LAMBDA_FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
    /// Lambda: the trace id.
    pub const LAMBDA_TRACE_ID: &str = "lambda-runtime-trace-id";
    /// Lambda: the error's type, on an error post.
    pub const LAMBDA_ERROR_TYPE: &str = "lambda-runtime-function-error-type";
}

/// The body of SCF's `init/ready`: one space, as the official sample sends (the cloud rejects an empty body).
pub const READY_BODY: &[u8] = b" ";

const LAMBDA_PREFIX: &str = "/2018-06-01/runtime";

impl Dialect {
    /// The HTTP method and path of `call` (`request_id`: the invocation a result is for), or `None` when the
    /// dialect has no such call.
    pub fn route(self, call: &Call, request_id: &str) -> Option<(&'static str, String)> {
        match (self, call) {
            (Dialect::Scf, Call::InitReady) => Some(("POST", "/runtime/init/ready".into())),
            (Dialect::Scf, Call::InitError) => None,
            (Dialect::Scf, Call::Next) => Some(("GET", "/runtime/invocation/next".into())),
            (Dialect::Scf, Call::Response) => Some(("POST", "/runtime/invocation/response".into())),
            (Dialect::Scf, Call::Error) => Some(("POST", "/runtime/invocation/error".into())),
            (Dialect::Lambda, Call::InitReady) => None,
            (Dialect::Lambda, Call::InitError) => {
                Some(("POST", format!("{LAMBDA_PREFIX}/init/error")))
            }
            (Dialect::Lambda, Call::Next) => {
                Some(("GET", format!("{LAMBDA_PREFIX}/invocation/next")))
            }
            (Dialect::Lambda, Call::Response) => Some((
                "POST",
                format!("{LAMBDA_PREFIX}/invocation/{request_id}/response"),
            )),
            (Dialect::Lambda, Call::Error) => Some((
                "POST",
                format!("{LAMBDA_PREFIX}/invocation/{request_id}/error"),
            )),
        }
    }

    /// The call a request with `method` and `path` makes, with the request id its path names (Lambda), if any.
    pub fn parse(self, method: &str, path: &str) -> Option<(Call, Option<String>)> {
        let path = path.split('?').next().unwrap_or(path);
        match self {
            Dialect::Scf => [Call::InitReady, Call::Next, Call::Response, Call::Error]
                .into_iter()
                .find(|c| {
                    self.route(c, "")
                        .is_some_and(|(m, p)| m == method && p == path)
                })
                .map(|c| (c, None)),
            Dialect::Lambda => {
                let rest = path.strip_prefix(LAMBDA_PREFIX)?;
                match (method, rest) {
                    ("POST", "/init/error") => Some((Call::InitError, None)),
                    ("GET", "/invocation/next") => Some((Call::Next, None)),
                    ("POST", r) => {
                        let r = r.strip_prefix("/invocation/")?;
                        let (id, what) = r.rsplit_once('/')?;
                        let call = match what {
                            "response" => Call::Response,
                            "error" => Call::Error,
                            _ => return None,
                        };
                        (!id.is_empty() && !id.contains('/')).then(|| (call, Some(id.to_owned())))
                    }
                    _ => None,
                }
            }
        }
    }

    /// The status a platform answers an accepted result with (SCF 200, Lambda 202).
    pub fn accepted_status(self) -> u16 {
        match self {
            Dialect::Scf => 200,
            Dialect::Lambda => 202,
        }
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

/// What a Lambda platform sends besides the metadata: the function's identity, for its ARN.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LambdaIdentity {
    /// The function's name.
    pub function_name: String,
    /// The region.
    pub region: String,
}

impl InvocationMeta {
    /// Header `(name, value)` pairs that carry this metadata in `dialect`; `now_ms` (ms since the epoch)
    /// dates Lambda's deadline.
    pub fn to_headers(
        &self,
        dialect: Dialect,
        now_ms: u64,
        who: &LambdaIdentity,
    ) -> Vec<(&'static str, String)> {
        match dialect {
            Dialect::Scf => vec![
                (headers::REQUEST_ID, self.request_id.clone()),
                (
                    headers::MEMORY_LIMIT_IN_MB,
                    self.memory_limit_in_mb.to_string(),
                ),
                (headers::TIME_LIMIT_IN_MS, self.time_limit_in_ms.to_string()),
            ],
            Dialect::Lambda => vec![
                (headers::LAMBDA_REQUEST_ID, self.request_id.clone()),
                (
                    headers::LAMBDA_DEADLINE_MS,
                    (now_ms + self.time_limit_in_ms).to_string(),
                ),
                (
                    headers::LAMBDA_FUNCTION_ARN,
                    format!(
                        "arn:aws:lambda:{}:000000000000:function:{}",
                        who.region, who.function_name
                    ),
                ),
                (
                    headers::LAMBDA_TRACE_ID,
                    format!(
                        "Root=1-00000000-{};Sampled=0",
                        self.request_id.replace('-', "")
                    ),
                ),
            ],
        }
    }

    /// Reads the metadata back from headers; `get` looks a header up by its lower-case name. Lambda carries
    /// no memory size per invocation: `memory_mb` is used for it; its timeout is the deadline less `now_ms`.
    pub fn from_headers<'a>(
        dialect: Dialect,
        get: impl Fn(&str) -> Option<&'a str>,
        now_ms: u64,
        memory_mb: u32,
    ) -> Result<Self, String> {
        let text = |name: &str| -> Result<String, String> {
            get(name)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("the answer to next has no {name} header"))
        };
        let num = |name: &str| -> Result<u64, String> {
            text(name)?
                .parse::<u64>()
                .map_err(|e| format!("header {name}: {e}"))
        };
        match dialect {
            Dialect::Scf => Ok(InvocationMeta {
                request_id: text(headers::REQUEST_ID)?,
                memory_limit_in_mb: u32::try_from(num(headers::MEMORY_LIMIT_IN_MB)?)
                    .map_err(|e| format!("memory_limit_in_mb: {e}"))?,
                time_limit_in_ms: num(headers::TIME_LIMIT_IN_MS)?,
            }),
            Dialect::Lambda => Ok(InvocationMeta {
                request_id: text(headers::LAMBDA_REQUEST_ID)?,
                memory_limit_in_mb: memory_mb,
                time_limit_in_ms: num(headers::LAMBDA_DEADLINE_MS)?.saturating_sub(now_ms),
            }),
        }
    }
}

/// Lambda's error body: `{"errorMessage","errorType","stackTrace":[lines]}`.
pub fn lambda_error_body(error: &crate::FunctionError) -> String {
    serde_json::json!({
        "errorMessage": error.message,
        "errorType": error.kind.name(),
        "stackTrace": error.stack_trace.lines().collect::<Vec<_>>(),
    })
    .to_string()
}

/// Reads an error a Lambda runtime posted (its body, and the `Lambda-Runtime-Function-Error-Type` header)
/// into the taxonomy: one of our own kinds if it names one, else an unhandled user error whose trace is the
/// runtime's type, message and stack.
pub fn lambda_error_to_function_error(
    body: &[u8],
    error_type_header: Option<&str>,
) -> crate::FunctionError {
    use crate::{ErrorKind, FunctionError};
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "camelCase", default)]
    struct Body {
        error_message: Option<String>,
        error_type: Option<String>,
        stack_trace: Option<serde_json::Value>,
    }
    let b: Body = serde_json::from_slice(body).unwrap_or_default();
    let error_type = b
        .error_type
        .or_else(|| error_type_header.map(str::to_owned))
        .unwrap_or_default();
    let message = b
        .error_message
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let stack = match b.stack_trace {
        Some(serde_json::Value::Array(lines)) => lines
            .iter()
            .map(|l| l.as_str().map_or_else(|| l.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(serde_json::Value::String(s)) => s,
        _ => String::new(),
    };
    if let Some(kind) = ErrorKind::from_name(&error_type) {
        return FunctionError::new(kind, message, stack);
    }
    let mut trace = if error_type.is_empty() {
        message
    } else {
        format!("{error_type}: {message}")
    };
    if !stack.is_empty() {
        trace.push('\n');
        trace.push_str(&stack);
    }
    FunctionError::user(ErrorKind::UnhandledError, trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_back_in_both_dialects() {
        for d in [Dialect::Scf, Dialect::Lambda] {
            for c in [
                Call::InitReady,
                Call::InitError,
                Call::Next,
                Call::Response,
                Call::Error,
            ] {
                if let Some((m, p)) = d.route(&c, "req-1") {
                    let (back, id) = d.parse(m, &p).expect("parses");
                    assert_eq!(back, c, "{d:?} {p}");
                    if d == Dialect::Lambda && matches!(c, Call::Response | Call::Error) {
                        assert_eq!(id.as_deref(), Some("req-1"));
                    }
                }
            }
        }
        assert_eq!(
            Dialect::Scf.parse("GET", "/runtime/invocation/response"),
            None
        );
        assert_eq!(
            Dialect::Scf.parse("GET", "/runtime/invocation/next?x=1"),
            Some((Call::Next, None))
        );
        assert_eq!(
            Dialect::Lambda.parse("POST", "/2018-06-01/runtime/invocation//response"),
            None
        );
        assert_eq!(Dialect::Lambda.parse("POST", "/runtime/init/ready"), None);
    }

    #[test]
    fn metadata_round_trips_through_headers() {
        let m = InvocationMeta {
            request_id: "r".into(),
            memory_limit_in_mb: 128,
            time_limit_in_ms: 3000,
        };
        let who = LambdaIdentity {
            function_name: "f".into(),
            region: "ap-guangzhou".into(),
        };
        for d in [Dialect::Scf, Dialect::Lambda] {
            let hs = m.to_headers(d, 1_000_000, &who);
            let back = InvocationMeta::from_headers(
                d,
                |n| hs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str()),
                1_000_000,
                128,
            );
            assert_eq!(back, Ok(m.clone()), "{d:?}");
            assert!(InvocationMeta::from_headers(d, |_| None, 0, 128).is_err());
        }
    }

    #[test]
    fn lambda_errors_map_into_the_taxonomy() {
        let body = br#"{"errorMessage":"boom","errorType":"Exception","requestId":"r","stackTrace":["  File \"index.py\", line 2"]}"#;
        let e = lambda_error_to_function_error(body, Some("Unhandled"));
        assert_eq!(e.kind, crate::ErrorKind::UnhandledError);
        assert_eq!(e.message, crate::error::USER_CODE_EXCEPTION);
        assert_eq!(
            e.stack_trace,
            "Exception: boom\n  File \"index.py\", line 2"
        );
        let ours = crate::FunctionError::handler_not_found("x");
        let back = lambda_error_to_function_error(lambda_error_body(&ours).as_bytes(), None);
        assert_eq!(back, ours);
    }
}
