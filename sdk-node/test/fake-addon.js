'use strict';
// A stand-in for the add-on's instance half (open/config/ready/next/post), for testing bootstrap.js without a
// runtime API; the taxonomy half is the real add-on's (index.node), so nothing of the core is spelled again.
// Events come from FAKE_EVENTS (a JSON array of event texts); every post is printed as "@@POST <json>".
const path = require('node:path');
const real = require(path.join(__dirname, '..', 'index.node'));

const events = JSON.parse(process.env.FAKE_EVENTS || '[]');
let n = 0;
let current = null;
let loadError = null;
const write = (o) => process.stdout.write(`@@POST ${JSON.stringify(o)}\n`);
const later = (fn) => new Promise((resolve, reject) => setImmediate(() => { try { resolve(fn()); } catch (e) { reject(e); } }));

module.exports = { ...real };
module.exports.open = () => ({});
module.exports.config = () => ({ handler: process.env.FAKE_HANDLER, runtime: 'nodejs', codeRoot: process.env.FAKE_CODE_ROOT });
module.exports.ready = (h, ms, kind, message) =>
  later(() => {
    if (kind !== undefined) loadError = { kind, message };
    write({ type: 'ready', initFunctionMs: typeof ms, ...(loadError ? { loadError } : {}) });
  });
// Out of events: like a long poll that ends when the platform goes away (after FAKE_LINGER_MS).
const linger = () => new Promise((resolve, reject) =>
  setTimeout(() => reject(Object.assign(new Error('no more events'), { code: 'SCF_DISCONNECTED' })), Number(process.env.FAKE_LINGER_MS || 200)));
const post = (kind, a, b, c) => {
  if (kind === 'respond') write({ type: 'response', id: current, body: a });
  else if (kind === 'fail') write({ type: 'error', id: current, kind: a, message: b, stack: c });
};
// `listen` registers the two functions every `next` answers by calling one of them, as the add-on does.
let listener = null;
module.exports.listen = (h, onInvocation, onEnd) => {
  if (listener) throw new Error('scf-sdk: listen was called twice (the instance has its listener)');
  listener = { onInvocation, onEnd };
};
// With an outcome, next first posts it, during the call (as the add-on writes it); the next invocation then
// calls the listener from the event loop. After a load error the core answers every invocation itself, so none
// reaches JavaScript.
module.exports.next = (h, kind, a, b, c) => {
  if (!listener) throw new Error('scf-sdk: next before listen (nothing would receive the invocation)');
  post(kind, a, b, c);
  later(() => loadError || n >= events.length ? linger() : later(() => {
    const id = `req-${++n}`;
    current = id;
    // The context's per-instance fields come with the first invocation only (as the add-on sends them).
    const shared = { memory_limit_in_mb: 0, time_limit_in_ms: 0, request_id: '', environment: '{}', environ: '',
      function_version: '$LATEST', function_name: 'fake', namespace: 'default', tencentcloud_region: 'r',
      tencentcloud_appid: '1', tencentcloud_uin: '2' };
    listener.onInvocation(id, events[n - 1], 3000, 128, 3000, ...(n === 1 ? [JSON.stringify(shared)] : []));
  })).catch((e) => listener.onEnd(e));
};
module.exports.post = (h, kind, a, b, c) => later(() => post(kind, a, b, c));
