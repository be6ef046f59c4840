'use strict';
// One invocation of a resolved handler: builds the Node context, calls the handler in every style Node
// authors use, and decides the outcome, the same way in production (bootstrap.js) and in the local
// `invoke()` helper.
//
// Styles:
// - returns a thenable (async function): its settlement is the result; a rejection is UnhandledError;
// - declares a third parameter (`(event, context, callback)`): waits for `callback(err, result)` or
//   `context.succeed/fail/done`. `callback(null, r)` with `context.callbackWaitsForEmptyEventLoop` (default
//   true) answers once the event loop has drained, false answers at once; `callback(err)` and
//   `context.*` answer at once (as the AWS client does);
// - otherwise (sync function): its return value is the result, unless it already answered through
//   `context.*`; `undefined` becomes `null`.
// A promise that never settles, or a callback never called, once the loop is empty → UnhandledError (its
// stackTrace says which).

const errors = require('./errors');
const util = require('node:util');

/** The outcome of an invocation: a JSON body, or a classified error. */
/** @typedef {{body: string} | {error: import('./errors').FunctionError}} Outcome */

function isThenable(v) {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function';
}

function handledTrace(value) {
  if (typeof value === 'string') return value;
  if (value instanceof Error || (value && typeof value === 'object' && typeof value.stack === 'string')) {
    return errors.traceOf(value);
  }
  return util.inspect(value, { depth: 4, breakLength: Infinity });
}

/**
 * Serialises a result as the platform does (`JSON.stringify(x ?? null)`); a value with no JSON form is a
 * MarshalError naming the type.
 * @returns {Outcome}
 */
function marshal(value) {
  let body;
  try {
    body = JSON.stringify(value === undefined ? null : value);
  } catch (e) {
    const detail = String(e && e.message ? e.message : e).replace(/\s*\n\s*/g, ' ');
    return { error: errors.marshal(detail) };
  }
  if (body === undefined) {
    return { error: errors.marshal(`Object of type ${typeof value} is not JSON serializable`) };
  }
  return { body };
}

/**
 * The context handed to handlers: the core's fields as own (enumerable) properties, so `JSON.stringify(context)`
 * and `Object.keys(context)` show exactly the platform's fields; Node's methods live on the prototype. The
 * methods are bound on first access, so `promise.then(context.succeed, context.fail)` works.
 */
class Context {
  #inv;
  #bound = null;

  /**
   * @param {Invocation} inv
   * @param {object} fields the eleven fields, copied one by one in the platform's order: every context has the
   *   same shape from the start (an `Object.assign` grew each one field by field, the largest cost of
   *   building it).
   */
  constructor(inv, fields) {
    this.memory_limit_in_mb = fields.memory_limit_in_mb;
    this.time_limit_in_ms = fields.time_limit_in_ms;
    this.request_id = fields.request_id;
    this.environment = fields.environment;
    this.environ = fields.environ;
    this.function_version = fields.function_version;
    this.function_name = fields.function_name;
    this.namespace = fields.namespace;
    this.tencentcloud_region = fields.tencentcloud_region;
    this.tencentcloud_appid = fields.tencentcloud_appid;
    this.tencentcloud_uin = fields.tencentcloud_uin;
    this.#inv = inv;
  }

  get callbackWaitsForEmptyEventLoop() {
    return this.#inv.waits;
  }

  set callbackWaitsForEmptyEventLoop(v) {
    this.#inv.waits = !!v;
  }

  #methods() {
    const inv = this.#inv;
    this.#bound ??= {
      getRemainingTimeInMillis: () => Math.max(0, Math.round(inv.deadline - Date.now())),
      done: (err, result) => inv._done(err, result),
      succeed: (result) => inv._done(null, result),
      fail: (err) => inv._done(err ?? new Error('context.fail() was called without an error')),
    };
    return this.#bound;
  }

  get getRemainingTimeInMillis() {
    return this.#methods().getRemainingTimeInMillis;
  }

  get done() {
    return this.#methods().done;
  }

  get succeed() {
    return this.#methods().succeed;
  }

  get fail() {
    return this.#methods().fail;
  }
}

