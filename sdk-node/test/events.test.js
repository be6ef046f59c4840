'use strict';
// The event interfaces of index.d.ts and index.d.mts against the Rust types of scf_protocol::events (paired
// with sdk-python/tests/test_events.py).
//
// The sample sets of protocol/src/events/samples/ (regenerated from the Rust types by a Rust test) hold, per
// shape, the generated sample, a document with every optional field (`full`), one with none (`minimal`),
// and the changes the Rust type refuses. Every document is written as a constant of its interface, and
// `tsc --noEmit --strict` checks the files: the accepted documents must type-check, every refused change
// must be an error on its own line, and each `full` document must also fit a deep-`Required` form of its
// interface (so an optional property the Rust type does not have fails). TypeScript is installed by the
// test, at a pinned version, into target/ (once; later runs reuse it).
const { test, before } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const SDK = path.join(__dirname, '..');
const ROOT = path.join(SDK, '..');
const SAMPLES = path.join(ROOT, 'protocol', 'src', 'events', 'samples');
const TYPESCRIPT_VERSION = '5.9.3';
const TOOLS = path.join(ROOT, 'target', 'sdk-node-typescript');
const TSC = path.join(TOOLS, 'node_modules', 'typescript', 'bin', 'tsc');

// Each shape's interface in index.d.ts (the Rust type's name is in the sample set).
const TYPES = {
  apigw: 'APIGatewayEvent',
  'apigw-response': 'APIGatewayResponse',
  timer: 'TimerEvent',
  cos: 'COSEvent',
  cmq: 'CMQEvent',
  ckafka: 'CKafkaEvent',
  clb: 'CLBEvent',
  'websocket-connect': 'WebSocketConnectEvent',
  'websocket-connect-response': 'WebSocketConnectResponse',
  'websocket-data': 'WebSocketMessageEvent',
  'websocket-close': 'WebSocketMessageEvent',
};

const SETS = Object.fromEntries(
  fs
    .readdirSync(SAMPLES)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => [f.slice(0, -'.json'.length), JSON.parse(fs.readFileSync(path.join(SAMPLES, f), 'utf8'))]),
);

function apply(doc, change) {
  const out = structuredClone(doc);
  const steps = change.path.slice(0, -1);
  const last = change.path[change.path.length - 1];
  const node = steps.reduce((n, step) => n[step], out);
  if (change.remove) delete node[last];
  else node[last] = change.set;
  return out;
}

// One line per document: {shape, what, ok, doc, deep} (deep: also checked against DeepRequired<T>).
function entries() {
  const out = [];
  for (const [shape, set] of Object.entries(SETS)) {
    for (const what of ['sample', 'full', 'minimal']) {
      if (set[what] !== null) out.push({ shape, what, ok: true, doc: set[what] });
    }
    out.push({ shape, what: 'full, every property required', ok: true, doc: set.full, deep: true });
    set.rejected.forEach((change, i) => {
      out.push({ shape, what: `rejected[${i}] ${JSON.stringify(change)}`, ok: false, doc: apply(set[change.from], change) });
    });
  }
  return out;
}

function ensureTypeScript() {
  const pkg = path.join(TOOLS, 'node_modules', 'typescript', 'package.json');
  if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).version === TYPESCRIPT_VERSION) return;
  fs.mkdirSync(TOOLS, { recursive: true });
  fs.writeFileSync(path.join(TOOLS, 'package.json'), '{"private": true}\n');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(
    npm,
    ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error',
      `typescript@${TYPESCRIPT_VERSION}`],
    { cwd: TOOLS, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, `npm install typescript@${TYPESCRIPT_VERSION}: ${r.error ?? ''}${r.stdout}${r.stderr}`);
}

const DEEP_REQUIRED =
  'type DeepRequired<T> = T extends (infer U)[] ? DeepRequired<U>[] : ' +
  'T extends object ? { [K in keyof T]-?: DeepRequired<T[K]> } : T;';

/** Runs tsc on `files` ({name: source}) in a fresh folder; returns {file: {line: [messages]}} and the output. */
function tsc(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scf-sdk-events-'));
  for (const [name, source] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), source);
  const r = spawnSync(
    process.execPath,
    [TSC, '--noEmit', '--strict', '--pretty', 'false', '--target', 'es2022', '--module', 'nodenext',
      '--moduleResolution', 'nodenext', ...Object.keys(files)],
    { cwd: dir, encoding: 'utf8' },
  );
  const errors = {};
  const other = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^(.*?)\((\d+),\d+\): error (TS\d+: .*)$/.exec(line);
    if (m && m[1] in files) {
      ((errors[m[1]] ??= {})[Number(m[2])] ??= []).push(m[3]);
    } else if (line.trim()) {
      other.push(line);
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(other, [], `tsc reports errors outside the documents:\n${r.stdout}${r.stderr}`);
  assert.ok(r.status === 0 || r.status === 2, `tsc: ${r.error ?? ''}${r.stdout}${r.stderr}`);
  return errors;
}

