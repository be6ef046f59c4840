//! `scf-sdk-node`: the shim core as a Node.js add-on (`index.node`), loaded by the Node SDK's `bootstrap.js`.
//!
//! Two halves:
//! - **The instance.** A worker thread owns a [`scf_shim::Runtime`], the blocking driver of the invocation
//!   core ([`scf_shim::core`]): the same machine `scf-shim`'s own loop and the Python module drive
//!   (`src/worker.rs`). What may block (connecting, the ready, a large answer, a reconnect) is a command sent to
//!   that thread and answered through a neon `Channel` (a Promise settled, or a `next`'s listener called). The
//!   warm path does not go there: between invocations JavaScript's thread writes the outcome and the next
//!   `next` itself, waits for the platform's answers on libuv's loop, reads the whole ones itself and calls the
//!   listener with the invocation right there (`src/poll.rs`): no promise, no array. While a call is
//!   pending, its channel or the poll handle keeps Node's event loop alive; between calls (while a handler
//!   runs) the add-on keeps nothing alive, which is what lets the bootstrap notice that the event loop has
//!   drained (`callbackWaitsForEmptyEventLoop`). The runtime's work runs under `catch_unwind` on either thread:
//!   a panic answers the pending call with an `InternalError` (500), which the core first posts for the
//!   invocation in flight.
//! - **The taxonomy.** What JavaScript needs of the rules, from the one Rust copy: kind names → status codes,
//!   the canonical errors, the caller-visible body, the outcome rule (the 6 MB limit, the `InvalidEvent`
//!   text) and handler parsing ([`scf_shim::HandlerName::parse_module_path`]).
//!
//! Events and results cross as JSON **text**: `JSON.parse`/`JSON.stringify` happen in V8.
//!
//! JavaScript API (documented in `docs/node.md`). An error crosses as `(kind, message, stack)`; an outcome as
//! `'respond', body` or `'fail', kind, message, stack`; a classified error comes back as
//! `{kind, message, stackTrace, statusCode}`.
//! - `open() → handle`: starts reading the configuration and connecting (the end of InitRuntime) on the worker,
//!   and returns at once, so that JavaScript loads the rest of the bootstrap meanwhile;
//! - `config(handle) → {handler, runtime, codeRoot}`: waits for the start; throws its failure;
//! - `ready(handle, initFunctionMs[, kind, message, stack]) → Promise<void>`: the function loaded (or failed
//!   to, with that error: the core then answers every invocation with it, and `next` never resolves);
//! - `listen(handle, onInvocation, onEnd)`, once, before the first `next`: the two functions every `next`
//!   answers by calling one of them (kept for the process): `onInvocation(requestId, eventText | null,
//!   remainingMs, memoryLimitInMb, timeLimitInMs[, sharedJson])` (`null`: not UTF-8; `sharedJson`: the
//!   context's per-instance fields, as the JSON of a context whose three per-invocation fields are empty, with
//!   the first invocation and whenever they change, else not passed), or `onEnd(error)` when there is no next
//!   invocation (`error.code` as for `post`);
//! - `next(handle[, outcome…]) → undefined`: posts the previous invocation's outcome first, then waits for the
//!   next invocation, which calls the listener, so the JS thread is woken once per invocation; a small outcome
//!   is written by JavaScript's thread itself, with the `next` behind it, while the worker is idle, and the
//!   answers are waited for on the event loop, so neither way waits for the worker to wake;
//! - `post(handle, outcome…) → Promise<void>`: posts an outcome and waits only for it to be accepted;
//!   rejections carry `code`: `SCF_DISCONNECTED` (the platform went away), `SCF_RUNTIME_API` (it broke the
//!   protocol), `SCF_INTERNAL` (the worker panicked; `kind` `InternalError`, `statusCode` 500);
//! - `KINDS` (`{errorType: statusCode}`), `MAX_RESPONSE_BYTES`;
//! - `errorBody(kind, message, stack, requestId) → string`: the caller-visible body;
//! - `settle(requestId, eventText, outcome…) → {ok, statusCode, body, …}`: what the caller of production gets for
//!   that outcome (for the local `invoke()`);
//! - `parseHandler(handler) → {module, path}` (throws a `MalformedHandler` error);
//! - `checkHandlerFile(handler, codeRoot, file)` (throws `MalformedHandler` for a file outside the root);
//! - `handlerNotFound(name)`, `handlerNotCallable(name, module, what)`, `moduleNotFound(name)`,
//!   `marshalError(detail)`, `userError(kind, trace)`,
//!   `timeout(seconds)`, `invalidEvent(eventText)`: the canonical errors;
//! - `encodeEnvironment([[key, value], …]) → [environment, environ]`: the context's environment views.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use neon::prelude::*;
use scf_shim::protocol::error::settle as settle_outcome;
use scf_shim::protocol::{ErrorKind, FunctionError, MAX_RESPONSE_BYTES};
use scf_shim::{HandlerName, Outcome};