class Invocation {
  /**
   * @param {{fn: Function, thisArg?: any}} handler
   * @param {any} event the parsed event
   * @param {object} fields the eleven context fields (parsed from the core's Context JSON)
   * @param {number} deadline epoch ms at which the platform times the invocation out
   * @param {{canWaitForDrain?: boolean}} [opts] whether `drained()` will be called (production)
   */
  constructor(handler, event, fields, deadline, opts = {}) {
    this.handler = handler;
    this.event = event;
    this.deadline = deadline;
    this.canWaitForDrain = opts.canWaitForDrain !== false;
    this.settled = false;
    this.mode = 'sync';
    this.waitingForDrain = false;
    this.pendingResult = undefined;
    this._resolve = null;
    this.waits = true; // context.callbackWaitsForEmptyEventLoop
    this.context = new Context(this, fields);
  }

  /** `callback(err, result)`, `context.done(err, result)`: an error fails, anything else succeeds. */
  _done(err, result) {
    if (err !== undefined && err !== null) this._fail('HandledError', err);
    else this._succeed(result);
  }

  _callback(err, result) {
    if (this.settled) return;
    if (err !== undefined && err !== null) return this._fail('HandledError', err);
    if (this.canWaitForDrain && this.waits) {
      this.waitingForDrain = true;
      this.pendingResult = result;
      return undefined;
    }
    return this._succeed(result);
  }

  _settle(outcome) {
    if (this.settled) return;
    this.settled = true;
    this.waitingForDrain = false;
    if (this._resolve) this._resolve(outcome);
  }

  _succeed(value) {
    if (!this.settled) this._settle(marshal(value));
  }

  _fail(kind, err) {
    if (this.settled) return;
    const trace = kind === 'HandledError' ? handledTrace(err) : errors.traceOf(err);
    this._settle({ error: errors.user(kind, trace) });
  }

  /** An uncaught exception or unhandled rejection while this invocation runs. */
  uncaught(err) {
    this._fail('UnhandledError', err);
  }

  /** Settles with an arbitrary classified error (e.g. a timeout in the local helper). */
  abort(functionError) {
    this._settle({ error: functionError });
  }

  /**
   * The event loop has nothing left to do (production: `process.on('beforeExit')`). Posts a result a callback
   * left waiting, or classifies a handler that can no longer answer.
   */
  drained() {
    if (this.settled) return;
    if (this.waitingForDrain) {
      this._succeed(this.pendingResult);
      return;
    }
    const why =
      this.mode === 'promise'
        ? "The handler's promise never settled and the event loop is empty: nothing is left that could settle it"
        : 'The handler never called its callback (or context.succeed/fail/done) and the event loop is empty';
    this._settle({ error: errors.user('UnhandledError', why) });
  }

  /**
   * Calls the handler; `onSettled(outcome)` is called once with its outcome: during the call when it answers
   * then (a sync handler, a callback or `context.*` that need not wait for the loop, a throw), else later.
   * @param {(outcome: Outcome) => void} onSettled
   */
  start(onSettled) {
    this._resolve = onSettled;
    this.call();
  }

  /**
   * Calls the handler.
   * @returns {Promise<Outcome>}
   */
  run() {
    return new Promise((resolve) => this.start(resolve));
  }

  /** Calls the handler and follows what it returned (the styles above). */
  call() {
    const { fn, thisArg } = this.handler;
    let returned;
    try {
      returned = fn.call(thisArg, this.event, this.context, (err, result) => this._callback(err, result));
    } catch (e) {
      this._fail('UnhandledError', e);
      return;
    }
    if (this.settled) return;
    if (isThenable(returned)) {
      this.mode = 'promise';
      try {
        returned.then(
          // A callback that already gave a result wins over the promise's (usually undefined) value.
          (v) => this._succeed(this.waitingForDrain && v === undefined ? this.pendingResult : v),
          (e) => this._fail('UnhandledError', e),
        );
      } catch (e) {
        this._fail('UnhandledError', e);
      }
    } else if (fn.length >= 3) {
      this.mode = 'callback';
    } else if (!this.waitingForDrain) {
      this._succeed(returned);
    }
  }
}

module.exports = { Invocation, Context, marshal, isThenable };
