'use strict';
// Handler resolution and load-error classification (lib/handler.js).
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { parseHandler, loadHandler } = require('../lib/handler');
const { FIXTURES, nodeModulesRoot } = require('./helpers');

const fx = (d) => path.join(FIXTURES, d);

async function loadErr(root, handler) {
  try {
    await loadHandler(root, handler);
  } catch (e) {
    return e;
  }
  assert.fail(`${handler} loaded`);
}

test('parse: module before the first dot, the rest a property path', () => {
  assert.deepEqual(parseHandler('index.main_handler'), { module: 'index', path: ['main_handler'] });
  assert.deepEqual(parseHandler('index.handlers.main'), { module: 'index', path: ['handlers', 'main'] });
  assert.deepEqual(parseHandler('dir/sub/app.fn'), { module: 'dir/sub/app', path: ['fn'] });
});

test('parse: malformed handlers are refused', () => {
  for (const h of ['', 'index', 'a..b', '../x.y', 'x/../../y.z', '/abs/index.main', '.main', 'index.', 'dir/.main']) {
    assert.throws(() => parseHandler(h), (e) => e.kind === 'MalformedHandler' && e.statusCode === 443, h);
  }
});

test('load: CommonJS .js, nested path', async () => {
  const h = await loadHandler(fx('cjs'), 'index.handlers.nested.deeper');
  assert.equal(await h.fn(), 'deep');
});

test('load: .js in a "type":"module" package, top-level await done during load', async () => {
  const h = await loadHandler(fx('esm-js'), 'index.main_handler');
  assert.deepEqual(await h.fn({ a: 1 }), { greeting: 'hi', event: { a: 1 } });
});

test('load: .mjs, .cjs, extensionless, default export, node_modules', async () => {
  assert.equal(await (await loadHandler(fx('mjs'), 'app.handler')).fn(), 'from mjs');
  assert.equal(await (await loadHandler(fx('cjsext'), 'app.handler')).fn(), 'from cjs');
  assert.equal(await (await loadHandler(fx('extless'), 'app.handler')).fn(), 'extensionless');
  assert.equal(await (await loadHandler(fx('defaults'), 'index.main_handler')).fn(), 'default export');
  assert.equal(await (await loadHandler(nodeModulesRoot(), 'my-handler.handler')).fn(), 'from node_modules');
});

test('load errors: missing module file → ModuleNotFound 443 with the canonical text', async () => {
  const e = await loadErr(fx('cjs'), 'nothere.main_handler');
  assert.equal(e.kind, 'ModuleNotFound');
  assert.equal(e.statusCode, 443);
  assert.equal(e.message, "global name 'nothere' is not defined");
});

test('load errors: missing dependency (CJS and ESM) → ModuleNotFound naming the dependency', async () => {
  for (const m of ['dep', 'dep']) void m;
  const cjs = await loadErr(fx('errs'), 'dep.main_handler');
  assert.equal(cjs.kind, 'ModuleNotFound');
  assert.equal(cjs.message, "global name 'left-padx' is not defined");
  assert.match(cjs.stackTrace, /Cannot find module 'left-padx'/);
});

test('load errors: syntax errors → SyntaxError 443 with the location', async () => {
  const cjs = await loadErr(fx('errs'), 'syntax.main_handler');
  assert.equal(cjs.kind, 'SyntaxError');
  assert.equal(cjs.statusCode, 443);
  assert.match(cjs.message, /^SyntaxError: Unexpected token '?;'? \(syntax\.js:2\)$/);
  assert.match(cjs.stackTrace, /syntax\.js:2/);
});

test('load errors: ESM syntax error names the file (node --check on the error path)', async () => {
  const { loadHandler: load } = require('../lib/handler');
  const fs = require('node:fs');
  const os = require('node:os');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'scf-esm-'));
  fs.copyFileSync(path.join(fx('errs'), 'syntax.mjs'), path.join(root, 'index.mjs'));
  fs.copyFileSync(path.join(fx('errs'), 'dep.mjs'), path.join(root, 'dep.mjs'));
  const e = await loadErr(root, 'index.main_handler');
  assert.equal(e.kind, 'SyntaxError');
  assert.match(e.message, /\(index\.mjs:2\)$/);
  assert.match(e.stackTrace, /index\.mjs:2/);
  const d = await loadErr(root, 'dep.main_handler');
  assert.equal(d.kind, 'ModuleNotFound');
  assert.equal(d.message, "global name 'left-padx' is not defined");
  void load;
});

test('load errors: exception while loading → InitError 443; runtime SyntaxError is not a parse error', async () => {
  const e = await loadErr(fx('errs'), 'throws.main_handler');
  assert.equal(e.kind, 'InitError');
  assert.equal(e.message, 'Error: boom at load');
  assert.match(e.stackTrace, /throws\.js:1/);
  const j = await loadErr(fx('errs'), 'runtime_syntax.main_handler');
  assert.equal(j.kind, 'InitError');
  assert.match(j.message, /^SyntaxError: /);
});

test('load errors: attribute missing → HandlerNotFound 437; not a function → HandlerNotCallable 443', async () => {
  const e = await loadErr(fx('errs'), 'nohandler.main_handler');
  assert.equal(e.kind, 'HandlerNotFound');
  assert.equal(e.statusCode, 437);
  assert.equal(e.message, "'module' object has no attribute 'main_handler'");
  const n = await loadErr(fx('cjs'), 'index.handlers.missing.main');
  assert.equal(n.message, "'module' object has no attribute 'handlers.missing.main'");
  const c = await loadErr(fx('errs'), 'notfn.main_handler');
  assert.equal(c.kind, 'HandlerNotCallable');
  assert.equal(c.statusCode, 443);
  assert.match(c.message, /not callable: it is a string/);
});
