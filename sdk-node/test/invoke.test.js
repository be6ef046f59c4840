'use strict';
// Invocation styles, marshalling and error classification through the public `invoke()` helper.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { invoke, invokeRaw, InvokeError, apiGatewayResponse, ErrorKinds } = require('..');
const { FIXTURES } = require('./helpers');

const h = require('./fixtures/cjs/index.js');
const root = path.join(FIXTURES, 'cjs');

async function invokeErr(...args) {
  try {
    await invoke(...args);
  } catch (e) {
    assert.ok(e instanceof InvokeError, String(e));
    return e;
  }
  assert.fail('the invocation succeeded');
}

test('async, sync, nested and handler-string forms', async () => {
  assert.deepEqual(await invoke(h.main_handler, { a: 1 }), { echo: { a: 1 }, fn: 'local' });
  assert.equal(await invoke(h.sync_handler, { n: 21 }), 42);
  assert.equal(await invoke(h.sync_undefined, {}), null);
  assert.equal(await invoke('index.handlers.nested.deeper', {}, {}, { codeRoot: root }), 'deep');
  const raw = await invokeRaw(h.sync_undefined, {});
  assert.equal(raw.body, 'null');
});

test('callback style and context.succeed/fail/done', async () => {
  assert.deepEqual(await invoke(h.callback_handler, {}), { cb: true });
  assert.equal(await invoke(h.succeed_handler, {}), 'ok');
  assert.deepEqual(await invoke(h.done_handler, {}), { done: 1 });
  const e = await invokeErr(h.callback_error, {});
  assert.equal(e.errorType, 'HandledError');
  assert.equal(e.statusCode, 430);
  assert.equal(e.errorMessage, 'user code exception caught');
  assert.match(e.stackTrace, /^Error: handled failure\n\s+at /);
  const s = await invokeErr(h.callback_string_error, {});
  assert.equal(s.stackTrace, 'bad input');
  const f = await invokeErr(h.fail_handler, {});
  assert.equal(f.errorType, 'HandledError');
  assert.match(f.stackTrace, /failed on purpose/);
});

test('getRemainingTimeInMillis counts down from the time limit', async () => {
  const ms = await invoke(h.remaining, {}, { time_limit_in_ms: 5000 });
  assert.ok(ms > 4500 && ms <= 5000, String(ms));
});

test('context has the eleven fields (methods are not enumerable)', async () => {
  const ctx = await invoke(h.context_fields, {}, { request_id: 'abc', function_name: 'f' });
  assert.deepEqual(Object.keys(ctx).sort(), [
    'environ', 'environment', 'function_name', 'function_version', 'memory_limit_in_mb', 'namespace', 'request_id',
    'tencentcloud_appid', 'tencentcloud_region', 'tencentcloud_uin', 'time_limit_in_ms',
  ]);
  assert.equal(ctx.request_id, 'abc');
  assert.equal(typeof ctx.environment, 'string');
});

test('thrown errors → UnhandledError 430 with the stack', async () => {
  for (const [fn, re] of [
    [h.throws, /^TypeError: kaboom\n\s+at /],
    [h.throws_sync, /^RangeError: sync kaboom\n\s+at /],
    [h.throws_string, /^Uncaught 'just a string'$/],
    [h.throws_object, /^Uncaught \{ code: 42 \}$/],
    [h.throws_undefined, /^Uncaught undefined$/],
  ]) {
    const e = await invokeErr(fn, {});
    assert.equal(e.errorType, 'UnhandledError');
    assert.equal(e.statusCode, 430);
    assert.equal(e.errorMessage, 'user code exception caught');
    assert.match(e.stackTrace, re);
  }
});

test('results without a JSON form → MarshalError 430 naming the problem', async () => {
  const c = await invokeErr(h.cycle, {});
  assert.equal(c.errorType, 'MarshalError');
  assert.match(c.errorMessage, /^Unable to marshal response: Converting circular structure to JSON/);
  assert.ok(!c.errorMessage.includes('\n'));
  const b = await invokeErr(h.bigint, {});
  assert.equal(b.errorMessage, 'Unable to marshal response: Do not know how to serialize a BigInt');
  const f = await invokeErr(h.fn_result, {});
  assert.equal(f.errorMessage, 'Unable to marshal response: Object of type function is not JSON serializable');
});

test('body shape and Go-style escaping match the core', async () => {
  const r = await invokeRaw(async () => {
    throw new Error('<a & b>');
  }, {}, { request_id: 'rid' });
  assert.equal(r.ok, false);
  assert.match(r.body, /^\{"errorCode":-1,"errorMessage":"user code exception caught","errorType":"UnhandledError","requestId":"rid","stackTrace":"Error: \\u003ca \\u0026 b\\u003e\\n/);
  assert.match(r.body, /,"statusCode":430\}$/);
});

test('load errors through invoke() are classified like production', async () => {
  const e = await invokeErr('nohandler.main_handler', {}, {}, { codeRoot: path.join(FIXTURES, 'errs') });
  assert.equal(e.statusCode, 437);
  const m = await invokeErr('index..x', {}, {}, { codeRoot: root });
  assert.equal(m.errorType, 'MalformedHandler');
});

test('non-JSON event text → InvalidEvent 400; never-settling handler → Timeout 433', async () => {
  const e = await invokeErr(h.main_handler, undefined, {}, { eventText: '{not json' });
  assert.equal(e.errorType, 'InvalidEvent');
  assert.equal(e.statusCode, 400);
  const t = await invokeErr(h.never, {}, {}, { timeoutMs: 50 });
  assert.equal(t.errorType, 'Timeout');
  assert.equal(t.statusCode, 433);
  assert.equal(t.errorMessage, 'Invoking task timed out after 0.05 seconds');
});

test('response above 6 MB → ResponseTooLarge 407', async () => {
  const e = await invokeErr(h.big, { n: 6 * 1024 * 1024 });
  assert.equal(e.errorType, 'ResponseTooLarge');
  assert.equal(e.statusCode, 407);
});

test('unicode results survive', async () => {
  assert.deepEqual(await invoke(h.unicode, {}), { s: 'ünïcødé 中文 😀 <&>' });
});

test('apiGatewayResponse', () => {
  assert.deepEqual(apiGatewayResponse({ ok: true }), {
    isBase64Encoded: false, statusCode: 200, headers: { 'Content-Type': 'application/json' }, body: '{"ok":true}',
  });
  const r = apiGatewayResponse(Buffer.from('hi'), { statusCode: 201, headers: { 'x-a': '1' } });
  assert.equal(r.isBase64Encoded, true);
  assert.equal(r.body, 'aGk=');
  assert.equal(r.statusCode, 201);
  assert.equal(apiGatewayResponse('text', { headers: { 'content-type': 'text/html' } }).headers['content-type'], 'text/html');
});

test('ESM entry exports the same API', async () => {
  const m = await import('../index.mjs');
  assert.equal(m.invoke, invoke);
  assert.equal(m.default.apiGatewayResponse, apiGatewayResponse);
});

test("the ErrorType of index.d.ts names exactly the core's kinds", () => {
  const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');
  const union = /export type ErrorType =([^;]*);/.exec(dts)[1];
  const names = [...union.matchAll(/'([A-Za-z]+)'/g)].map((m) => m[1]).sort();
  assert.deepEqual(names, Object.keys(ErrorKinds).sort());
  assert.equal(ErrorKinds.PortBindingFailed, 446);
});
