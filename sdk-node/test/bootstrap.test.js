'use strict';
// The production loop (bootstrap.js) driven by a fake add-on: event-loop drain semantics, crashes,
// logs, load errors, invalid events.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FIXTURES, runBootstrap } = require('./helpers');

const root = path.join(FIXTURES, 'cjs');
const ISO_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t/;

function tmpRoot(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scf-boot-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

test('ready, then one response per event; the loop ends when the platform goes away', () => {
  const r = runBootstrap(root, 'index.main_handler', ['{"a":1}', '[2]']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.posts, [
    { type: 'ready', initFunctionMs: 'number' },
    { type: 'response', id: 'req-1', body: '{"echo":{"a":1},"fn":"fake"}' },
    { type: 'response', id: 'req-2', body: '{"echo":[2],"fn":"fake"}' },
  ]);
});

test('callbackWaitsForEmptyEventLoop: true waits for the loop to drain, false answers at once', () => {
  const w = runBootstrap(root, 'index.wait', ['{}']);
  assert.equal(w.status, 0, w.stderr);
  // the timer's log line comes before the response
  assert.ok(w.logs.some((l) => l.endsWith('\treq-1\ttimer done')), w.logs.join('\n'));
  assert.deepEqual(w.posts[1], { type: 'response', id: 'req-1', body: '"after drain"' });
  const n = runBootstrap(root, 'index.no_wait', ['{}', '{}']);
  assert.deepEqual(n.posts.slice(1).map((p) => p.body), ['"fast"', '"fast"']);
  // Both answered before the first invocation's 2 s timer fired: its line comes after both posts, or never
  // (the instance ends when the platform goes away, timers pending or not).
  const late = n.lines.findIndex((l) => l.endsWith('\tlate timer'));
  const posted = n.lines.filter((l) => l.startsWith('@@POST ')).map((l) => n.lines.indexOf(l));
  assert.ok(late === -1 || late > Math.max(...posted), n.lines.join('\n'));
});

test("a sync handler's queued microtasks run before its result is posted, in its invocation's log", () => {
  const r = runBootstrap(root, 'index.sync_queues', ['{}', '{}']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.posts.slice(1).map((p) => p.body), ['"sync"', '"sync"']);
  const order = r.lines.map((l) => (l.startsWith('@@POST ') ? JSON.parse(l.slice(7)).id || 'ready' : l));
  for (const id of ['req-1', 'req-2']) {
    const line = order.findIndex((l) => l.endsWith(`\t${id}\tqueued before the return`));
    assert.ok(line >= 0 && line < order.indexOf(id), order.join('\n'));
  }
});

test('never-settling promise and never-called callback → UnhandledError once the loop drains', () => {
  const p = runBootstrap(root, 'index.never', ['{}']);
  assert.equal(p.posts[1].kind, 'UnhandledError');
  assert.equal(p.posts[1].message, 'user code exception caught');
  assert.match(p.posts[1].stack, /promise never settled/);
  const c = runBootstrap(root, 'index.never_callback', ['{}']);
  assert.equal(c.posts[1].kind, 'UnhandledError');
  assert.match(c.posts[1].stack, /never called its callback/);
});

test('a load error goes to the core with ready, and no invocation reaches JavaScript', () => {
  const r = runBootstrap(path.join(FIXTURES, 'errs'), 'nohandler.main_handler', ['{}', '{}']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.posts, [
    {
      type: 'ready',
      initFunctionMs: 'number',
      loadError: { kind: 'HandlerNotFound', message: "'module' object has no attribute 'main_handler'" },
    },
  ]);
});

test('an event that is not JSON → InvalidEvent, and the instance keeps serving', () => {
  const r = runBootstrap(root, 'index.main_handler', ['{not json', '1']);
  assert.equal(r.posts[1].kind, 'InvalidEvent');
  assert.equal(r.posts[2].type, 'response');
});

test('console lines are formatted with time and request id; stdout.write stays raw', () => {
  const r = runBootstrap(root, 'index.logs', ['{}']);
  const lines = r.logs;
  assert.match(lines[0], ISO_LINE);
  assert.ok(lines[0].endsWith("\treq-1\thello world { a: 1 }"), lines[0]);
  assert.ok(lines[1].endsWith('\treq-1\tto the log too'), lines[1]);
  assert.equal(lines[2], 'raw line');
});

test('uncaught exception during an invocation → UnhandledError posted, then the instance exits', () => {
  const dir = tmpRoot({ 'index.js': "exports.h = async () => { setTimeout(() => { throw new Error('late'); }, 1); await new Promise(r => setTimeout(r, 100)); return 1; };\n" });
  const r = runBootstrap(dir, 'index.h', ['{}', '{}']);
  assert.equal(r.posts.length, 2);
  assert.equal(r.posts[1].kind, 'UnhandledError');
  assert.match(r.posts[1].stack, /Error: late/);
  assert.equal(r.status, 1);
});

test('unhandled rejection after the response → logged, the instance exits', () => {
  const dir = tmpRoot({ 'index.js': "exports.h = async () => { setTimeout(() => Promise.reject(new Error('after')), 20); return 'ok'; };\n" });
  const r = runBootstrap(dir, 'index.h', ['{}', '{}']);
  assert.deepEqual(r.posts[1], { type: 'response', id: 'req-1', body: '"ok"' });
  assert.equal(r.status, 1);
  assert.ok(r.logs.some((l) => /Unhandled promise rejection outside an invocation/.test(l)), r.logs.join('\n'));
});

test('process.exit() inside the handler ends the process (the platform reports 439)', () => {
  const dir = tmpRoot({ 'index.js': "exports.h = async () => { console.log('bye'); process.exit(3); };\n" });
  const r = runBootstrap(dir, 'index.h', ['{}']);
  assert.equal(r.status, 3);
  assert.equal(r.posts.length, 1);
  assert.ok(r.logs[0].endsWith('\treq-1\tbye'));
});