mod event;
mod kept;
mod poll;
mod text;
mod worker;

use poll::{EventLoop, Poller};
use worker::{Answer, Call, Command, Listener, Now, Opened, PANIC_ON_NEXT_POST, Worker, hand_over};

/// The JavaScript-side handle: the way to the worker thread, and the instance's configuration.
struct Instance {
    calls: mpsc::Sender<Call>,
    /// The worker's start (configuration read, connected), until it is first needed.
    opening: Mutex<Option<mpsc::Receiver<Opened>>>,
    /// The worker's start once it ended: the instance, or why it could not start.
    started: std::sync::OnceLock<Result<Started, String>>,
    /// The JS thread's event loop, when the process has the libuv functions the poller needs.
    event_loop: Option<EventLoop>,
    /// The functions `next`'s answers call (`listen`).
    listener: std::sync::OnceLock<&'static Listener>,
}

/// A started worker.
struct Started {
    /// The worker's state, which JavaScript's thread borrows to write a result itself (see [`next`]).
    worker: Arc<Mutex<Worker>>,
    /// The JS thread's wait for the platform's answers (`None`: the worker waits, as it does for a large one).
    poller: Option<&'static Poller>,
    handler: String,
    runtime: String,
    code_root: String,
}

impl Finalize for Instance {}

