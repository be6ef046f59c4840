'use strict';
// The startup-snapshot experiment (docs/node.md, "Startup snapshot: tried, not kept"): does a user-land V8
// startup snapshot (`node --build-snapshot`, then `node --snapshot-blob`) start the Node host faster?
// Builds, in a temporary directory:
//   - an empty snapshot (its deserialised main does nothing): the floor of any snapshot start;
//   - a snapshot holding the built-in modules the SDK's JS requires (path, util, fs, url, child_process);
//   - a snapshot of the SDK's own lib/*.js, which Node cannot build (reported, with the builder's words);
// then times, interleaved, medians of N whole processes: `node -e 0`, each snapshot, and plain `node` requiring
// the same modules. NODE_EXTRA_CA_CERTS is unset for every process (it adds 35–55 ms to each node start).
// Usage: node bench/snapshot.js [--runs N]
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 20;
const lib = path.resolve(__dirname, '..', 'lib');
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scf-snapshot-'));

const BUILTINS = "const path = require('node:path'); const util = require('node:util'); const fs = require('node:fs'); " +
  "const url = require('node:url'); const cp = require('node:child_process');\n";
const files = {
  'empty.js': "require('v8').startupSnapshot.setDeserializeMainFunction(() => {});\n",
  'builtins.js': `${BUILTINS}require('v8').startupSnapshot.setDeserializeMainFunction(() => { globalThis.m = [path, util, fs, url, cp]; });\n`,
  'sdk.js': `const r = require('module').createRequire(${JSON.stringify(path.join(lib, 'x.js'))});\n` +
    "const m = ['./logging', './errors', './handler', './invocation'].map((n) => r(n));\n" +
    "require('v8').startupSnapshot.setDeserializeMainFunction(() => { globalThis.m = m; });\n",
  'plain-builtins.js': BUILTINS,
  'plain-sdk.js': ['logging', 'errors', 'handler', 'invocation'].map((n) => `require(${JSON.stringify(path.join(lib, n))});`).join('\n') + '\n',
};
for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);

function build(name) {
  const blob = path.join(dir, `${name}.blob`);
  const r = spawnSync('node', ['--snapshot-blob', blob, '--build-snapshot', path.join(dir, `${name}.js`)], { env, encoding: 'utf8' });
  if (r.status !== 0) {
    const lines = `${r.stdout}\n${r.stderr}`.split('\n');
    const said = lines.find((l) => /not serialized/.test(l)) || lines.find((l) => /Error|error/.test(l)) || `status ${r.status} signal ${r.signal}`;
    return { blob: null, said: said.trim() };
  }
  return { blob, said: '' };
}

const built = { empty: build('empty'), builtins: build('builtins'), sdk: build('sdk') };
const cases = [
  ['node -e 0', ['-e', '0']],
  ['snapshot, empty main', built.empty.blob && ['--snapshot-blob', built.empty.blob]],
  ["snapshot of the SDK's built-in modules", built.builtins.blob && ['--snapshot-blob', built.builtins.blob]],
  ['node requiring the same built-ins', [path.join(dir, 'plain-builtins.js')]],
  ["snapshot of the SDK's lib/*.js", built.sdk.blob && ['--snapshot-blob', built.sdk.blob]],
  ["node requiring the SDK's lib/*.js", [path.join(dir, 'plain-sdk.js')]],
].filter(([, args]) => args);

const times = new Map(cases.map(([label]) => [label, []]));
for (let i = 0; i < RUNS; i++) {
  for (const [label, args] of cases) {
    const t = process.hrtime.bigint();
    const r = spawnSync('node', args, { env, stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${label}: status ${r.status}`);
    times.get(label).push(Number(process.hrtime.bigint() - t) / 1e6);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const bare = median(times.get('node -e 0'));
console.log(`node ${process.version}, medians of ${RUNS} interleaved starts:`);
for (const [label, xs] of times) {
  const m = median(xs);
  console.log(`  ${label.padEnd(42)} ${m.toFixed(1).padStart(6)} ms  ${(m / bare).toFixed(2)}×`);
}
if (!built.sdk.blob) console.log(`  snapshot of the SDK's lib/*.js: cannot be built (${built.sdk.said})`);
fs.rmSync(dir, { recursive: true, force: true });
