//! The runtime API's worker thread: owns the [`scf_shim::Runtime`] (the blocking driver of the invocation core)
//! and serves the calls JavaScript sends it, in order, each under `catch_unwind`; a call's reply goes back to
//! JavaScript's thread through a neon [`Channel`]: it settles the call's Promise, or (a `next`'s) calls the
//! functions `listen` registered ([`Listener`]). JavaScript's thread borrows the same state, while the worker
//! is idle, to write an outcome itself and to read the platform's answers that are already there
//! ([`crate::poll`]).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use neon::context::Cx;
use neon::handle::Root;
use neon::prelude::*;
use neon::types::Deferred;
use scf_shim::protocol::{Context as InvocationContext, ErrorKind, FunctionError};
use scf_shim::{Config, Invocation, Outcome, Progress, Runtime, ShimError};

use crate::event::event_string;

/// A call from JavaScript.
pub(crate) enum Command {
    Ready {
        init_function: Duration,
        loaded: Result<(), FunctionError>,
    },
    /// Post the previous outcome (if any), then wait for the next invocation.
    Next(Option<Outcome>),
    Post(Outcome),
}

pub(crate) struct Call {
    pub command: Command,
    pub answer: Answer,
    pub channel: Channel,
}

/// The two JavaScript functions `listen(handle, onInvocation, onEnd)` registered, kept for the process: a
/// `next`'s answer calls one of them with plain arguments (no promise, no array to build and take apart).
pub(crate) struct Listener {
    /// `onInvocation(requestId, eventText | null, remainingMs, memoryLimitInMb, timeLimitInMs[, sharedJson])`.
    on_invocation: Root<JsFunction>,
    /// `onEnd(error)`: there is no next invocation (the error carries `code`).
    on_end: Root<JsFunction>,
}

impl Listener {
    /// A listener kept as long as the process (its roots are never released: the functions stay alive).
    pub(crate) fn leaked(
        on_invocation: Root<JsFunction>,
        on_end: Root<JsFunction>,
    ) -> &'static Self {
        Box::leak(Box::new(Listener {
            on_invocation,
            on_end,
        }))
    }

    /// Calls the function `reply` is for, on the JS thread. An exception it throws (the bootstrap catches its
    /// own, so never seen) is given to `onEnd`, which ends the instance, instead of being left pending.
    pub(crate) fn deliver(&self, cx: &mut Cx, reply: Reply) {
        let called = cx.try_catch(|cx| match reply {
            Reply::Invocation {
                request_id,
                event,
                remaining_ms,
                memory_limit_in_mb,
                time_limit_in_ms,
                shared,
            } => {
                let f = self.on_invocation.to_inner(cx);
                let this = cx.undefined();
                let request_id = cx.string(request_id).upcast();
                let event = event_string(cx, event)?;
                let remaining = cx.number(remaining_ms).upcast();
                let memory = cx.number(memory_limit_in_mb).upcast();
                // An integer of milliseconds: exact in a double up to 2^53.
                #[allow(clippy::cast_precision_loss)]
                let limit = cx.number(time_limit_in_ms as f64).upcast();
                match shared {
                    Some(shared) => {
                        let shared = cx.string(shared).upcast();
                        f.call(
                            cx,
                            this,
                            [request_id, event, remaining, memory, limit, shared],
                        )?;
                    }
                    None => {
                        f.call(cx, this, [request_id, event, remaining, memory, limit])?;
                    }
                }
                Ok(())
            }
            other => {
                let error = match cx.try_catch(|cx| other.into_js(cx)) {
                    Ok(v) | Err(v) => v,
                };
                let f = self.on_end.to_inner(cx);
                let this = cx.undefined();
                f.call(cx, this, [error])?;
                Ok(())
            }
        });
        if let Err(thrown) = called {
            let f = self.on_end.to_inner(cx);
            let this = cx.undefined();
            let _ = cx.try_catch(|cx| f.call(cx, this, [thrown]));
        }
    }
}

