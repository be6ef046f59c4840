'use strict';
// The error taxonomy as seen from JavaScript: kind names, status codes and canonical messages.
// The Rust core (crate scf-protocol, src/error.rs) is the truth; this file mirrors it so that the local
// `invoke()` helper classifies exactly as production does even where the add-on is not built. In
// production the caller-visible body is always rendered by the core (`FunctionError::to_body`).

const util = require('node:util');

/** errorType name → statusCode (scf-protocol `ErrorKind`). */
const STATUS = Object.freeze({
  HandledError: 430,
  UnhandledError: 430,
  MarshalError: 430,
  ConcurrencyLimit: 432,
  Timeout: 433,
  MemoryLimitExceeded: 434,
  FunctionNotFound: 435,
  InvalidParameter: 436,
  HandlerNotFound: 437,
  ProcessExit: 439,
  ModuleNotFound: 443,
  MalformedHandler: 443,
  HandlerNotCallable: 443,
  SyntaxError: 443,
  InitError: 443,
  InitTimeout: 450,
  InvalidEvent: 400,
  RequestTooLarge: 406,
  ResponseTooLarge: 407,
  InternalError: 500,
});

const USER_CODE_EXCEPTION = 'user code exception caught';
const RESPONSE_TOO_LARGE_MESSAGE = 'The size of response exceeds the upper limit (6MB)';
const MAX_RESPONSE_BYTES = 6 * 1024 * 1024;

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
    this.statusCode = STATUS[kind] ?? 500;
    this.stackTrace = stackTrace ?? '';
  }
}

const user = (kind, stackTrace) => new FunctionError(kind, USER_CODE_EXCEPTION, stackTrace);
const handlerNotFound = (name, stack = '') =>
  new FunctionError('HandlerNotFound', `'module' object has no attribute '${name}'`, stack);
const moduleNotFound = (name, stack = '') =>
  new FunctionError('ModuleNotFound', `global name '${name}' is not defined`, stack);
const malformedHandler = (handler, why) =>
  new FunctionError('MalformedHandler', `Bad handler '${handler}': ${why}`, '');
const marshal = (detail) => new FunctionError('MarshalError', `Unable to marshal response: ${detail}`, '');
const responseTooLarge = (len) =>
  new FunctionError(
    'ResponseTooLarge',
    RESPONSE_TOO_LARGE_MESSAGE,
    `response of ${len} bytes; the limit is ${MAX_RESPONSE_BYTES} bytes`,
  );
const timeout = (secs) => new FunctionError('Timeout', `Invoking task timed out after ${secs} seconds`, '');

const path = require('node:path');

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

/** Go's encoding/json escaping (scf-protocol json.rs), for the fallback body below. */
function goString(s) {
  return JSON.stringify(String(s)).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The caller-visible body, byte-identical to `FunctionError::to_body` (used only when the add-on is absent).
 * @param {FunctionError} err
 * @param {string} requestId
 */
function toBody(err, requestId) {
  return (
    `{"errorCode":-1,"errorMessage":${goString(err.message)},"errorType":${goString(err.kind)},` +
    `"requestId":${goString(requestId)},"stackTrace":${goString(err.stackTrace)},"statusCode":${STATUS[err.kind] ?? 500}}`
  );
}

module.exports = {
  STATUS,
  USER_CODE_EXCEPTION,
  MAX_RESPONSE_BYTES,
  FunctionError,
  user,
  handlerNotFound,
  moduleNotFound,
  malformedHandler,
  marshal,
  responseTooLarge,
  timeout,
  traceOf,
  trimRuntimeFrames,
  toBody,
};
