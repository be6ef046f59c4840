//! The invocation core: one instance's side of the runtime API as a state machine, with no I/O.
//!
//! Every host drives this one machine: `scf-shim`'s own loop ([`crate::run`], the native host and the Python
//! module) and the Node.js add-on's worker thread, through the blocking driver [`crate::Runtime`]. The core
//! has no sockets, threads or clocks: it consumes what happened and says what to send next.
//!
//! ```text
//!  loaded(result, init_function) ──▶ Request init/ready (SCF) │ next (Lambda: no ready call)
//!  answered(status, headers, body) ─▶ Step::Send(next)         after ready, or after a result was accepted
//!                                   ▶ Step::Invoke(invocation)  the host runs it, then:
//!                                   ▶ Step::Send(error)        a function that failed to load: the core answers
//!                                                               every invocation with the load error itself
//!  outcome(result) ─────────────────▶ Request response │ error  the 6 MB limit, SCF's or Lambda's error shape
//! ```
//!
//! The rules it owns, once for every language:
//! - ready: the one-space body and the `x-scf-init-runtime-us` / `x-scf-init-function-us` headers;
//! - the load-error replay: a function that failed to load still becomes ready, and each invocation is
//!   answered with that load error by the core, never reaching the host;
//! - the context: the answer to `next` (its headers) and the instance's configuration make the [`Context`];
//! - results: [`scf_protocol::error::settle`] (a result over 6 MB is a 407, the canonical `InvalidEvent`
//!   text), then SCF's canonical error body or Lambda's error body and `Lambda-Runtime-Function-Error-Type`;
//! - answers: anything but a 2xx from the platform is a [`ShimError::Protocol`], which ends the instance
//!   (the platform then replaces it), in every host alike.

use std::time::{Duration, Instant};

use bytes::Bytes;
use scf_protocol::api::{Call, Dialect, InvocationMeta, READY_BODY, headers, lambda_error_body};
use scf_protocol::{Context, FunctionError};

use crate::{Config, ShimError};

/// A request the instance must send to the platform: the call, and how the dialect writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Which call this is.
    pub call: Call,
    /// The HTTP method.
    pub method: &'static str,
    /// The path, with the endpoint's path prefix (if any).
    pub path: String,
    /// Headers besides the transport's own (`Host`, `Content-Length`).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Bytes,
}

/// One invocation the host must run.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Id of the invocation.
    pub request_id: String,
    /// The event, as the JSON text the platform sent (not validated: hosts parse it once, and report an
    /// `InvalidEvent` when it is not JSON; the core words the message).
    pub event: Bytes,
    /// The context handed to the handler.
    pub context: Context,
    /// When the execution timeout runs out.
    pub deadline: Instant,
}

/// What the driver does after an answer.
#[derive(Debug)]
pub enum Step {
    /// Send this request, then hand its answer to [`Core::answered`].
    Send(Request),
    /// Run this invocation in the host, then hand the outcome to [`Core::outcome`].
    Invoke(Invocation),
}

/// Where the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The function is loading: [`Core::loaded`] comes next.
    Loading,
    /// A request of this call was sent: its answer comes next.
    Awaiting(Call),
    /// The host runs the invocation in flight: [`Core::outcome`] comes next.
    Running,
    /// A protocol error ended the instance: nothing more is sent.
    Failed,
}

/// One instance's side of the runtime API (see the module documentation).
#[derive(Debug)]
pub struct Core {
    dialect: Dialect,
    /// Prepended to every path (`AWS_LAMBDA_RUNTIME_API=host:port/prefix`).
    path_prefix: String,
    /// The memory size for dialects that do not send it per invocation.
    memory_mb: u32,
    /// The per-instance fields of every context.
    template: Context,
    init_runtime: Duration,
    /// The error every invocation is answered with, when the function did not load.
    load_error: Option<FunctionError>,
    state: State,
    /// The invocation in flight (its id and event), from the answer to `next` until its result is accepted.
    in_flight: Option<(String, Bytes)>,
}

impl Core {
    /// The core of an instance configured by `config`; `init_runtime` is how long the language runtime took to
    /// start (the InitRuntime phase as the instance saw it).
    pub fn new(config: &Config, init_runtime: Duration) -> Core {
        let (environment, environ) = config.context_env.clone();
        Core {
            dialect: config.dialect,
            path_prefix: config.path_prefix.clone(),
            memory_mb: config.memory_mb,
            template: Context {
                environment,
                environ,
                function_version: config.function_version.clone(),
                function_name: config.function_name.clone(),
                namespace: config.namespace.clone(),
                tencentcloud_region: config.region.clone(),
                tencentcloud_appid: config.appid.clone(),
                tencentcloud_uin: config.uin.clone(),
                ..Context::default()
            },
            init_runtime,
            load_error: None,
            state: State::Loading,
            in_flight: None,
        }
    }

