'use strict';
// The Node host's entry point. `scf-shim` execs `node <this file>` (same process, same environment);
// this file loads the Rust core as a neon add-on and runs the instance loop:
//   open (InitRuntime ends) → load the handler (InitFunction) → ready → next → invoke → respond/fail → next …
// Events and results cross the add-on boundary as JSON text; JSON.parse/JSON.stringify run here, in V8.

const native = require('./lib/native').load();
const logging = require('./lib/logging');
const errors = require('./lib/errors');
const { loadHandler } = require('./lib/handler');
const { Invocation } = require('./lib/invocation');

/** The invocation running now (null between invocations). */
let current = null;
/** Set when user code crashed the instance: exit once the error is posted. */
let exitAfterPost = false;

function fatalOutsideInvocation(what, err) {
  console.error(`${what} outside an invocation; the instance exits so the platform replaces it:\n${errors.traceOf(err)}`);
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
  const rt = native.open();
  const config = native.config(rt);
  logging.install();
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
    loadError = e instanceof errors.FunctionError ? e : new errors.FunctionError('InitError', String(e), errors.traceOf(e));
  }
  const initFunctionMs = Number(process.hrtime.bigint() - t0) / 1e6;
  await native.ready(rt, initFunctionMs);

  // The outcome of an invocation travels with the next long poll (`native.next(rt, ...post)`): the worker
  // thread posts it first, then waits for the next event, so the JS thread is woken once per invocation.
  let post = [];
  for (;;) {
    let next;
    try {
      next = await native.next(rt, ...post);
    } catch (e) {
      if (e && e.code !== 'SCF_DISCONNECTED') process.stderr.write(`scf-sdk bootstrap: ${e.message}\n`);
      process.exit(e && e.code === 'SCF_DISCONNECTED' ? 0 : 1); // the platform went away: nothing more to serve
    }
    post = [];
    const [requestId, eventText, contextJson, remainingMs, postError] = next;
    if (postError !== undefined) reportPostFailure({ message: postError });
    logging.setRequestId(requestId);
    if (loadError) {
      post = ['fail', loadError.kind, loadError.message, loadError.stackTrace];
      continue;
    }
    let event;
    try {
      if (eventText === null) throw new Error('not UTF-8');
      event = JSON.parse(eventText);
    } catch {
      post = ['fail', 'InvalidEvent', '', '']; // the core derives the canonical message
      continue;
    }
    const inv = new Invocation(handler, event, JSON.parse(contextJson), Date.now() + remainingMs);
    current = inv;
    const outcome = await inv.run();
    current = null;
    const e = outcome.error;
    post = e ? ['fail', e.kind, e.message, e.stackTrace] : ['respond', outcome.body];
    if (exitAfterPost) {
      await (e ? native.fail(rt, e.kind, e.message, e.stackTrace) : native.respond(rt, outcome.body)).catch(reportPostFailure);
      console.error('Uncaught exception during the invocation: the error was reported and the instance exits');
      process.exit(1);
    }
  }
}

function reportPostFailure(e) {
  if (e && e.code === 'SCF_DISCONNECTED') return; // the next long poll sees it too and ends the loop
  process.stderr.write(`scf-sdk bootstrap: posting the result failed: ${e && e.message}\n`);
}

main().catch((e) => {
  process.stderr.write(`scf-sdk bootstrap: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
