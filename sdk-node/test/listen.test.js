'use strict';
// The add-on's `listen`/`next` contract (src/lib.rs): `next` is answered by calling the functions `listen`
// registered, once per instance; without them `next` refuses at once with a clear error, instead of waiting for
// an invocation nothing would receive. The real add-on (index.node), with no runtime API to reach: its start
// fails, which `listen` does not need.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const ADDON = path.join(__dirname, '..', 'index.node');

/** Runs `script` in a node with the add-on as `native` and no runtime API configured; returns its stdout. */
function run(script) {
  const env = { ...process.env };
  for (const k of ['SCF_RUNTIME_API', 'NODE_EXTRA_CA_CERTS', '_HANDLER']) delete env[k];
  const r = spawnSync(process.execPath, ['-e', `const native = require(${JSON.stringify(ADDON)});\n${script}`], {
    env,
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test('next before listen throws at once, naming the missing listener', () => {
  const out = run(`
    const h = native.open();
    try { native.next(h); console.log('no error'); } catch (e) { console.log(e.message); }
  `);
  assert.match(out, /next before listen/);
});

test('listen takes two functions, once per instance', () => {
  const out = run(`
    const h = native.open();
    const said = [];
    try { native.listen(h, () => {}); } catch (e) { said.push(e.constructor.name); }
    said.push(String(native.listen(h, () => {}, () => {})));
    try { native.listen(h, () => {}, () => {}); } catch (e) { said.push(e.message); }
    console.log(JSON.stringify(said));
  `);
  const said = JSON.parse(out);
  assert.equal(said[0], 'TypeError');
  assert.equal(said[1], 'undefined');
  assert.match(said[2], /listen was called twice/);
});

test("after listen, next reports the instance's own failure (here: no runtime API), not a promise", () => {
  const out = run(`
    const h = native.open();
    native.listen(h, () => {}, () => {});
    try { const r = native.next(h); console.log('returned ' + typeof r); } catch (e) { console.log('threw ' + e.message); }
  `);
  assert.match(out, /^threw scf-sdk: /);
  assert.doesNotMatch(out, /next before listen/);
});
