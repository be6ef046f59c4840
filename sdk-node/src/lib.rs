//! `scf-sdk-node`: the shim core as a Node.js add-on (`index.node`), loaded by the Node SDK's `bootstrap.js`.
//!
//! It wraps [`scf_shim::Runtime`] (pull style: ready / next / respond / fail). The runtime's calls block
//! (`next` is a long poll), so the runtime lives on a worker thread that owns it; every call from JavaScript
//! is a command sent to that thread and answered by settling a Promise through a neon [`Channel`]. Each
//! pending call holds a referenced channel, so Node's event loop stays alive exactly while a call is
//! pending: between calls (while a handler runs) the add-on keeps nothing alive, which is what lets the
//! bootstrap notice that the event loop has drained (`callbackWaitsForEmptyEventLoop`).
//!
//! Events and results cross as JSON **text**: `JSON.parse`/`JSON.stringify` happen in V8.
//!
//! JavaScript API (all used by `bootstrap.js`, documented in `docs/node.md`):
//! - `open() → handle` — reads the configuration and connects (the end of InitRuntime); throws on failure;
//! - `config(handle) → {handler, runtime, codeRoot}`;
//! - `ready(handle, initFunctionMs) → Promise<void>`;
//! - `next(handle[, post…]) → Promise<[requestId, eventText | null, contextJson, remainingMs, postError?]>`
//!   (`null`: not UTF-8). With `post` = `'respond', body` or `'fail', kind, message, stack` it first posts the
//!   previous invocation's outcome: one call and one wake-up of the JS thread per invocation instead of two;
//!   a failed post that did not end the connection comes back as `postError`;
//! - `respond(handle, body) → Promise<void>` (the core applies the 6 MB limit);
//! - `fail(handle, kind, message, stack) → Promise<void>` (kind `InvalidEvent`: the core words the message);
//! - `errorBody(kind, message, stack, requestId) → string` — the caller-visible error body.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use neon::prelude::*;
use neon::types::Deferred;
use scf_shim::protocol::{ErrorKind, FunctionError};
use scf_shim::{Config, Invocation, Runtime, ShimError};

/// A call from JavaScript, with the promise it settles.
enum Command {
    Ready(Duration),
    /// Post the previous outcome (if any), then wait for the next invocation.
    Next(Option<Post>),
    Post(Post),
}

/// The outcome of the current invocation.
enum Post {
    Respond(String),
    Fail {
        kind: String,
        message: String,
        stack: String,
    },
}

struct Call {
    command: Command,
    deferred: Deferred,
    channel: Channel,
}

/// What a call produced, turned into a JavaScript value on the JS thread.
enum Reply {
    Done,
    Invocation {
        request_id: String,
        /// The event as the platform sent it (UTF-8 checked on the JS thread, without a copy).
        event: bytes::Bytes,
        context: String,
        remaining_ms: f64,
        /// Why posting the previous outcome failed, when it did without ending the connection.
        post_error: Option<String>,
    },
    Failed {
        message: String,
        disconnected: bool,
    },
}

/// The JavaScript-side handle: the way to the worker thread, and the instance's configuration.
struct Instance {
    calls: mpsc::Sender<Call>,
    handler: String,
    runtime: String,
    code_root: String,
}

impl Finalize for Instance {}

/// The error kind named `kind`, or InternalError for a name the core does not know.
fn kind_of(kind: &str) -> ErrorKind {
    ErrorKind::from_name(kind).unwrap_or(ErrorKind::InternalError)
}

fn failed(e: &ShimError) -> Reply {
    Reply::Failed {
        message: e.to_string(),
        disconnected: e.is_disconnect(),
    }
}

/// Names a file to which the add-on appends, per invocation, the nanoseconds between the event's arrival
/// (`next` returned) and the start of posting its answer: the Node host's own overhead plus the handler's
/// time. Used by `sdk-node/bench/bench.js`; unset, it costs one branch per invocation.
const TIMINGS_ENV: &str = "SCF_NODE_TIMINGS";

