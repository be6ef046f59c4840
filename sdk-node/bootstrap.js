'use strict';
// The Node host's entry point. `scf-shim` execs `node <this file>` (same process, same environment); this
// file loads the Rust core as a neon add-on, whose worker thread drives the invocation core (ready, the
// load-error replay, the context, results and their classification). What is left here is JavaScript's own:
//   open (InitRuntime ends) → load the handler (InitFunction) → ready → [next → run it in JS → outcome] …
// Events and results cross the add-on boundary as JSON text; JSON.parse/JSON.stringify run here, in V8.

// The host gave `node` the heap's sizes for this instance's memory in NODE_OPTIONS (scf-shim,
// `shim/src/host/node.rs`); the function's own NODE_OPTIONS (none when empty) is what its code and its child
// processes see.
if (process.env._SCF_NODE_OPTIONS !== undefined) {
  if (process.env._SCF_NODE_OPTIONS) process.env.NODE_OPTIONS = process.env._SCF_NODE_OPTIONS;
  else delete process.env.NODE_OPTIONS;
  delete process.env._SCF_NODE_OPTIONS;
}

const native = require('./lib/native').load();
// The worker starts reading the configuration and connecting now, while the rest of the bootstrap loads;
// `config` waits for it (and throws what went wrong).
const rt = native.open();
const logging = require('./lib/logging');
// `./lib/errors` and `./lib/invocation` are loaded when first needed (a load error, the first invocation), not
// before the ready: fewer modules on the cold start's path.
const errors = () => require('./lib/errors');
const { loadHandler } = require('./lib/handler');

/** The invocation running now (null between invocations). */
let current = null;
/** Set when user code crashed the instance: exit once the error is posted. */
let exitAfterPost = false;

function fatalOutsideInvocation(what, err) {
  console.error(`${what} outside an invocation; the instance exits so the platform replaces it:\n${errors().traceOf(err)}`);
  process.exit(1);
}

function onFatal(what, err) {
  if (current && !current.settled) {
    exitAfterPost = true;
    current.uncaught(err);
  } else {
    fatalOutsideInvocation(what, err);
  }
}

async function main() {
  const config = native.config(rt);
  logging.install();
  logging.blockingStdioOnFirstUse();
  process.on('uncaughtException', (err) => onFatal('Uncaught exception', err));
  process.on('unhandledRejection', (reason) => onFatal('Unhandled promise rejection', reason));
  process.on('beforeExit', () => {
    if (current) current.drained();
  });

  let handler = null;
  let loadError = null;
  const t0 = process.hrtime.bigint();
  try {
    handler = await loadHandler(config.codeRoot, config.handler);
  } catch (e) {
    loadError = errors().asLoadError(e);
  }
  const initFunctionMs = Number(process.hrtime.bigint() - t0) / 1e6;
  // With a load error the core answers every invocation itself: `next` below then never resolves.
  const readied = native.ready(rt, initFunctionMs, ...(loadError ? [loadError.kind, loadError.message, loadError.stackTrace] : []));
  // What only invocations need is loaded while the worker posts the ready.
  const { Invocation } = require('./lib/invocation');
  await readied;

  // The outcome of an invocation travels with the next long poll (`native.next(rt, kind, …)`): the add-on
  // writes it with the `next` behind it, and the platform's answer wakes this thread once per invocation. The
  // answer calls `onInvocation` (registered once with `native.listen`) with plain arguments: no promise to
  // settle, no array to build and take apart, no function to resume between an outcome and its post.
  // The context's per-instance fields come with the first invocation (and again only if they change): parsed
  // once, and copied into each invocation's context with its own request id, memory and time limit.
  // The post waits one microtask: what the handler queued before it answered (a sync handler's
  // `Promise.resolve().then(log)`, say) runs first and belongs to its invocation, as it would behind an `await`
  // of the handler's value.
  let shared = null;
  const onInvocation = (requestId, eventText, remainingMs, memoryLimitInMb, timeLimitInMs, sharedJson) => {
    try {
      if (sharedJson !== undefined) shared = JSON.parse(sharedJson);
      logging.setRequestId(requestId);
      let event;
      try {
        if (eventText === null) throw new Error('the event is not UTF-8');
        event = JSON.parse(eventText);
      } catch (e) {
        native.next(rt, 'fail', 'InvalidEvent', String(e && e.message), ''); // the core words the message
        return;
      }
      shared.request_id = requestId;
      shared.memory_limit_in_mb = memoryLimitInMb;
      shared.time_limit_in_ms = timeLimitInMs;
      current = new Invocation(handler, event, shared, Date.now() + remainingMs);
      current.start(settled);
    } catch (e) {
      broken(e);
    }
  };
  // A reaction of a promise already resolved: the same queue and the same turn as `queueMicrotask`, without
  // its async resource (an async id, a bound function and an async scope per invocation).
  const resolved = Promise.resolve();
  const settled = (done) => {
    resolved.then(() => finish(done));
  };
  const finish = (done) => {
    try {
      current = null;
      const e = done.error;
      if (exitAfterPost) {
        exitOncePosted(e ? ['fail', e.kind, e.message, e.stackTrace] : ['respond', done.body]);
        return;
      }
      if (e) native.next(rt, 'fail', e.kind, e.message, e.stackTrace);
      else native.next(rt, 'respond', done.body);
    } catch (e) {
      broken(e);
    }
  };
  native.listen(rt, onInvocation, end);
  native.next(rt);
}

/** User code crashed the instance during an invocation: post its error (`outcome`), then exit. */
function exitOncePosted(outcome) {
  native
    .post(rt, ...outcome)
    .catch((err) => {
      if (err && err.code !== 'SCF_DISCONNECTED') process.stderr.write(`scf-sdk bootstrap: posting the result failed: ${err.message}\n`);
    })
    .then(() => {
      console.error('Uncaught exception during the invocation: the error was reported and the instance exits');
      process.exit(1);
    });
}

/** The add-on's worker cannot go on: the platform went away (exit 0), or it broke the protocol or the worker
 * panicked (the core has reported what it could; exit 1 so the platform replaces the instance). */
function end(e) {
  if (e && e.code === 'SCF_DISCONNECTED') process.exit(0);
  process.stderr.write(`scf-sdk bootstrap: ${e && e.message}\n`);
  process.exit(1);
}

/** The bootstrap itself failed (not user code, which is classified): exit 1. */
function broken(e) {
  process.stderr.write(`scf-sdk bootstrap: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
}

main().catch(broken);