    /// The function loaded, or failed to (`result`), in `init_function`. Returns the first request: SCF's
    /// `init/ready`, or Lambda's first `next` (Lambda has no ready call: the first `next` says it). A load error
    /// is kept and answers every invocation from now on.
    pub fn loaded(
        &mut self,
        result: Result<(), FunctionError>,
        init_function: Duration,
    ) -> Result<Request, ShimError> {
        self.expect(State::Loading, "loaded")?;
        self.load_error = result.err();
        if self.dialect.route(&Call::InitReady, "").is_none() {
            return Ok(self.send(Call::Next, "", Vec::new(), Bytes::new()));
        }
        let hs = vec![
            (
                headers::INIT_RUNTIME_US,
                self.init_runtime.as_micros().to_string(),
            ),
            (
                headers::INIT_FUNCTION_US,
                init_function.as_micros().to_string(),
            ),
        ];
        Ok(self.send(Call::InitReady, "", hs, Bytes::from_static(READY_BODY)))
    }

    /// The platform answered the request last sent with `status`, the headers `header` looks up (by lower-case
    /// name) and `body`. `now` and `epoch_ms` (ms since the epoch) are when the answer arrived: they date the
    /// invocation's deadline.
    pub fn answered<'h>(
        &mut self,
        status: u16,
        header: impl Fn(&str) -> Option<&'h str>,
        body: Bytes,
        now: Instant,
        epoch_ms: u64,
    ) -> Result<Step, ShimError> {
        let State::Awaiting(call) = self.state else {
            return Err(self.fail(format!(
                "an answer arrived with no request outstanding (the core is {:?})",
                self.state
            )));
        };
        if !(200..300).contains(&status) {
            let (method, path) = self.route(&call, self.current_id());
            let text = String::from_utf8_lossy(&body);
            return Err(self.fail(format!("{method} {path} answered {status}: {text}")));
        }
        match call {
            Call::InitReady | Call::Response | Call::Error | Call::InitError => {
                self.in_flight = None;
                let (method, path) = self.route(&Call::Next, "");
                self.state = State::Awaiting(Call::Next);
                Ok(Step::Send(poll(method, path)))
            }
            Call::Next => {
                let meta = match InvocationMeta::from_headers(
                    self.dialect,
                    header,
                    epoch_ms,
                    self.memory_mb,
                ) {
                    Ok(meta) => meta,
                    Err(e) => return Err(self.fail(e)),
                };
                self.in_flight = Some((meta.request_id.clone(), body.clone()));
                if let Some(err) = self.load_error.clone() {
                    let request = self.post(Err(err));
                    return Ok(Step::Send(request));
                }
                self.state = State::Running;
                let mut context = self.template.clone();
                context.memory_limit_in_mb = meta.memory_limit_in_mb;
                context.time_limit_in_ms = meta.time_limit_in_ms;
                context.request_id.clone_from(&meta.request_id);
                Ok(Step::Invoke(Invocation {
                    deadline: now + Duration::from_millis(meta.time_limit_in_ms),
                    request_id: meta.request_id,
                    event: body,
                    context,
                }))
            }
        }
    }

    /// The host's outcome of the invocation it was given: the result's JSON text, or a classified error.
    /// Returns the request that posts it.
    pub fn outcome(
        &mut self,
        outcome: Result<Vec<u8>, FunctionError>,
    ) -> Result<Request, ShimError> {
        self.expect(State::Running, "an outcome")?;
        Ok(self.post(outcome))
    }

    /// The request that follows `request` once the platform accepts it, if the core already knows it: the next
    /// `next` after ready or a result (whose 2xx answer carries nothing the core needs). A driver may write it
    /// right behind `request` (HTTP/1.1 pipelining) and read both answers in order; the core still asks for it
    /// after that 2xx, and only then, so every rule stays here. `None` after `next`, whose answer decides.
    pub fn follow_up(&self, request: &Request) -> Option<Request> {
        match request.call {
            Call::InitReady | Call::Response | Call::Error | Call::InitError => {
                let (method, path) = self.route(&Call::Next, "");
                Some(poll(method, path))
            }
            Call::Next => None,
        }
    }

    /// Whether an invocation is in flight and waits for the host's outcome.
    pub fn is_running(&self) -> bool {
        self.state == State::Running
    }

    /// The id of the invocation in flight, if any.
    pub fn in_flight(&self) -> Option<&str> {
        self.in_flight.as_ref().map(|(id, _)| id.as_str())
    }

    /// The request posting `outcome` for the invocation in flight (after [`scf_protocol::error::settle`]).
    fn post(&mut self, outcome: Result<Vec<u8>, FunctionError>) -> Request {
        let (id, event) = self.in_flight.clone().unwrap_or_default();
        match scf_protocol::error::settle(&event, outcome) {
            Ok(body) => self.send(Call::Response, &id, Vec::new(), Bytes::from(body)),
            Err(err) => match self.dialect {
                Dialect::Scf => {
                    let body = err.to_body(&id);
                    self.send(Call::Error, &id, Vec::new(), Bytes::from(body))
                }
                Dialect::Lambda => {
                    let hs = vec![(headers::LAMBDA_ERROR_TYPE, err.kind.name().to_owned())];
                    let body = lambda_error_body(&err);
                    self.send(Call::Error, &id, hs, Bytes::from(body))
                }
            },
        }
    }

    fn send(
        &mut self,
        call: Call,
        request_id: &str,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
    ) -> Request {
        let (method, path) = self.route(&call, request_id);
        self.state = State::Awaiting(call);
        Request {
            call,
            method,
            path,
            headers,
            body,
        }
    }

    /// The method and full path of `call`. Every call the core sends exists in its dialect (ready only in SCF,
    /// and only when the dialect has it).
    fn route(&self, call: &Call, request_id: &str) -> (&'static str, String) {
        let (method, path) = self
            .dialect
            .route(call, request_id)
            .unwrap_or(("POST", String::from("/")));
        (method, format!("{}{path}", self.path_prefix))
    }

    fn current_id(&self) -> &str {
        self.in_flight.as_ref().map_or("", |(id, _)| id.as_str())
    }

    fn expect(&mut self, state: State, what: &str) -> Result<(), ShimError> {
        if self.state == state {
            return Ok(());
        }
        Err(self.fail(format!(
            "{what} came while the core was {:?}, not {state:?}",
            self.state
        )))
    }

    fn fail(&mut self, message: String) -> ShimError {
        self.state = State::Failed;
        ShimError::Protocol(message)
    }
}