/// Where a call's reply goes: the Promise the call returned (`ready`, `post`), or the listener (`next`).
pub(crate) enum Answer {
    Promise(Deferred),
    Listener(&'static Listener),
}

impl Answer {
    /// Gives `reply` to JavaScript from any thread, through `channel`.
    pub(crate) fn send(self, channel: &Channel, reply: Reply) {
        match self {
            Answer::Promise(deferred) => {
                deferred.settle_with(channel, move |mut cx| reply.into_js(&mut cx));
            }
            Answer::Listener(listener) => {
                channel.send(move |mut cx| {
                    listener.deliver(&mut cx, reply);
                    Ok(())
                });
            }
        }
    }
}

/// Why a call failed, as JavaScript sees it (`err.code`).
#[derive(Clone, Copy)]
pub(crate) enum Failure {
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
pub(crate) enum Reply {
    Done,
    Invocation {
        request_id: String,
        /// The event as the platform sent it (UTF-8 checked on the JS thread, without a copy).
        event: bytes::Bytes,
        remaining_ms: f64,
        /// The context's fields that come with each invocation (besides the request id).
        memory_limit_in_mb: u32,
        time_limit_in_ms: u64,
        /// The context's other fields, the instance's own, as the JSON of an [`InvocationContext`] whose per-invocation
        /// fields are empty: sent with the first invocation and again only if they change, so JavaScript parses
        /// them once per instance instead of the whole context per invocation.
        shared: Option<String>,
    },
    Failed {
        message: String,
        failure: Failure,
    },
}

pub(crate) fn failed(e: &ShimError) -> Reply {
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
pub(crate) static PANIC_ON_NEXT_POST: AtomicBool = AtomicBool::new(false);

/// The worker thread: owns the runtime, serves calls in order.
pub(crate) struct Worker {
    runtime: Runtime,
    timings: Option<std::fs::File>,
    arrived: Instant,
    /// Set once the worker panicked: the runtime's state is unknown, every later call is refused.
    poisoned: Option<String>,
    /// Why JavaScript's thread could not write an outcome itself ([`Worker::send_outcome`]): the answer of the
    /// `next` that follows.
    refused: Option<Reply>,
    /// The context's per-instance fields last sent to JavaScript ([`Reply::Invocation`]'s `shared`).
    shared: Option<InvocationContext>,
    /// Whether the worker has served a call since JavaScript's thread last waited on the socket: it may have
    /// reconnected meanwhile ([`Worker::served`]).
    served: bool,
}

/// Locks the worker's state (a panic while it was held is already recorded in `poisoned`).
pub(crate) fn lock(worker: &Mutex<Worker>) -> std::sync::MutexGuard<'_, Worker> {
    worker
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The worker thread: serves calls in order, holding the worker's state only while it runs one.
fn serve(worker: &Mutex<Worker>, calls: &mpsc::Receiver<Call>) {
    while let Ok(Call {
        command,
        answer,
        channel,
    }) = calls.recv()
    {
        let reply = lock(worker).run(command);
        answer.send(&channel, reply);
        // `channel` drops here: once its closure has run, the event loop is free to drain again.
    }
}

/// How far [`Worker::next_now`] got.
pub(crate) enum Now {
    /// The `next`'s reply: an invocation, or why there is none.
    Reply(Reply),
    /// The platform's answer is not all here yet.
    Wait,
    /// The rest needs the worker's blocking read.
    Blocking,
}

/// What the worker's thread sends once it has started: its configuration and state, or why it could not.
pub(crate) type Opened = Result<(Config, Arc<Mutex<Worker>>), String>;

/// Starts the worker's thread, which reads the configuration and connects, then serves the calls sent on the
/// returned sender; its start is reported on the returned receiver.
pub(crate) fn start() -> std::io::Result<(mpsc::Sender<Call>, mpsc::Receiver<Opened>)> {
    let (calls_tx, calls_rx) = mpsc::channel::<Call>();
    let (opened_tx, opened_rx) = mpsc::sync_channel::<Opened>(1);
    thread::Builder::new()
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
                        shared: None,
                        served: true,
                    }));
                    if opened_tx.send(Ok((config, worker.clone()))).is_ok() {
                        serve(&worker, &calls_rx);
                    }
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e.to_string()));
                }
            }
        })?;
    Ok((calls_tx, opened_rx))
}

