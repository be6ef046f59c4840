//! `scf-sdk-node`: the shim core as a Node.js add-on (`index.node`), loaded by the Node SDK's `bootstrap.js`.
//!
//! Two halves:
//! - **The instance.** A worker thread owns a [`scf_shim::Runtime`], the blocking driver of the invocation
//!   core ([`scf_shim::core`]): the same machine `scf-shim`'s own loop and the Python module drive. Its calls
//!   block (`next` is a long poll), so every call from JavaScript is a command sent to that thread and answered
//!   by settling a Promise through a neon [`Channel`]. A pending call holds a referenced channel, so Node's
//!   event loop stays alive exactly while a call is pending: between calls (while a handler runs) the add-on
//!   keeps nothing alive, which is what lets the bootstrap notice that the event loop has drained
//!   (`callbackWaitsForEmptyEventLoop`). The worker's work runs under `catch_unwind`: a panic settles the
//!   pending promise with an `InternalError` (500), which the core first posts for the invocation in flight.
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
//! - `next(handle[, outcome…]) → Promise<[requestId, eventText | null, contextJson, remainingMs]>` (`null`: not
//!   UTF-8): posts the previous invocation's outcome first, so the JS thread is woken once per invocation; a
//!   small outcome is written by JavaScript's thread itself, with the `next` behind it, while the worker is
//!   idle, so the platform has it without waiting for the worker to wake;
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

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use neon::prelude::*;
use neon::types::Deferred;
use scf_shim::protocol::error::settle as settle_outcome;
use scf_shim::protocol::{ErrorKind, FunctionError, MAX_RESPONSE_BYTES};
use scf_shim::{Config, HandlerName, Invocation, Outcome, Runtime, ShimError};

mod text;

/// A call from JavaScript.
enum Command {
    Ready {
        init_function: Duration,
        loaded: Result<(), FunctionError>,
    },
    /// Post the previous outcome (if any), then wait for the next invocation.
    Next(Option<Outcome>),
    Post(Outcome),
}

struct Call {
    command: Command,
    deferred: Deferred,
    channel: Channel,
}

/// Why a call failed, as JavaScript sees it (`err.code`).
#[derive(Clone, Copy)]
enum Failure {
    Disconnected,
    RuntimeApi,
    Internal,
}

impl Failure {
    fn code(self) -> &'static str {
        match self {
            Failure::Disconnected => "SCF_DISCONNECTED",
            Failure::RuntimeApi => "SCF_RUNTIME_API",
            Failure::Internal => "SCF_INTERNAL",
        }
    }
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
    },
    Failed {
        message: String,
        failure: Failure,
    },
}

/// The JavaScript-side handle: the way to the worker thread, and the instance's configuration.
struct Instance {
    calls: mpsc::Sender<Call>,
    /// The worker's start (configuration read, connected), until it is first needed.
    opening: Mutex<Option<mpsc::Receiver<Opened>>>,
    /// The worker's start once it ended: the instance, or why it could not start.
    started: std::sync::OnceLock<Result<Started, String>>,
}

/// What the worker's thread sends once it has started: its configuration and state, or why it could not.
type Opened = Result<(Config, Arc<Mutex<Worker>>), String>;

/// A started worker.
struct Started {
    /// The worker's state, which JavaScript's thread borrows to write a result itself (see [`next`]).
    worker: Arc<Mutex<Worker>>,
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

fn failed(e: &ShimError) -> Reply {
    Reply::Failed {
        message: e.to_string(),
        failure: if e.is_disconnect() {
            Failure::Disconnected
        } else {
            Failure::RuntimeApi
        },
    }
}

/// Names a file to which the add-on appends, per invocation, the nanoseconds between the event's arrival
/// (`next` returned) and the start of posting its answer: the Node host's own overhead plus the handler's
/// time. Used by `sdk-node/bench/bench.js`; unset, it costs one branch per invocation.
const TIMINGS_ENV: &str = "SCF_NODE_TIMINGS";

/// Set by the hidden `__panicOnNextPost()`: the worker panics when it next posts an outcome (the test of the
/// panic path; one atomic load per post otherwise).
static PANIC_ON_NEXT_POST: AtomicBool = AtomicBool::new(false);

/// The worker thread: owns the runtime, serves calls in order.
struct Worker {
    runtime: Runtime,
    timings: Option<std::fs::File>,
    arrived: Instant,
    /// Set once the worker panicked: the runtime's state is unknown, every later call is refused.
    poisoned: Option<String>,
    /// Why JavaScript's thread could not write an outcome itself ([`Worker::send_outcome`]): the answer of the
    /// `next` that follows.
    refused: Option<Reply>,
}

/// Locks the worker's state (a panic while it was held is already recorded in `poisoned`).
fn lock(worker: &Mutex<Worker>) -> std::sync::MutexGuard<'_, Worker> {
    worker
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The worker thread: serves calls in order, holding the worker's state only while it runs one.
fn serve(worker: &Mutex<Worker>, calls: &mpsc::Receiver<Call>) {
    while let Ok(Call {
        command,
        deferred,
        channel,
    }) = calls.recv()
    {
        let reply = lock(worker).run(command);
        deferred.settle_with(&channel, move |mut cx| reply.into_js(&mut cx));
        // `channel` drops here: once its settle closure has run, the event loop is free to drain again.
    }
}

impl Worker {
    /// Runs one call, under `catch_unwind`.
    fn run(&mut self, command: Command) -> Reply {
        if let Some(message) = &self.poisoned {
            return Reply::Failed {
                message: message.clone(),
                failure: Failure::Internal,
            };
        }
        if let (Command::Next(None), Some(refused)) = (&command, self.refused.take()) {
            return refused;
        }
        match catch_unwind(AssertUnwindSafe(|| self.handle(command))) {
            Ok(reply) => reply,
            Err(payload) => self.panicked(payload.as_ref()),
        }
    }

