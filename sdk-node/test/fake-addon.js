'use strict';
// A stand-in for the neon add-on (index.node) with the same functions, for testing bootstrap.js in pure JS.
// Events come from FAKE_EVENTS (a JSON array of event texts); every post is printed as "@@POST <json>".
const events = JSON.parse(process.env.FAKE_EVENTS || '[]');
let n = 0;
let current = null;
const write = (o) => process.stdout.write(`@@POST ${JSON.stringify(o)}\n`);
const later = (fn) => new Promise((resolve, reject) => setImmediate(() => { try { resolve(fn()); } catch (e) { reject(e); } }));

exports.open = () => ({});
exports.config = () => ({ handler: process.env.FAKE_HANDLER, runtime: 'nodejs', codeRoot: process.env.FAKE_CODE_ROOT });
exports.ready = (h, ms) => later(() => write({ type: 'ready', initFunctionMs: typeof ms }));
// Out of events: like a long poll that ends when the platform goes away (after FAKE_LINGER_MS).
const linger = () => new Promise((resolve, reject) =>
  setTimeout(() => reject(Object.assign(new Error('no more events'), { code: 'SCF_DISCONNECTED' })), Number(process.env.FAKE_LINGER_MS || 200)));
// With post arguments, next first posts the previous outcome (as the add-on does).
const post = (kind, a, b, c) => {
  if (kind === 'respond') write({ type: 'response', id: current, body: a });
  else if (kind === 'fail') write({ type: 'error', id: current, kind: a, message: b, stack: c });
};
exports.next = (h, kind, a, b, c) =>
  later(() => post(kind, a, b, c)).then(() => n >= events.length ? linger() : later(() => {
    const id = `req-${++n}`;
    current = id;
    const ctx = { memory_limit_in_mb: 128, time_limit_in_ms: 3000, request_id: id, environment: '{}', environ: '',
      function_version: '$LATEST', function_name: 'fake', namespace: 'default', tencentcloud_region: 'r',
      tencentcloud_appid: '1', tencentcloud_uin: '2' };
    return [id, events[n - 1], JSON.stringify(ctx), 3000];
  }));
exports.respond = (h, body) => later(() => write({ type: 'response', id: current, body }));
exports.fail = (h, kind, message, stack) => later(() => write({ type: 'error', id: current, kind, message, stack }));
exports.errorBody = undefined;