impl Instance {
    /// The started worker, waiting for its start the first time (`open` does not wait: JavaScript loads the
    /// rest of the bootstrap meanwhile), or the start's error.
    fn started(&self) -> Result<&Started, &str> {
        self.started
            .get_or_init(|| {
                let opening = self
                    .opening
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                match opening.map(|rx| rx.recv()) {
                    Some(Ok(Ok((config, worker)))) => Ok(Started {
                        poller: self
                            .event_loop
                            .clone()
                            .and_then(|lp| Poller::new(lp, worker.clone(), self.calls.clone())),
                        worker,
                        handler: config.handler,
                        runtime: config.runtime,
                        code_root: config.code_root.to_string_lossy().into_owned(),
                    }),
                    Some(Ok(Err(message))) => Err(format!("scf-sdk: {message}")),
                    _ => Err("scf-sdk: the runtime API thread ended during start-up".to_owned()),
                }
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

/// The error kind named `kind`, or InternalError for a name the core does not know.
fn kind_of(kind: &str) -> ErrorKind {
    ErrorKind::from_name(kind).unwrap_or(ErrorKind::InternalError)
}

/// An error given as `(kind, message, stack)` from argument `from` on.
fn error_args(cx: &mut FunctionContext, from: usize) -> NeonResult<FunctionError> {
    let kind = cx.argument::<JsString>(from)?.value(cx);
    let message = cx.argument::<JsString>(from + 1)?.value(cx);
    let stack = cx.argument::<JsString>(from + 2)?.value(cx);
    Ok(FunctionError::new(kind_of(&kind), message, stack))
}

/// An optional outcome from argument `from` on: `'respond', body` or `'fail', kind, message, stack`.
fn outcome_args(cx: &mut FunctionContext, from: usize) -> NeonResult<Option<Outcome>> {
    let Some(what) = cx.argument_opt(from) else {
        return Ok(None);
    };
    if what.is_a::<JsUndefined, _>(cx) || what.is_a::<JsNull, _>(cx) {
        return Ok(None);
    }
    let what = what.downcast_or_throw::<JsString, _>(cx)?.value(cx);
    match what.as_str() {
        "respond" => {
            let body = cx.argument::<JsString>(from + 1)?;
            Ok(Some(event::result_bytes(cx, body)?))
        }
        "fail" => Ok(Some(Err(error_args(cx, from + 1)?))),
        other => cx.throw_error(format!(
            "scf-sdk: unknown outcome '{other}' (expected 'respond' or 'fail')"
        )),
    }
}

/// `open()`: starts the worker, which reads the configuration and connects to the runtime API; returns at once
/// (the first call that needs the worker waits for its start, and throws its error).
fn open(mut cx: FunctionContext) -> JsResult<JsBox<Instance>> {
    let (calls, opened) = match worker::start() {
        Ok(started) => started,
        Err(e) => {
            return cx.throw_error(format!("scf-sdk: cannot start the runtime API thread: {e}"));
        }
    };
    let event_loop = poll::event_loop(&mut cx);
    Ok(cx.boxed(Instance {
        calls,
        opening: Mutex::new(Some(opened)),
        started: std::sync::OnceLock::new(),
        event_loop,
        listener: std::sync::OnceLock::new(),
    }))
}

/// `config(handle)`: the handler string, runtime name and code root.
fn config(mut cx: FunctionContext) -> JsResult<JsObject> {
    let handle = cx.argument::<JsBox<Instance>>(0)?;
    let started = match handle.started() {
        Ok(s) => s,
        Err(message) => return cx.throw_error(message),
    };
    let out = cx.empty_object();
    let v = cx.string(&started.handler);
    out.set(&mut cx, "handler", v)?;
    let v = cx.string(&started.runtime);
    out.set(&mut cx, "runtime", v)?;
    let v = cx.string(&started.code_root);
    out.set(&mut cx, "codeRoot", v)?;
    Ok(out)
}

/// Sends `command` to the worker, its reply to go to `answer`.
fn send_call(
    cx: &mut FunctionContext,
    handle: &Instance,
    command: Command,
    answer: Answer,
) -> NeonResult<()> {
    let channel = cx.channel();
    if handle
        .calls
        .send(Call {
            command,
            answer,
            channel,
        })
        .is_err()
    {
        // The worker is gone: the answer went with it, so answer anew.
        return cx.throw_error("scf-sdk: the runtime API thread has ended");
    }
    Ok(())
}

/// Sends `command` to the worker; the returned promise settles with its reply.
fn submit(mut cx: FunctionContext, command: Command) -> JsResult<JsPromise> {
    let handle = cx.argument::<JsBox<Instance>>(0)?;
    if let Err(message) = handle.started() {
        return cx.throw_error(message);
    }
    let (deferred, promise) = cx.promise();
    send_call(&mut cx, &handle, command, Answer::Promise(deferred))?;
    Ok(promise)
}

/// `listen(handle, onInvocation, onEnd)`: the functions `next`'s answers call, kept for the process (once).
fn listen(mut cx: FunctionContext) -> JsResult<JsUndefined> {
    let handle = cx.argument::<JsBox<Instance>>(0)?;
    let on_invocation = cx.argument::<JsFunction>(1)?.root(&mut cx);
    let on_end = cx.argument::<JsFunction>(2)?.root(&mut cx);
    let mut kept = false;
    handle.listener.get_or_init(|| {
        kept = true;
        Listener::leaked(on_invocation, on_end)
    });
    if !kept {
        return cx.throw_error("scf-sdk: listen was called twice (the instance has its listener)");
    }
    Ok(cx.undefined())
}

/// `ready(handle, initFunctionMs[, kind, message, stack])`.
fn ready(mut cx: FunctionContext) -> JsResult<JsPromise> {
    let ms = cx.argument::<JsNumber>(1)?.value(&mut cx);
    let init_function = Duration::from_secs_f64(if ms.is_finite() && ms > 0.0 {
        ms / 1000.0
    } else {
        0.0
    });
    let loaded = match cx.argument_opt(2) {
        Some(v) if v.is_a::<JsString, _>(&mut cx) => Err(error_args(&mut cx, 2)?),
        _ => Ok(()),
    };
    submit(
        cx,
        Command::Ready {
            init_function,
            loaded,
        },
    )
}

/// `next(handle[, outcome…])`: the answer calls the listener (`listen`). When the worker is idle (it is, between
/// invocations: it holds its state only while it runs a call), this thread writes the outcome and the `next`
/// behind it itself, so the platform has it without waiting for the worker to wake, and then waits for the
/// answers on the event loop ([`poll::Poller`]), so that they wake this thread directly; what needs a blocking
/// read goes to the worker. When the worker is busy, it posts the outcome and waits itself.
fn next(mut cx: FunctionContext) -> JsResult<JsUndefined> {
    let outcome = outcome_args(&mut cx, 1)?;
    let handle = cx.argument::<JsBox<Instance>>(0)?;
    let Some(&listener) = handle.listener.get() else {
        return cx
            .throw_error("scf-sdk: next before listen (nothing would receive the invocation)");
    };
    let started = match handle.started() {
        Ok(started) => started,
        Err(message) => return cx.throw_error(message),
    };
    let Ok(mut worker) = started.worker.try_lock() else {
        send_call(
            &mut cx,
            &handle,
            Command::Next(outcome),
            Answer::Listener(listener),
        )?;
        return Ok(cx.undefined());
    };
    if let Some(outcome) = outcome {
        worker.send_outcome(outcome);
    }
    let now = match started.poller {
        // What arrived with the last answers, if anything: the socket is waited on next.
        Some(_) => worker.next_now(false),
        None => Now::Blocking,
    };
    // No channel on the way that waits on the loop: the poll handle keeps the loop alive, and a referenced
    // channel costs a wake-up of the loop when it is dropped. An answer already here is given through a channel,
    // not called from inside this call (the listener would run inside its own caller's `next`).
    match (now, started.poller, worker.socket()) {
        (Now::Reply(reply), _, _) => {
            Answer::Listener(listener).send(&cx.channel(), reply);
            return Ok(cx.undefined());
        }
        (Now::Wait, Some(poller), Some(fd)) if poller.wait(fd, worker.served(), listener) => {
            return Ok(cx.undefined());
        }
        _ => {}
    }
    drop(worker);
    hand_over(
        &handle.calls,
        Call {
            command: Command::Next(None),
            answer: Answer::Listener(listener),
            channel: cx.channel(),
        },
    );
    Ok(cx.undefined())
}

/// `post(handle, outcome…)`.
fn post(mut cx: FunctionContext) -> JsResult<JsPromise> {
    let Some(outcome) = outcome_args(&mut cx, 1)? else {
        return cx.throw_error("scf-sdk: post needs an outcome ('respond', body or 'fail', …)");
    };
    submit(cx, Command::Post(outcome))
}

/// `{kind, message, stackTrace, statusCode}` for `e`.
fn error_object<'a>(cx: &mut impl Context<'a>, e: &FunctionError) -> JsResult<'a, JsObject> {
    let out = cx.empty_object();
    let v = cx.string(e.kind.name());
    out.set(cx, "kind", v)?;
    let v = cx.string(&e.message);
    out.set(cx, "message", v)?;
    let v = cx.string(&e.stack_trace);
    out.set(cx, "stackTrace", v)?;
    let v = cx.number(e.kind.status_code());
    out.set(cx, "statusCode", v)?;
    Ok(out)
}

/// `errorBody(kind, message, stack, requestId)`: the canonical caller-visible body.
fn error_body(mut cx: FunctionContext) -> JsResult<JsString> {
    let err = error_args(&mut cx, 0)?;
    let request_id = cx.argument::<JsString>(3)?.value(&mut cx);
    Ok(cx.string(err.to_body(&request_id)))
}

/// `settle(requestId, eventText, outcome…)`: what the caller gets for this outcome of an invocation of
/// `eventText`, by the rule production applies: `{ok: true, statusCode: 200, body}` or `{ok: false, statusCode,
/// body, kind, message, stackTrace}`.
fn settle(mut cx: FunctionContext) -> JsResult<JsObject> {
    let request_id = cx.argument::<JsString>(0)?.value(&mut cx);
    let event = cx.argument::<JsString>(1)?.value(&mut cx);
    let Some(outcome) = outcome_args(&mut cx, 2)? else {
        return cx.throw_error("scf-sdk: settle needs an outcome ('respond', body or 'fail', …)");
    };
    match settle_outcome(event.as_bytes(), outcome) {
        Ok(body) => {
            let out = cx.empty_object();
            let v = cx.boolean(true);
            out.set(&mut cx, "ok", v)?;
            let v = cx.number(200);
            out.set(&mut cx, "statusCode", v)?;
            let v = cx.string(String::from_utf8_lossy(&body));
            out.set(&mut cx, "body", v)?;
            Ok(out)
        }
        Err(e) => {
            let out = error_object(&mut cx, &e)?;
            let v = cx.boolean(false);
            out.set(&mut cx, "ok", v)?;
            let v = cx.string(e.to_body(&request_id));
            out.set(&mut cx, "body", v)?;
            Ok(out)
        }
    }
}

/// Throws `e` as a JavaScript `Error` carrying `kind`, `stackTrace` and `statusCode`.
fn throw_function_error<'a, T: Value>(
    cx: &mut FunctionContext<'a>,
    e: &FunctionError,
) -> JsResult<'a, T> {
    let err = cx.error(&e.message)?;
    let v = cx.string(e.kind.name());
    err.set(cx, "kind", v)?;
    let v = cx.string(&e.stack_trace);
    err.set(cx, "stackTrace", v)?;
    let v = cx.number(e.kind.status_code());
    err.set(cx, "statusCode", v)?;
    cx.throw(err)
}