    /// Before an outcome is posted: the timing of the invocation, and the test hook's panic.
    fn posting(&mut self) {
        if let Some(file) = self.timings.as_mut() {
            use std::io::Write as _;
            let _ = writeln!(file, "{}", self.arrived.elapsed().as_nanos());
        }
        if PANIC_ON_NEXT_POST.swap(false, Ordering::Relaxed) {
            panic!("a panic asked for by __panicOnNextPost()");
        }
    }

    /// On JavaScript's thread, for `next(handle, outcome…)`: writes the outcome (and the `next` behind it)
    /// itself ([`Runtime::send_outcome`], which writes only what cannot block), so the platform has the result
    /// without waiting for the worker to wake; the worker then only reads the answers. Anything that goes wrong
    /// becomes the answer of that `next`, as if the worker had posted it.
    fn send_outcome(&mut self, outcome: Outcome) {
        if self.poisoned.is_some() {
            return;
        }
        let sent = catch_unwind(AssertUnwindSafe(|| {
            self.posting();
            self.runtime.send_outcome(outcome)
        }));
        self.refused = match sent {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(failed(&e)),
            Err(payload) => Some(self.panicked(payload.as_ref())),
        };
    }

    fn handle(&mut self, command: Command) -> Reply {
        if matches!(command, Command::Post(_) | Command::Next(Some(_))) {
            self.posting();
        }
        match command {
            Command::Ready {
                init_function,
                loaded,
            } => match self.runtime.ready(loaded, init_function) {
                Ok(()) => Reply::Done,
                Err(e) => failed(&e),
            },
            Command::Next(outcome) => match self.runtime.next(outcome) {
                Ok(inv) => {
                    self.arrived = Instant::now();
                    invocation_reply(inv)
                }
                Err(e) => failed(&e),
            },
            Command::Post(outcome) => match self.runtime.post(outcome) {
                Ok(()) => Reply::Done,
                Err(e) => failed(&e),
            },
        }
    }

    /// A panic during a call: the invocation in flight (if the runtime still has one) is answered with an
    /// `InternalError`, and the worker refuses everything from now on.
    fn panicked(&mut self, payload: &(dyn std::any::Any + Send)) -> Reply {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        let err = FunctionError::internal(format!("the Node.js add-on's worker panicked: {what}"));
        if self.runtime.is_running() {
            let runtime = &mut self.runtime;
            let _ = catch_unwind(AssertUnwindSafe(|| runtime.post(Err(err.clone()))));
        }
        let message = format!("scf-sdk: {}: {}", err.message, err.stack_trace);
        self.poisoned = Some(message.clone());
        Reply::Failed {
            message,
            failure: Failure::Internal,
        }
    }
}

fn invocation_reply(inv: Invocation) -> Reply {
    Reply::Invocation {
        remaining_ms: inv
            .deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
            * 1000.0,
        context: inv.context.to_json(),
        request_id: inv.request_id,
        event: inv.event,
    }
}

impl Reply {
    fn into_js<'a>(self, cx: &mut TaskContext<'a>) -> JsResult<'a, JsValue> {
        match self {
            Reply::Done => Ok(cx.undefined().upcast()),
            Reply::Invocation {
                request_id,
                event,
                context,
                remaining_ms,
            } => {
                let out = cx.empty_array();
                let v = cx.string(request_id);
                out.set(cx, 0, v)?;
                let v = event_string(cx, event)?;
                out.set(cx, 1, v)?;
                let v = cx.string(context);
                out.set(cx, 2, v)?;
                let v = cx.number(remaining_ms);
                out.set(cx, 3, v)?;
                Ok(out.upcast())
            }
            Reply::Failed { message, failure } => {
                let err = cx.error(message)?;
                let code = cx.string(failure.code());
                err.set(cx, "code", code)?;
                if let Failure::Internal = failure {
                    let kind = cx.string(ErrorKind::InternalError.name());
                    err.set(cx, "kind", kind)?;
                    let status = cx.number(ErrorKind::InternalError.status_code());
                    err.set(cx, "statusCode", status)?;
                }
                cx.throw(err)
            }
        }
    }
}