/// The worker thread: owns the runtime, serves calls in order.
fn serve(mut runtime: Runtime, calls: &mpsc::Receiver<Call>) {
    let mut current: Option<Invocation> = None;
    let mut timings = std::env::var_os(TIMINGS_ENV).and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    let mut arrived = Instant::now();
    while let Ok(Call {
        command,
        deferred,
        channel,
    }) = calls.recv()
    {
        if let (Some(file), Command::Post(_) | Command::Next(Some(_))) =
            (timings.as_mut(), &command)
        {
            use std::io::Write as _;
            let _ = writeln!(file, "{}", arrived.elapsed().as_nanos());
        }
        let reply = match command {
            Command::Ready(init_function) => match runtime.ready(init_function) {
                Ok(()) => Reply::Done,
                Err(e) => failed(&e),
            },
            Command::Next(post) => {
                let post_error = match post.map(|p| send_post(&mut runtime, &mut current, p)) {
                    Some(Err(e)) if e.is_disconnect() => Some(Err(failed(&e))),
                    Some(Err(e)) => Some(Ok(e.to_string())),
                    Some(Ok(())) | None => None,
                };
                match post_error {
                    Some(Err(reply)) => reply,
                    post_error => match runtime.next() {
                        Ok(inv) => {
                            arrived = Instant::now();
                            let reply = Reply::Invocation {
                                request_id: inv.request_id.clone(),
                                event: inv.event.clone(),
                                context: inv.context.to_json(),
                                remaining_ms: inv
                                    .deadline
                                    .saturating_duration_since(Instant::now())
                                    .as_secs_f64()
                                    * 1000.0,
                                post_error: post_error.and_then(Result::ok),
                            };
                            current = Some(inv);
                            reply
                        }
                        Err(e) => failed(&e),
                    },
                }
            }
            Command::Post(post) => match send_post(&mut runtime, &mut current, post) {
                Ok(()) => Reply::Done,
                Err(e) => failed(&e),
            },
        };
        deferred.settle_with(&channel, move |mut cx| -> JsResult<JsValue> {
            match reply {
                Reply::Done => Ok(cx.undefined().upcast()),
                Reply::Invocation {
                    request_id,
                    event,
                    context,
                    remaining_ms,
                    post_error,
                } => {
                    let out = cx.empty_array();
                    let v = cx.string(request_id);
                    out.set(&mut cx, 0, v)?;
                    let v: Handle<JsValue> = match std::str::from_utf8(&event) {
                        Ok(text) => cx.string(text).upcast(),
                        Err(_) => cx.null().upcast(),
                    };
                    out.set(&mut cx, 1, v)?;
                    let v = cx.string(context);
                    out.set(&mut cx, 2, v)?;
                    let v = cx.number(remaining_ms);
                    out.set(&mut cx, 3, v)?;
                    if let Some(message) = post_error {
                        let v = cx.string(message);
                        out.set(&mut cx, 4, v)?;
                    }
                    Ok(out.upcast())
                }
                Reply::Failed {
                    message,
                    disconnected,
                } => {
                    let err = cx.error(message)?;
                    let code = cx.string(if disconnected {
                        "SCF_DISCONNECTED"
                    } else {
                        "SCF_RUNTIME_API"
                    });
                    err.set(&mut cx, "code", code)?;
                    cx.throw(err)
                }
            }
        });
        // `channel` drops here: once its settle closure has run, the event loop is free to drain again.
    }
}

/// Posts the current invocation's outcome.
fn send_post(
    runtime: &mut Runtime,
    current: &mut Option<Invocation>,
    post: Post,
) -> Result<(), ShimError> {
    let Some(inv) = current.take() else {
        return Err(ShimError::Protocol(
            "no invocation is in progress (respond/fail must follow next)".into(),
        ));
    };
    match post {
        Post::Respond(body) => runtime.respond(&inv, body.as_bytes()),
        Post::Fail {
            kind,
            message,
            stack,
        } => {
            let err = match kind_of(&kind) {
                ErrorKind::InvalidEvent => FunctionError::invalid_event(&inv.event),
                k => FunctionError::new(k, message, stack),
            };
            runtime.fail(&inv, &err)
        }
    }
}

/// The optional post arguments of `next` (from index 1): `'respond', body` or `'fail', kind, message, stack`.
fn post_args(cx: &mut FunctionContext, from: usize) -> NeonResult<Option<Post>> {
    let Some(kind) = cx.argument_opt(from) else {
        return Ok(None);
    };
    if kind.is_a::<JsUndefined, _>(cx) || kind.is_a::<JsNull, _>(cx) {
        return Ok(None);
    }
    let kind = kind.downcast_or_throw::<JsString, _>(cx)?.value(cx);
    let mut text =
        |i: usize| -> NeonResult<String> { Ok(cx.argument::<JsString>(from + i)?.value(cx)) };
    match kind.as_str() {
        "respond" => Ok(Some(Post::Respond(text(1)?))),
        "fail" => Ok(Some(Post::Fail {
            kind: text(1)?,
            message: text(2)?,
            stack: text(3)?,
        })),
        other => cx.throw_error(format!("scf-sdk: unknown post '{other}'")),
    }
}