/// `parseHandler(handler)`: `{module, path}` (split at the first dot), or throws the `MalformedHandler` error.
fn parse_handler(mut cx: FunctionContext) -> JsResult<JsObject> {
    let handler = cx.argument::<JsString>(0)?.value(&mut cx);
    let name = match HandlerName::parse_module_path(&handler) {
        Ok(name) => name,
        Err(e) => return throw_function_error(&mut cx, &e),
    };
    let out = cx.empty_object();
    let v = cx.string(&name.file);
    out.set(&mut cx, "module", v)?;
    let path = cx.empty_array();
    for (i, segment) in name.method_path().enumerate() {
        let v = cx.string(segment);
        path.set(&mut cx, u32::try_from(i).unwrap_or(u32::MAX), v)?;
    }
    out.set(&mut cx, "path", path)?;
    Ok(out)
}

/// `checkHandlerFile(handler, codeRoot, file)`: throws the `MalformedHandler` error when the handler's own
/// file resolves outside the code root (the core's one rule, `scf_protocol::check_handler_file`).
fn check_handler_file(mut cx: FunctionContext) -> JsResult<JsUndefined> {
    let handler = cx.argument::<JsString>(0)?.value(&mut cx);
    let root = cx.argument::<JsString>(1)?.value(&mut cx);
    let file = cx.argument::<JsString>(2)?.value(&mut cx);
    match scf_shim::protocol::check_handler_file(
        &handler,
        std::path::Path::new(&root),
        std::path::Path::new(&file),
    ) {
        Ok(()) => Ok(cx.undefined()),
        Err(e) => throw_function_error(&mut cx, &e),
    }
}