// Node-API's string constructors for Latin-1 and UTF-16 text (stable since Node-API 1), and their external
// forms (`node_api_create_external_string_*`, Node.js 18.18 / 20.4 and later), which make a string over memory
// the add-on keeps instead of copying it; neon binds only the UTF-8 constructor. They are looked up in the
// process at run time, as neon looks up its own: `node`, which loads the add-on, exports them (a test binary of
// this crate has no `node` to link against).
type CreateString<T> = unsafe extern "C" fn(
    env: neon::sys::bindings::Env,
    text: *const T,
    length: usize,
    result: *mut neon::sys::bindings::Value,
) -> neon::sys::bindings::Status;

type NapiFinalize = unsafe extern "C" fn(
    env: neon::sys::bindings::Env,
    data: *mut libc::c_void,
    hint: *mut libc::c_void,
);

type CreateExternalString<T> = unsafe extern "C" fn(
    env: neon::sys::bindings::Env,
    text: *mut T,
    length: usize,
    finalize: Option<NapiFinalize>,
    hint: *mut libc::c_void,
    result: *mut neon::sys::bindings::Value,
    copied: *mut bool,
) -> neon::sys::bindings::Status;

/// The constructors the process has (the external ones may be missing: an older Node.js).
struct StringConstructors {
    latin1: CreateString<std::ffi::c_char>,
    utf16: CreateString<u16>,
    /// The external constructors, over Latin-1 (`char`) and UTF-16 (`char16_t`) text: the same C signature
    /// apart from the text's pointer type, so one Rust type for both.
    external_latin1: Option<CreateExternalString<libc::c_void>>,
    external_utf16: Option<CreateExternalString<libc::c_void>>,
}

fn string_constructors() -> Option<&'static StringConstructors> {
    static FOUND: std::sync::OnceLock<Option<StringConstructors>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let find = |name: &std::ffi::CStr| {
                // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the symbol up.
                let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
                (!p.is_null()).then_some(p)
            };
            let latin1 = find(c"napi_create_string_latin1")?;
            let utf16 = find(c"napi_create_string_utf16")?;
            let external_latin1 = find(c"node_api_create_external_string_latin1");
            let external_utf16 = find(c"node_api_create_external_string_utf16");
            // SAFETY: all four symbols are Node-API's, whose C signatures `CreateString` and
            // `CreateExternalString` spell out.
            unsafe {
                Some(StringConstructors {
                    latin1: std::mem::transmute::<*mut libc::c_void, CreateString<std::ffi::c_char>>(
                        latin1,
                    ),
                    utf16: std::mem::transmute::<*mut libc::c_void, CreateString<u16>>(utf16),
                    external_latin1: external_latin1.map(|p| {
                        std::mem::transmute::<*mut libc::c_void, CreateExternalString<libc::c_void>>(p)
                    }),
                    external_utf16: external_utf16.map(|p| {
                        std::mem::transmute::<*mut libc::c_void, CreateExternalString<libc::c_void>>(p)
                    }),
                })
            }
        })
        .as_ref()
}

/// From this size on, an event's string is made over the add-on's own copy of the text (an external string:
/// nothing copied, the memory freed when V8 collects the string); a smaller one is copied into V8 (cheap at that
/// size, and no finalizer per event).
const EXTERNAL_FROM_BYTES: usize = 64 * 1024;

/// The memory under an external string, freed by [`free_text`] when V8 collects the string.
enum Text {
    Bytes(bytes::Bytes),
    Ascii(Vec<u8>),
    Units(Vec<u16>),
}