/// `open()`: starts the worker, which reads the configuration and connects to the runtime API.
fn open(mut cx: FunctionContext) -> JsResult<JsBox<Instance>> {
    let (calls_tx, calls_rx) = mpsc::channel::<Call>();
    let (opened_tx, opened_rx) = mpsc::sync_channel::<Result<Config, String>>(1);
    let spawned = thread::Builder::new()
        .name("scf-runtime-api".into())
        .spawn(move || match Runtime::from_env() {
            Ok(runtime) => {
                if opened_tx.send(Ok(runtime.config().clone())).is_ok() {
                    serve(runtime, &calls_rx);
                }
            }
            Err(e) => {
                let _ = opened_tx.send(Err(e.to_string()));
            }
        });
    if let Err(e) = spawned {
        return cx.throw_error(format!("scf-sdk: cannot start the runtime API thread: {e}"));
    }
    let config = match opened_rx.recv() {
        Ok(Ok(config)) => config,
        Ok(Err(message)) => return cx.throw_error(format!("scf-sdk: {message}")),
        Err(_) => return cx.throw_error("scf-sdk: the runtime API thread ended during start-up"),
    };
    Ok(cx.boxed(Instance {
        calls: calls_tx,
        handler: config.handler,
        runtime: config.runtime,
        code_root: config.code_root.to_string_lossy().into_owned(),
    }))
}

/// `config(handle)`: the handler string, runtime name and code root.
fn config(mut cx: FunctionContext) -> JsResult<JsObject> {
    let handle = cx.argument::<JsBox<Instance>>(0)?;
    let out = cx.empty_object();
    let v = cx.string(&handle.handler);
    out.set(&mut cx, "handler", v)?;
    let v = cx.string(&handle.runtime);
    out.set(&mut cx, "runtime", v)?;
    let v = cx.string(&handle.code_root);
    out.set(&mut cx, "codeRoot", v)?;
    Ok(out)
}

/// Sends `command` to the worker; the returned promise settles with its reply.
fn submit(mut cx: FunctionContext, command: Command) -> JsResult<JsPromise> {
    let handle = cx.argument::<JsBox<Instance>>(0)?;
    let (deferred, promise) = cx.promise();
    let channel = cx.channel();
    if handle
        .calls
        .send(Call {
            command,
            deferred,
            channel,
        })
        .is_err()
    {
        // The worker is gone (it could not connect): the promise's deferred went with it, so answer anew.
        return cx.throw_error("scf-sdk: the runtime API thread has ended");
    }
    Ok(promise)
}

/// `ready(handle, initFunctionMs)`.
fn ready(mut cx: FunctionContext) -> JsResult<JsPromise> {
    let ms = cx.argument::<JsNumber>(1)?.value(&mut cx);
    let init = Duration::from_secs_f64(if ms.is_finite() && ms > 0.0 {
        ms / 1000.0
    } else {
        0.0
    });
    submit(cx, Command::Ready(init))
}

/// `next(handle[, post…])`.
fn next(mut cx: FunctionContext) -> JsResult<JsPromise> {
    let post = post_args(&mut cx, 1)?;
    submit(cx, Command::Next(post))
}

/// `respond(handle, body)`.
fn respond(mut cx: FunctionContext) -> JsResult<JsPromise> {
    let body = cx.argument::<JsString>(1)?.value(&mut cx);
    submit(cx, Command::Post(Post::Respond(body)))
}

/// `fail(handle, kind, message, stack)`.
fn fail(mut cx: FunctionContext) -> JsResult<JsPromise> {
    let kind = cx.argument::<JsString>(1)?.value(&mut cx);
    let message = cx.argument::<JsString>(2)?.value(&mut cx);
    let stack = cx.argument::<JsString>(3)?.value(&mut cx);
    submit(
        cx,
        Command::Post(Post::Fail {
            kind,
            message,
            stack,
        }),
    )
}

/// `errorBody(kind, message, stack, requestId)`: the canonical caller-visible body.
fn error_body(mut cx: FunctionContext) -> JsResult<JsString> {
    let kind = cx.argument::<JsString>(0)?.value(&mut cx);
    let message = cx.argument::<JsString>(1)?.value(&mut cx);
    let stack = cx.argument::<JsString>(2)?.value(&mut cx);
    let request_id = cx.argument::<JsString>(3)?.value(&mut cx);
    let body = FunctionError::new(kind_of(&kind), message, stack).to_body(&request_id);
    Ok(cx.string(body))
}

#[neon::main]
fn main(mut cx: ModuleContext) -> NeonResult<()> {
    cx.export_function("open", open)?;
    cx.export_function("config", config)?;
    cx.export_function("ready", ready)?;
    cx.export_function("next", next)?;
    cx.export_function("respond", respond)?;
    cx.export_function("fail", fail)?;
    cx.export_function("errorBody", error_body)?;
    Ok(())
}
