'use strict';
// Checks an installed scf-sdk the way a function author uses it, from a project folder that has it in
// node_modules: `require('scf-sdk')` (CommonJS) and `import ... from 'scf-sdk'` (ES module) each run
// invoke() on a handler that succeeds and one that throws, and the add-on loads (its path is printed).
// Usage: node scripts/check-install.js PROJECT_DIR [prebuilt|source]   (where the add-on must come from)
// Used by `make -C sdk-node test-fresh` and by the release tests (tests/dist).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const [dir, from] = process.argv.slice(2);
if (!dir) {
  console.error('usage: check-install.js PROJECT_DIR [prebuilt|source]');
  process.exit(2);
}

const body = (how) => `
const out = { how: '${how}' };
const ok = await invoke(async (e, c) => ({ hi: e.name, fn: c.function_name }), { name: '${how}' });
if (ok.hi !== '${how}' || typeof ok.fn !== 'string' || !ok.fn) throw new Error('invoke: ' + JSON.stringify(ok));
try {
  await invoke(async () => { throw new TypeError('nope'); }, {});
  throw new Error('the throwing handler did not fail');
} catch (e) {
  if (!(e instanceof InvokeError) || e.errorType !== 'UnhandledError' || e.statusCode !== 430) throw e;
}
const native = nativeModule();
out.addon = native.locate();
if (typeof native.load().open !== 'function') throw new Error('the add-on has no open()');
console.log(JSON.stringify(out));
`;

const files = {
  'check-cjs.cjs': `const { invoke, InvokeError } = require('scf-sdk');
const path = require('node:path');
// lib/native.js is not exported: reach it by its file, beside the package's entry point.
const nativeModule = () => require(path.join(path.dirname(require.resolve('scf-sdk')), 'lib', 'native.js'));
(async () => {${body('cjs')}})().catch((e) => { console.error(e); process.exit(1); });
`,
  'check-esm.mjs': `import { invoke, InvokeError } from 'scf-sdk';
import { createRequire } from 'node:module';
import path from 'node:path';
const require = createRequire(import.meta.url);
const nativeModule = () => require(path.join(path.dirname(require.resolve('scf-sdk')), 'lib', 'native.js'));
${body('esm')}`,
};

for (const [name, text] of Object.entries(files)) {
  fs.writeFileSync(path.join(dir, name), text);
  const r = spawnSync(process.execPath, [name], { cwd: dir, encoding: 'utf8' });
  fs.rmSync(path.join(dir, name));
  if (r.status !== 0) {
    console.error(`check-install: ${name} failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
    process.exit(1);
  }
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  const kind = out.addon.endsWith(path.join('prebuilds', `${process.platform}-${process.arch}`, 'scf_sdk_node.node'))
    ? 'prebuilt'
    : 'source';
  if (from && kind !== from) {
    console.error(`check-install: ${name}: the add-on is ${out.addon} (${kind}), expected a ${from} one`);
    process.exit(1);
  }
  console.log(`check-install: ${out.how}: ok (add-on ${out.addon})`);
}