/// Node-API's finalizer of an external string: frees its [`Text`] (nothing else: it may run during a GC).
unsafe extern "C" fn free_text(
    _env: neon::sys::bindings::Env,
    _data: *mut libc::c_void,
    hint: *mut libc::c_void,
) {
    // SAFETY: `hint` is the `Box<Text>` that `external_string` leaked for this string; Node-API calls the
    // finalizer once.
    drop(unsafe { Box::from_raw(hint.cast::<Text>()) });
}

impl Text {
    /// The event's text as V8 parses it fastest ([`text`]), or `None` when it is not UTF-8.
    fn of(event: bytes::Bytes) -> Option<Text> {
        if event.is_ascii() {
            return Some(Text::Bytes(event));
        }
        let text = std::str::from_utf8(&event).ok()?;
        Some(match text::ascii_escaped(text) {
            Some(ascii) => Text::Ascii(ascii),
            None => Text::Units(text::utf16(text)),
        })
    }

    /// Its size in bytes.
    fn size(&self) -> usize {
        match self {
            Text::Bytes(b) => b.len(),
            Text::Ascii(v) => v.len(),
            Text::Units(u) => u.len() * 2,
        }
    }

    /// Its one-byte (ASCII) content, or `None` for UTF-16.
    fn ascii(&self) -> Option<&[u8]> {
        match self {
            Text::Bytes(b) => Some(b),
            Text::Ascii(v) => Some(v),
            Text::Units(_) => None,
        }
    }

    fn to_rust_string(&self) -> String {
        match self {
            Text::Units(u) => String::from_utf16_lossy(u),
            other => String::from_utf8_lossy(other.ascii().unwrap_or_default()).into_owned(),
        }
    }
}

/// A string over `text` that V8 does not copy. `Err(Some(text))`: not made (no external strings in this
/// Node.js, or Node-API refused), the text back for a copy; `Err(None)`: Node-API took the text but gave no
/// string (never seen).
fn external_string(
    env: neon::sys::bindings::Env,
    make: &StringConstructors,
    text: Text,
) -> Result<neon::sys::bindings::Value, Option<Text>> {
    let (data, length) = match &text {
        Text::Units(u) => (u.as_ptr().cast::<libc::c_void>(), u.len()),
        other => {
            let a = other.ascii().unwrap_or_default();
            (a.as_ptr().cast::<libc::c_void>(), a.len())
        }
    };
    let external = if text.ascii().is_some() {
        make.external_latin1
    } else {
        make.external_utf16
    };
    let Some(external) = external else {
        return Err(Some(text));
    };
    // The text's memory is on the heap: moving the `Text` into the box does not move what `data` points at.
    let hint = Box::into_raw(Box::new(text));
    let mut raw: neon::sys::bindings::Value = std::ptr::null_mut();
    let mut copied = false;
    // SAFETY: `env` is the live environment of the caller's context; `data`/`length` describe the text owned by
    // `hint` in the constructor's unit (bytes for Latin-1, code units for UTF-16), which stays alive until
    // Node-API calls `free_text` with it (once: when V8 collects the string, or at once when it copied); `raw`
    // and `copied` are valid places for the results. V8 only reads the text.
    let status = unsafe {
        external(
            env,
            data.cast_mut(),
            length,
            Some(free_text),
            hint.cast(),
            &mut raw,
            &mut copied,
        )
    };
    if status != neon::sys::bindings::Status::Ok {
        // Refused: Node-API has not called the finalizer and will not; the text is ours again.
        // SAFETY: `hint` came from `Box::into_raw` above and was not freed.
        return Err(Some(*unsafe { Box::from_raw(hint) }));
    }
    if raw.is_null() { Err(None) } else { Ok(raw) }
}