/// Exports `name(arg: string)` returning the error `make(arg)` as an object.
macro_rules! canonical {
    ($fn_name:ident, $make:expr) => {
        fn $fn_name(mut cx: FunctionContext) -> JsResult<JsObject> {
            let arg = cx.argument::<JsString>(0)?.value(&mut cx);
            let make: fn(&str) -> FunctionError = $make;
            error_object(&mut cx, &make(&arg))
        }
    };
}

canonical!(handler_not_found, FunctionError::handler_not_found);
canonical!(module_not_found, FunctionError::module_not_found);
canonical!(marshal_error, FunctionError::marshal);
canonical!(invalid_event, |text| FunctionError::invalid_event(
    text.as_bytes()
));

/// `handlerNotCallable(name, module, what)`: the handler's property is not a function.
fn handler_not_callable(mut cx: FunctionContext) -> JsResult<JsObject> {
    let name = cx.argument::<JsString>(0)?.value(&mut cx);
    let module = cx.argument::<JsString>(1)?.value(&mut cx);
    let what = cx.argument::<JsString>(2)?.value(&mut cx);
    error_object(
        &mut cx,
        &FunctionError::handler_not_callable(&name, &module, &what),
    )
}

/// `userError(kind, trace)`: a `HandledError`/`UnhandledError` with the canonical message.
fn user_error(mut cx: FunctionContext) -> JsResult<JsObject> {
    let kind = cx.argument::<JsString>(0)?.value(&mut cx);
    let trace = cx.argument::<JsString>(1)?.value(&mut cx);
    let kind = match kind_of(&kind) {
        k @ (ErrorKind::HandledError | ErrorKind::UnhandledError) => k,
        _ => ErrorKind::UnhandledError,
    };
    error_object(&mut cx, &FunctionError::user(kind, trace))
}

