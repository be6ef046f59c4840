'use strict';
// scf-sdk: the Node SDK for SCF-style functions.
// - `invoke(handler, event, context?, options?)`: run a handler locally through production's path (the same
//   loader and invoker as the bootstrap, and the core's outcome rule and error bodies, from the add-on);
// - `apiGatewayResponse(body, options?)`: the API Gateway trigger's response shape;
// - the error taxonomy (`ErrorKinds`, `InvokeError`).
// Types: index.d.ts (CommonJS) and index.d.mts (ES module).

const crypto = require('node:crypto');
const path = require('node:path');
const errors = require('./lib/errors');
const { loadHandler } = require('./lib/handler');
const { Invocation } = require('./lib/invocation');
const { apiGatewayResponse } = require('./lib/apigw');
const native = require('./lib/native').load();

/** A failed local invocation: the same errorType, statusCode and body production would give. */
class InvokeError extends Error {
  constructor(outcome) {
    super(`${outcome.errorType} (${outcome.statusCode}): ${outcome.errorMessage}`);
    this.name = 'InvokeError';
    this.errorType = outcome.errorType;
    this.statusCode = outcome.statusCode;
    this.errorMessage = outcome.errorMessage;
    this.stackTrace = outcome.stackTrace;
    this.requestId = outcome.requestId;
    this.body = outcome.body;
  }
}

/** The eleven context fields with local defaults, overridden by `overrides`. */
function defaultContext(overrides = {}) {
  const namespace = overrides.namespace ?? 'default';
  const [environment, environ] = native.encodeEnvironment([['SCF_NAMESPACE', namespace]]);
  return {
    memory_limit_in_mb: 128,
    time_limit_in_ms: 3000,
    request_id: crypto.randomUUID(),
    environment,
    environ,
    function_version: '$LATEST',
    function_name: 'local',
    namespace,
    tencentcloud_region: 'ap-guangzhou',
    tencentcloud_appid: '',
    tencentcloud_uin: '',
    ...overrides,
  };
}

/** What the caller of production gets for this outcome (the core's rule: the 6 MB limit, the error body). */
function settled(requestId, eventText, outcome) {
  const r = native.settle(requestId, eventText, ...outcome);
  if (r.ok) return { ok: true, statusCode: 200, body: r.body, requestId };
  return {
    ok: false,
    statusCode: r.statusCode,
    body: r.body,
    requestId,
    errorType: r.kind,
    errorMessage: r.message,
    stackTrace: r.stackTrace,
  };
}

const failed = (e) => ['fail', e.kind, e.message, e.stackTrace];

/**
 * Runs a handler once and reports what the caller would see.
 * @returns {Promise<{ok: boolean, statusCode: number, body: string, requestId: string,
 *   errorType?: string, errorMessage?: string, stackTrace?: string}>}
 */
async function invokeRaw(handler, event, context = {}, options = {}) {
  const fields = defaultContext(context);
  const requestId = fields.request_id;

  // The event crosses as JSON text, as in production.
  let text;
  if (options.eventText !== undefined) {
    text = String(options.eventText);
  } else {
    text = JSON.stringify(event === undefined ? null : event);
    if (text === undefined) throw new TypeError('invoke(): the event has no JSON form');
  }

  let resolved;
  if (typeof handler === 'function') {
    resolved = { fn: handler, thisArg: undefined };
  } else {
    try {
      resolved = await loadHandler(path.resolve(options.codeRoot ?? process.cwd()), handler);
    } catch (e) {
      return settled(requestId, text, failed(errors.asLoadError(e)));
    }
  }

  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return settled(requestId, text, ['fail', 'InvalidEvent', String(e.message), '']);
  }

  const limitMs = options.timeoutMs ?? fields.time_limit_in_ms;
  const inv = new Invocation(resolved, parsed, fields, Date.now() + limitMs, { canWaitForDrain: false });
  const timer = setTimeout(() => inv.abort(errors.timeout(limitMs / 1000)), limitMs);
  let outcome;
  try {
    outcome = await inv.run();
  } finally {
    clearTimeout(timer);
  }
  return settled(requestId, text, outcome.error ? failed(outcome.error) : ['respond', outcome.body]);
}

/**
 * Runs a handler once, locally, exactly as production marshals and classifies it.
 * Resolves to the result as the caller would decode it (`JSON.parse` of the body); rejects with an
 * InvokeError carrying errorType, statusCode, errorMessage, stackTrace and the caller-visible body.
 * @param {Function|string} handler a function, or a handler string ("index.main_handler", see options.codeRoot)
 * @param {unknown} event
 * @param {object} [context] context fields to override
 * @param {{codeRoot?: string, timeoutMs?: number, eventText?: string}} [options]
 */
async function invoke(handler, event, context, options) {
  const r = await invokeRaw(handler, event, context, options);
  if (!r.ok) throw new InvokeError(r);
  return JSON.parse(r.body);
}

module.exports = {
  invoke,
  invokeRaw,
  InvokeError,
  apiGatewayResponse,
  defaultContext,
  ErrorKinds: errors.STATUS,
};