/// A `next` request.
fn poll(method: &'static str, path: String) -> Request {
    Request {
        call: Call::Next,
        method,
        path,
        headers: Vec::new(),
        body: Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scf_protocol::ErrorKind;
    use scf_protocol::error::{RESPONSE_TOO_LARGE_MESSAGE, USER_CODE_EXCEPTION};
    use std::collections::HashMap;

    fn config(dialect: Dialect, prefix: &str) -> Config {
        let mut vars: HashMap<&str, &str> = HashMap::from([
            ("_HANDLER", "index.main"),
            ("USER_CODE_ROOT", "/code"),
            ("SCF_FUNCTIONNAME", "f"),
            ("SCF_NAMESPACE", "ns"),
            ("TENCENTCLOUD_REGION", "ap-guangzhou"),
            ("TENCENTCLOUD_APPID", "125"),
            ("TENCENTCLOUD_UIN", "100"),
            ("SCF_FUNCTION_ENV_KEYS", "A"),
            ("A", "1"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
        ]);
        let lambda = format!("127.0.0.1:9000{prefix}");
        match dialect {
            Dialect::Scf => vars.insert("SCF_RUNTIME_API", "unix:/api.sock"),
            Dialect::Lambda => vars.insert("AWS_LAMBDA_RUNTIME_API", lambda.as_str()),
        };
        let c = Config::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned())).expect("config");
        assert_eq!(c.dialect, dialect);
        c
    }

    /// The headers of an answer to `next` for the invocation `id` in `dialect`.
    fn next_headers(dialect: Dialect, id: &str, epoch_ms: u64) -> Vec<(&'static str, String)> {
        let meta = InvocationMeta {
            request_id: id.into(),
            memory_limit_in_mb: 256,
            time_limit_in_ms: 3000,
        };
        meta.to_headers(dialect, epoch_ms, &Default::default())
    }

    const EPOCH: u64 = 1_700_000_000_000;

    fn answer(
        core: &mut Core,
        status: u16,
        hs: &[(&'static str, String)],
        body: &str,
        now: Instant,
    ) -> Result<Step, ShimError> {
        core.answered(
            status,
            |n| hs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str()),
            Bytes::copy_from_slice(body.as_bytes()),
            now,
            EPOCH,
        )
    }

    fn sent(step: Result<Step, ShimError>) -> Request {
        match step {
            Ok(Step::Send(r)) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    fn invoked(step: Result<Step, ShimError>) -> Invocation {
        match step {
            Ok(Step::Invoke(i)) => i,
            other => panic!("expected an invocation, got {other:?}"),
        }
    }

    /// Answers the pending `next` of `core` with the invocation `id` of `event`, which the host must run.
    fn start(core: &mut Core, dialect: Dialect, id: &str, event: &str) -> Invocation {
        invoked(answer(
            core,
            200,
            &next_headers(dialect, id, EPOCH),
            event,
            Instant::now(),
        ))
    }

    /// A core of `dialect` that is ready and has asked for the next invocation.
    fn polling(dialect: Dialect, load: Result<(), FunctionError>) -> Core {
        let mut core = Core::new(&config(dialect, ""), Duration::from_micros(1500));
        let first = core
            .loaded(load, Duration::from_micros(250))
            .expect("loaded");
        if dialect == Dialect::Scf {
            assert_eq!(first.call, Call::InitReady);
            let next = sent(answer(&mut core, 200, &[], "", Instant::now()));
            assert_eq!(next.call, Call::Next);
        } else {
            assert_eq!(first.call, Call::Next);
        }
        core
    }

    #[test]
    fn ready_has_the_one_space_body_and_the_init_split() {
        let mut core = Core::new(&config(Dialect::Scf, ""), Duration::from_micros(1500));
        let r = core
            .loaded(Ok(()), Duration::from_micros(250))
            .expect("loaded");
        assert_eq!(
            (r.method, r.path.as_str(), &r.body[..]),
            ("POST", "/runtime/init/ready", &b" "[..])
        );
        assert_eq!(
            r.headers,
            vec![
                ("x-scf-init-runtime-us", "1500".to_owned()),
                ("x-scf-init-function-us", "250".to_owned()),
            ]
        );
        let next = sent(answer(&mut core, 200, &[], "", Instant::now()));
        assert_eq!(
            (next.method, next.path.as_str(), next.body.len()),
            ("GET", "/runtime/invocation/next", 0)
        );
    }

    #[test]
    fn lambda_has_no_ready_call_the_first_next_says_it() {
        let mut core = Core::new(&config(Dialect::Lambda, ""), Duration::ZERO);
        let r = core.loaded(Ok(()), Duration::ZERO).expect("loaded");
        assert_eq!(
            (r.call, r.method, r.path.as_str()),
            (Call::Next, "GET", "/2018-06-01/runtime/invocation/next")
        );
    }

    #[test]
    fn the_context_is_built_from_the_headers_and_the_configuration() {
        for dialect in [Dialect::Scf, Dialect::Lambda] {
            let mut core = polling(dialect, Ok(()));
            let now = Instant::now();
            let inv = invoked(answer(
                &mut core,
                200,
                &next_headers(dialect, "req-1", EPOCH),
                r#"{"a":1}"#,
                now,
            ));
            assert_eq!(inv.request_id, "req-1");
            assert_eq!(&inv.event[..], br#"{"a":1}"#);
            let c = &inv.context;
            assert_eq!(c.request_id, "req-1");
            // Lambda sends no memory size per invocation: the configuration's is used.
            let memory = if dialect == Dialect::Scf { 256 } else { 512 };
            assert_eq!(c.memory_limit_in_mb, memory, "{dialect:?}");
            assert_eq!(c.time_limit_in_ms, 3000, "{dialect:?}");
            assert_eq!(inv.deadline, now + Duration::from_millis(3000));
            assert_eq!(
                (c.function_name.as_str(), c.namespace.as_str()),
                ("f", "ns")
            );
            assert_eq!(c.function_version, "$LATEST");
            assert_eq!(
                (
                    c.tencentcloud_region.as_str(),
                    c.tencentcloud_appid.as_str(),
                    c.tencentcloud_uin.as_str()
                ),
                ("ap-guangzhou", "125", "100")
            );
            assert!(c.environment.contains(r#""A":"1""#), "{}", c.environment);
            assert!(c.environ.split(';').any(|kv| kv == "A=1"), "{}", c.environ);
            assert!(core.is_running());
            assert_eq!(core.in_flight(), Some("req-1"));
        }
    }

    #[test]
    fn results_are_posted_in_each_dialect_and_the_next_poll_follows() {
        for (dialect, path, status) in [
            (Dialect::Scf, "/runtime/invocation/response", 200),
            (
                Dialect::Lambda,
                "/2018-06-01/runtime/invocation/req-1/response",
                202,
            ),
        ] {
            let mut core = polling(dialect, Ok(()));
            start(&mut core, dialect, "req-1", "{}");
            let post = core.outcome(Ok(b"\"hi\"".to_vec())).expect("outcome");
            assert_eq!(
                (post.call, post.method, post.path.as_str(), &post.body[..]),
                (Call::Response, "POST", path, &b"\"hi\""[..])
            );
            let next = sent(answer(&mut core, status, &[], "", Instant::now()));
            assert_eq!(next.call, Call::Next);
            assert_eq!(core.in_flight(), None);
        }
    }

    #[test]
    fn errors_have_scf_s_canonical_body_or_lambda_s_shape_and_header() {
        let err = FunctionError::user(ErrorKind::UnhandledError, "Error: <boom>");
        let mut core = polling(Dialect::Scf, Ok(()));
        start(&mut core, Dialect::Scf, "req-1", "{}");
        let post = core.outcome(Err(err.clone())).expect("outcome");
        assert_eq!(
            (post.path.as_str(), post.body.clone()),
            (
                "/runtime/invocation/error",
                Bytes::from(err.to_body("req-1"))
            )
        );
        assert!(post.headers.is_empty());

        let mut core = polling(Dialect::Lambda, Ok(()));
        start(&mut core, Dialect::Lambda, "req-2", "{}");
        let post = core.outcome(Err(err.clone())).expect("outcome");
        assert_eq!(post.path, "/2018-06-01/runtime/invocation/req-2/error");
        assert_eq!(
            post.headers,
            vec![(
                "lambda-runtime-function-error-type",
                "UnhandledError".to_owned()
            )]
        );
        let v: serde_json::Value = serde_json::from_slice(&post.body).expect("json");
        assert_eq!(v["errorType"], "UnhandledError");
        assert_eq!(v["errorMessage"], USER_CODE_EXCEPTION);
        assert_eq!(v["stackTrace"], serde_json::json!(["Error: <boom>"]));
    }

    #[test]
    fn the_follow_up_of_a_result_or_ready_is_the_next_the_core_then_asks_for() {
        for dialect in [Dialect::Scf, Dialect::Lambda] {
            let mut core = Core::new(&config(dialect, "/p"), Duration::ZERO);
            let first = core.loaded(Ok(()), Duration::ZERO).expect("loaded");
            let predicted = core.follow_up(&first);
            if dialect == Dialect::Scf {
                let asked = sent(answer(&mut core, 200, &[], "", Instant::now()));
                assert_eq!(predicted, Some(asked));
            } else {
                assert_eq!(predicted, None, "the first Lambda request is next itself");
            }
            for outcome in [
                Ok(b"1".to_vec()),
                Err(FunctionError::user(ErrorKind::UnhandledError, "x")),
            ] {
                start(&mut core, dialect, "req", "{}");
                let post = core.outcome(outcome).expect("outcome");
                let predicted = core.follow_up(&post).expect("a next follows a result");
                let asked = sent(answer(
                    &mut core,
                    dialect.accepted_status(),
                    &[],
                    "",
                    Instant::now(),
                ));
                assert_eq!(predicted, asked, "{dialect:?}");
                assert_eq!(core.follow_up(&asked), None);
            }
        }
    }

    #[test]
    fn a_result_over_6_mb_is_posted_as_407() {
        let mut core = polling(Dialect::Scf, Ok(()));
        start(&mut core, Dialect::Scf, "r", "{}");
        let big = vec![b'x'; scf_protocol::MAX_RESPONSE_BYTES + 1];
        let post = core.outcome(Ok(big)).expect("outcome");
        assert_eq!(post.call, Call::Error);
        let (e, id) = FunctionError::from_body(&post.body).expect("an error body");
        assert_eq!(
            (e.kind, e.message.as_str(), id.as_str()),
            (ErrorKind::ResponseTooLarge, RESPONSE_TOO_LARGE_MESSAGE, "r")
        );
    }

    #[test]
    fn an_invalid_event_gets_the_canonical_text_whatever_the_host_said() {
        let mut core = polling(Dialect::Scf, Ok(()));
        start(&mut core, Dialect::Scf, "r", "{not json");
        let post = core
            .outcome(Err(FunctionError::new(
                ErrorKind::InvalidEvent,
                "Unexpected token n in JSON at position 1",
                "",
            )))
            .expect("outcome");
        let (e, _) = FunctionError::from_body(&post.body).expect("an error body");
        assert_eq!(
            e.message,
            "Invalid event: not a JSON document (key must be a string at line 1 column 2)"
        );
    }

    #[test]
    fn a_load_error_is_replayed_by_the_core_for_every_invocation() {
        let load = FunctionError::handler_not_found("main");
        for dialect in [Dialect::Scf, Dialect::Lambda] {
            let mut core = polling(dialect, Err(load.clone()));
            for id in ["req-1", "req-2", "req-3"] {
                // The answer to next is answered at once with the load error: no Step::Invoke, ever.
                let post = sent(answer(
                    &mut core,
                    200,
                    &next_headers(dialect, id, EPOCH),
                    "{}",
                    Instant::now(),
                ));
                assert_eq!(post.call, Call::Error, "{dialect:?}");
                assert!(post.path.contains("/error"), "{}", post.path);
                if dialect == Dialect::Scf {
                    assert_eq!(post.body, Bytes::from(load.to_body(id)));
                } else {
                    assert!(post.path.contains(id), "{}", post.path);
                }
                assert!(!core.is_running());
                let next = sent(answer(
                    &mut core,
                    dialect.accepted_status(),
                    &[],
                    "",
                    Instant::now(),
                ));
                assert_eq!(next.call, Call::Next);
            }
        }
    }

    #[test]
    fn an_answer_that_is_not_2xx_is_a_protocol_error_and_ends_the_instance() {
        let mut core = polling(Dialect::Scf, Ok(()));
        let e =
            answer(&mut core, 500, &[], "platform fault", Instant::now()).expect_err("500 on next");
        assert!(
            matches!(&e, ShimError::Protocol(m) if m.contains("GET /runtime/invocation/next answered 500: platform fault")),
            "{e}"
        );
        // Nothing more is accepted after that.
        assert!(matches!(
            answer(&mut core, 200, &[], "", Instant::now()),
            Err(ShimError::Protocol(_))
        ));

        let mut core = polling(Dialect::Scf, Ok(()));
        start(&mut core, Dialect::Scf, "r", "{}");
        core.outcome(Ok(b"1".to_vec())).expect("outcome");
        let e = answer(&mut core, 400, &[], "already answered", Instant::now())
            .expect_err("400 on a result");
        assert!(
            e.to_string()
                .contains("POST /runtime/invocation/response answered 400"),
            "{e}"
        );
    }

    #[test]
    fn an_answer_to_next_without_the_invocation_headers_is_a_protocol_error() {
        for dialect in [Dialect::Scf, Dialect::Lambda] {
            let mut core = polling(dialect, Ok(()));
            let e = answer(&mut core, 200, &[], "{}", Instant::now()).expect_err("no headers");
            assert!(
                matches!(&e, ShimError::Protocol(m) if m.contains("header")),
                "{e}"
            );
        }
    }

    #[test]
    fn calls_out_of_order_are_refused() {
        let mut core = Core::new(&config(Dialect::Scf, ""), Duration::ZERO);
        assert!(
            core.outcome(Ok(Vec::new())).is_err(),
            "an outcome before load"
        );
        let mut core = Core::new(&config(Dialect::Scf, ""), Duration::ZERO);
        assert!(matches!(
            answer(&mut core, 200, &[], "", Instant::now()),
            Err(ShimError::Protocol(_))
        ));
        let mut core = polling(Dialect::Scf, Ok(()));
        assert!(core.loaded(Ok(()), Duration::ZERO).is_err(), "loaded twice");
        let mut core = polling(Dialect::Scf, Ok(()));
        assert!(
            core.outcome(Ok(Vec::new())).is_err(),
            "an outcome while polling"
        );
    }

    #[test]
    fn a_path_prefix_is_kept_on_every_call() {
        let mut core = Core::new(&config(Dialect::Lambda, "/.rt"), Duration::ZERO);
        let next = core.loaded(Ok(()), Duration::ZERO).expect("loaded");
        assert_eq!(next.path, "/.rt/2018-06-01/runtime/invocation/next");
        start(&mut core, Dialect::Lambda, "id-9", "{}");
        let post = core.outcome(Ok(b"1".to_vec())).expect("outcome");
        assert_eq!(
            post.path,
            "/.rt/2018-06-01/runtime/invocation/id-9/response"
        );
    }
}