/// `timeout(seconds)`: the synchronous invocation's `Timeout`.
fn timeout(mut cx: FunctionContext) -> JsResult<JsObject> {
    let secs = cx.argument::<JsNumber>(0)?.value(&mut cx);
    error_object(&mut cx, &FunctionError::timeout(secs, false))
}

/// `encodeEnvironment([[key, value], …]) → [environment, environ]`: the context's two views of the
/// function's environment, built as the core builds them.
fn encode_environment(mut cx: FunctionContext) -> JsResult<JsArray> {
    let list = cx.argument::<JsArray>(0)?.to_vec(&mut cx)?;
    let mut pairs = Vec::with_capacity(list.len());
    for item in list {
        let pair = item.downcast_or_throw::<JsArray, _>(&mut cx)?;
        let k = pair.get::<JsString, _, _>(&mut cx, 0)?.value(&mut cx);
        let v = pair.get::<JsString, _, _>(&mut cx, 1)?.value(&mut cx);
        pairs.push((k, v));
    }
    let (environment, environ) = scf_shim::protocol::Context::encode_environment(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let out = cx.empty_array();
    let v = cx.string(environment);
    out.set(&mut cx, 0, v)?;
    let v = cx.string(environ);
    out.set(&mut cx, 1, v)?;
    Ok(out)
}

/// `__panicOnNextPost()`: the worker panics when it next posts an outcome (for the test of the panic path).
fn panic_on_next_post(mut cx: FunctionContext) -> JsResult<JsUndefined> {
    PANIC_ON_NEXT_POST.store(true, Ordering::Relaxed);
    Ok(cx.undefined())
}

#[neon::main]
fn main(mut cx: ModuleContext) -> NeonResult<()> {
    cx.export_function("open", open)?;
    cx.export_function("config", config)?;
    cx.export_function("ready", ready)?;
    cx.export_function("listen", listen)?;
    cx.export_function("next", next)?;
    cx.export_function("post", post)?;
    cx.export_function("errorBody", error_body)?;
    cx.export_function("settle", settle)?;
    cx.export_function("parseHandler", parse_handler)?;
    cx.export_function("checkHandlerFile", check_handler_file)?;
    cx.export_function("handlerNotFound", handler_not_found)?;
    cx.export_function("moduleNotFound", module_not_found)?;
    cx.export_function("marshalError", marshal_error)?;
    cx.export_function("invalidEvent", invalid_event)?;
    cx.export_function("userError", user_error)?;
    cx.export_function("handlerNotCallable", handler_not_callable)?;
    cx.export_function("timeout", timeout)?;
    cx.export_function("encodeEnvironment", encode_environment)?;
    cx.export_function("__panicOnNextPost", panic_on_next_post)?;
    let kinds = cx.empty_object();
    for k in ErrorKind::ALL {
        let v = cx.number(k.status_code());
        kinds.set(&mut cx, k.name(), v)?;
    }
    cx.export_value("KINDS", kinds)?;
    let limit = cx.number(u32::try_from(MAX_RESPONSE_BYTES).unwrap_or(u32::MAX));
    cx.export_value("MAX_RESPONSE_BYTES", limit)?;
    Ok(())
}