/// Sends `call` to the worker; if the worker has ended, answers it with that failure.
pub(crate) fn hand_over(calls: &mpsc::Sender<Call>, call: Call) {
    if let Err(mpsc::SendError(call)) = calls.send(call) {
        let reply = Reply::Failed {
            message: "scf-sdk: the runtime API thread has ended".to_owned(),
            failure: Failure::Internal,
        };
        call.answer.send(&call.channel, reply);
    }
}

impl Worker {
    /// On JavaScript's thread, while the worker is idle: the `next` as far as it gets with the answers already
    /// here ([`Runtime::next_now`]; `readable`: whether to read the socket too), under `catch_unwind` as the
    /// worker's own calls are.
    pub(crate) fn next_now(&mut self, readable: bool) -> Now {
        if let Some(message) = &self.poisoned {
            return Now::Reply(Reply::Failed {
                message: message.clone(),
                failure: Failure::Internal,
            });
        }
        if let Some(refused) = self.refused.take() {
            return Now::Reply(refused);
        }
        match catch_unwind(AssertUnwindSafe(|| self.runtime.next_now(readable))) {
            Ok(Ok(Progress::Invocation(inv))) => {
                self.arrived = Instant::now();
                Now::Reply(self.invocation_reply(*inv))
            }
            Ok(Ok(Progress::Wait)) => Now::Wait,
            Ok(Ok(Progress::Blocking)) => Now::Blocking,
            Ok(Err(e)) => Now::Reply(failed(&e)),
            Err(payload) => Now::Reply(self.panicked(payload.as_ref())),
        }
    }

    /// The runtime API's socket, if connected.
    pub(crate) fn socket(&self) -> Option<std::os::fd::RawFd> {
        self.runtime.socket()
    }

    /// Whether the worker has served a call since the last time this was asked: the connection may then be
    /// another one even if its descriptor has the same number (the poller watches it anew).
    pub(crate) fn served(&mut self) -> bool {
        std::mem::take(&mut self.served)
    }

    /// Runs one call, under `catch_unwind`.
    fn run(&mut self, command: Command) -> Reply {
        self.served = true;
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
    pub(crate) fn send_outcome(&mut self, outcome: Outcome) {
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
                    self.invocation_reply(inv)
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

impl Worker {
    /// The reply to JavaScript for `inv`: its per-invocation fields, and the context's per-instance fields
    /// only when they differ from those sent before.
    fn invocation_reply(&mut self, inv: Invocation) -> Reply {
        let mut context = inv.context;
        let memory_limit_in_mb = std::mem::take(&mut context.memory_limit_in_mb);
        let time_limit_in_ms = std::mem::take(&mut context.time_limit_in_ms);
        context.request_id.clear();
        let shared = if self.shared.as_ref() == Some(&context) {
            None
        } else {
            let json = context.to_json();
            self.shared = Some(context);
            Some(json)
        };
        Reply::Invocation {
            remaining_ms: inv
                .deadline
                .saturating_duration_since(Instant::now())
                .as_secs_f64()
                * 1000.0,
            memory_limit_in_mb,
            time_limit_in_ms,
            shared,
            request_id: inv.request_id,
            event: inv.event,
        }
    }
}

impl Reply {
    /// The reply as a promise's value: `undefined`, or the failure thrown. An invocation is a `next`'s answer,
    /// which goes to the [`Listener`], never to a promise: it is refused as an internal error.
    pub(crate) fn into_js<'a>(self, cx: &mut TaskContext<'a>) -> JsResult<'a, JsValue> {
        match self {
            Reply::Done => Ok(cx.undefined().upcast()),
            Reply::Invocation { .. } => Reply::Failed {
                message: "scf-sdk: an invocation was answered to a promise, not to the listener"
                    .to_owned(),
                failure: Failure::Internal,
            }
            .into_js(cx),
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