const ALL = entries();
const NAMES = [...new Set(Object.values(TYPES))].sort();
let cjsErrors;
let esmErrors;
const HEADER_LINES = 3;

before(() => {
  ensureTypeScript();
  const header = (from) => [`import type { ${NAMES.join(', ')} } from ${JSON.stringify(from)};`, DEEP_REQUIRED, ''];
  const cjs = header(path.join(SDK, 'index.js'));
  ALL.forEach((e, i) => {
    const type = e.deep ? `DeepRequired<${TYPES[e.shape]}>` : TYPES[e.shape];
    cjs.push(`export const doc_${i}: ${type} = ${JSON.stringify(e.doc)};`);
  });
  // The ES module entry re-exports the same interfaces: the accepted documents through it.
  const esm = header(path.join(SDK, 'index.mjs'));
  ALL.forEach((e, i) => {
    if (e.ok) esm.push(`export const doc_${i}: ${TYPES[e.shape]} = ${JSON.stringify(e.doc)};`);
  });
  assert.equal(cjs.length - ALL.length, HEADER_LINES);
  const errors = tsc({ 'events.cts': cjs.join('\n') + '\n', 'events.mts': esm.join('\n') + '\n' });
  cjsErrors = errors['events.cts'] ?? {};
  esmErrors = errors['events.mts'] ?? {};
});

function lineOf(e) {
  return ALL.indexOf(e) + HEADER_LINES + 1;
}

test('every sample set has its interface', () => {
  assert.deepEqual(Object.keys(SETS).sort(), Object.keys(TYPES).sort());
  const dts = fs.readFileSync(path.join(SDK, 'index.d.ts'), 'utf8');
  for (const name of NAMES) assert.match(dts, new RegExp(`export interface ${name} \\{`), name);
});

for (const shape of Object.keys(TYPES).sort()) {
  test(`${shape}: the documents the Rust type accepts type-check as ${TYPES[shape]}`, () => {
    const bad = ALL.filter((e) => e.shape === shape && e.ok && cjsErrors[lineOf(e)]).map(
      (e) => `${e.what}: ${cjsErrors[lineOf(e)].join('; ')}`,
    );
    assert.deepEqual(bad, [], `${TYPES[shape]} refuses what the Rust type accepts`);
    const viaEsm = Object.entries(esmErrors).map(([line, m]) => `index.mjs line ${line}: ${m.join('; ')}`);
    assert.deepEqual(viaEsm, [], 'the ES module entry types them differently');
  });

  test(`${shape}: the changes the Rust type refuses do not type-check`, () => {
    const cases = ALL.filter((e) => e.shape === shape && !e.ok);
    assert.ok(cases.length > 0, 'no refused change to check');
    const missed = cases.filter((e) => !cjsErrors[lineOf(e)]).map((e) => e.what);
    assert.deepEqual(missed, [], `${TYPES[shape]} accepts what the Rust type refuses`);
  });
}

test('the check catches a drifted interface', () => {
  // The method itself, on an interface that drifted: a wrong type, and an optional property Rust lacks.
  const object = SETS.cos.full.Records[0].cos.cosObject;
  const errors = tsc({
    'drift.ts': [
      DEEP_REQUIRED,
      'interface Obj { url: string; meta: Record<string, string>; vid: string; key: string; size: string }',
      'interface More { url: string; meta: Record<string, string>; vid: string; key: string; size: number; etag?: string }',
      `export const a: Obj = ${JSON.stringify(object)};`,
      `export const b: More = ${JSON.stringify(object)};`,
      `export const c: DeepRequired<More> = ${JSON.stringify(object)};`,
      '',
    ].join('\n'),
  })['drift.ts'] ?? {};
  assert.deepEqual(Object.keys(errors).map(Number), [4, 6], JSON.stringify(errors));
  assert.match(errors[4].join(), /TS2322: Type 'number' is not assignable to type 'string'/);
  assert.match(errors[6].join(), /Property 'etag' is missing/);
});
