'use strict';
// Errors as JavaScript sees them. The taxonomy itself (kinds, status codes, canonical messages, the body and
// its escaping) is the Rust core's and comes from the add-on; what is here is JavaScript's own: an Error
// class to throw and catch, and the language-native `stackTrace` (a thrown value's trace, the SDK's own frames
// trimmed).

const path = require('node:path');
const util = require('node:util');
const native = require('./native').load();

/** errorType name → statusCode, from the core. */
const STATUS = native.KINDS;

/**
 * A classified failure: what crosses into the core as (kind, message, stack).
 */
class FunctionError extends Error {
  /**
   * @param {string} kind errorType name
   * @param {string} message errorMessage
   * @param {string} stackTrace language-native trace ('' when none)
   */
  constructor(kind, message, stackTrace) {
    super(message);
    this.name = 'FunctionError';
    this.kind = kind;
    this.statusCode = STATUS[kind] ?? STATUS.InternalError;
    this.stackTrace = stackTrace ?? '';
  }

  /** A FunctionError from the core's `{kind, message, stackTrace}`. */
  static from(e) {
    return new FunctionError(e.kind, e.message, e.stackTrace);
  }
}

// The canonical errors, worded by the core.
const user = (kind, stackTrace) => FunctionError.from(native.userError(kind, stackTrace));
const handlerNotFound = (name) => FunctionError.from(native.handlerNotFound(name));
const handlerNotCallable = (name, module, what) => FunctionError.from(native.handlerNotCallable(name, module, what));
const moduleNotFound = (name, stack = '') => {
  const e = FunctionError.from(native.moduleNotFound(name));
  e.stackTrace = stack;
  return e;
};
const marshal = (detail) => FunctionError.from(native.marshalError(detail));
const timeout = (secs) => FunctionError.from(native.timeout(secs));

const SDK = path.resolve(__dirname, '..');
const RUNTIME_FILES = [path.join(SDK, 'lib') + path.sep, path.join(SDK, 'bootstrap.js'), path.join(SDK, 'index.js')];

/**
 * Drops the frames below user code: everything from the first frame in the SDK's own files on (the
 * call from the invoker, `new Promise`, the bootstrap's loop) says nothing about the user's error.
 * @param {string} stack
 */
function trimRuntimeFrames(stack) {
  const lines = stack.split('\n');
  const cut = lines.findIndex((l) => /^\s+at /.test(l) && RUNTIME_FILES.some((f) => l.includes(f)));
  return cut > 0 ? lines.slice(0, cut).join('\n') : stack;
}

/**
 * A readable trace for any thrown value: an Error's own stack; for anything else (a string, an object,
 * undefined) the way Node itself reports an uncaught non-Error ("Uncaught 'boom'").
 * @param {unknown} value
 * @returns {string}
 */
function traceOf(value) {
  if (value instanceof Error || (value && typeof value === 'object' && typeof value.stack === 'string')) {
    if (typeof value.stack === 'string' && value.stack.length > 0) return trimRuntimeFrames(value.stack);
    return `${value.name ?? 'Error'}: ${value.message ?? ''}`;
  }
  return `Uncaught ${util.inspect(value, { depth: 4, breakLength: Infinity })}`;
}

/** Anything thrown while loading a function, as a FunctionError (InitError unless already classified). */
function asLoadError(e) {
  return e instanceof FunctionError ? e : new FunctionError('InitError', String(e), traceOf(e));
}

module.exports = {
  STATUS,
  MAX_RESPONSE_BYTES: native.MAX_RESPONSE_BYTES,
  FunctionError,
  user,
  handlerNotFound,
  handlerNotCallable,
  moduleNotFound,
  marshal,
  timeout,
  traceOf,
  trimRuntimeFrames,
  asLoadError,
};