/// The event's text as a JavaScript string, made the cheapest way V8 parses it (see [`text`]): ASCII text as it
/// is, mostly-ASCII text with its non-ASCII characters escaped, both one-byte strings; other text decoded to
/// UTF-16 here, a two-byte string, instead of V8's UTF-8 decoder (`napi_create_string_utf8`). A large event's
/// string is external (over the add-on's memory, not copied); `null` when the event is not UTF-8.
fn event_string<'a>(cx: &mut TaskContext<'a>, event: bytes::Bytes) -> JsResult<'a, JsValue> {
    let Some(mut text) = Text::of(event.clone()) else {
        return Ok(cx.null().upcast());
    };
    let Some(make) = string_constructors() else {
        return Ok(cx.string(text.to_rust_string()).upcast());
    };
    let env = cx.to_raw();
    if text.size() >= EXTERNAL_FROM_BYTES {
        match external_string(env, make, text) {
            // SAFETY: `raw` is a string Node-API just made in `cx`'s scope.
            Ok(raw) => return Ok(unsafe { JsString::from_raw(cx, raw) }.upcast()),
            Err(Some(back)) => text = back,
            Err(None) => match Text::of(event) {
                Some(again) => text = again,
                None => return Ok(cx.null().upcast()),
            },
        }
    }
    let mut raw: neon::sys::bindings::Value = std::ptr::null_mut();
    // SAFETY: `env` is the live environment of `cx`; the pointer and length are the text's, which Node-API
    // copies before returning; `raw` is a valid place for the result.
    let status = unsafe {
        match &text {
            Text::Units(u) => (make.utf16)(env, u.as_ptr(), u.len(), &mut raw),
            other => {
                let a = other.ascii().unwrap_or_default();
                (make.latin1)(env, a.as_ptr().cast(), a.len(), &mut raw)
            }
        }
    };
    if status != neon::sys::bindings::Status::Ok || raw.is_null() {
        // Whatever Node-API refused (memory, say), neon's own constructor says it the usual way.
        return Ok(cx.string(text.to_rust_string()).upcast());
    }
    // SAFETY: `raw` is a string Node-API just made in `cx`'s scope.
    Ok(unsafe { JsString::from_raw(cx, raw) }.upcast())
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
        "respond" => Ok(Some(Ok(cx
            .argument::<JsString>(from + 1)?
            .value(cx)
            .into_bytes()))),
        "fail" => Ok(Some(Err(error_args(cx, from + 1)?))),
        other => cx.throw_error(format!(
            "scf-sdk: unknown outcome '{other}' (expected 'respond' or 'fail')"
        )),
    }
}

/// `open()`: starts the worker, which reads the configuration and connects to the runtime API; returns at once
/// (the first call that needs the worker waits for its start, and throws its error).
fn open(mut cx: FunctionContext) -> JsResult<JsBox<Instance>> {
    let (calls_tx, calls_rx) = mpsc::channel::<Call>();
    let (opened_tx, opened_rx) = mpsc::sync_channel::<Opened>(1);
    let spawned = thread::Builder::new()
        .name("scf-runtime-api".into())
        .spawn(move || {
            let started = catch_unwind(Runtime::from_env).unwrap_or_else(|_| {
                Err(ShimError::Protocol(
                    "the runtime API client panicked while connecting".into(),
                ))
            });
            match started {
                Ok(runtime) => {
                    let config = runtime.config().clone();
                    let timings = std::env::var_os(TIMINGS_ENV).and_then(|p| {
                        std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(p)
                            .ok()
                    });
                    let worker = Arc::new(Mutex::new(Worker {
                        runtime,
                        timings,
                        arrived: Instant::now(),
                        poisoned: None,
                        refused: None,
                    }));
                    if opened_tx.send(Ok((config, worker.clone()))).is_ok() {
                        serve(&worker, &calls_rx);
                    }
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e.to_string()));
                }
            }
        });
    if let Err(e) = spawned {
        return cx.throw_error(format!("scf-sdk: cannot start the runtime API thread: {e}"));
    }
    Ok(cx.boxed(Instance {
        calls: calls_tx,
        opening: Mutex::new(Some(opened_rx)),
        started: std::sync::OnceLock::new(),
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

/// Sends `command` to the worker; the returned promise settles with its reply.
fn submit(mut cx: FunctionContext, command: Command) -> JsResult<JsPromise> {
    let handle = cx.argument::<JsBox<Instance>>(0)?;
    if let Err(message) = handle.started() {
        return cx.throw_error(message);
    }
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
        // The worker is gone: the promise's deferred went with it, so answer anew.
        return cx.throw_error("scf-sdk: the runtime API thread has ended");
    }
    Ok(promise)
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

/// `next(handle[, outcome…])`. The outcome is written on this thread when the worker is idle (it is, between
/// invocations: it holds its state only while it runs a call), so the platform has it without waiting for
/// the worker to wake; the worker then waits for the next invocation. When the worker is busy, it posts the
/// outcome itself.
fn next(mut cx: FunctionContext) -> JsResult<JsPromise> {
    let mut outcome = outcome_args(&mut cx, 1)?;
    if let Some(o) = outcome.take() {
        let handle = cx.argument::<JsBox<Instance>>(0)?;
        match handle.started().map(|s| s.worker.try_lock()) {
            Ok(Ok(mut worker)) => worker.send_outcome(o),
            _ => outcome = Some(o),
        }
    }
    submit(cx, Command::Next(outcome))
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
