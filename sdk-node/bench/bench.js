'use strict';
// Benchmarks of the Node host, each printed with its baseline measured in the same run:
//  1. cold start: spawn scf-shim → init/ready posted (empty handler), against `node -e 0`;
//  2. warm overhead inside the instance for a small event (event arrived in the core → answer being posted);
//  3. a 1 MB event delivered to the handler, against JSON.parse of the same text.
// NODE_EXTRA_CA_CERTS is unset for every process started here (it adds 35–55 ms to each node start).
// Usage: node bench/bench.js [--runs N]      env SCF_SHIM = the scf-shim binary (default: target/release,
// then target/debug of the repository).
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startMockApi } = require('./mock-api');

const repo = path.resolve(__dirname, '..', '..');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 20;

function findShim() {
  if (process.env.SCF_SHIM) return process.env.SCF_SHIM;
  for (const p of ['target/release/scf-shim', 'target/debug/scf-shim']) {
    if (fs.existsSync(path.join(repo, p))) return path.join(repo, p);
  }
  throw new Error('no scf-shim: run `cargo build --release -p scf-shim` (or set SCF_SHIM)');
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))];
};

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'scf-node-bench-'));
const code = path.join(work, 'code');
fs.mkdirSync(code);
fs.writeFileSync(
  path.join(code, 'index.js'),
  `exports.noop = async () => null;
// The baseline, measured inside the instance between deliveries: JSON.parse of the same text, read at init.
const text = process.env.BENCH_EVENT_FILE ? require('fs').readFileSync(process.env.BENCH_EVENT_FILE, 'utf8') : '';
exports.parse_baseline = async () => {
  const t0 = process.hrtime.bigint();
  JSON.parse(text);
  return Number(process.hrtime.bigint() - t0);
};
`,
);
const baseEnv = { ...process.env };
delete baseEnv.NODE_EXTRA_CA_CERTS;

let sockN = 0;
/** Runs one instance of scf-shim against the mock API; resolves with timings. */
async function instance(shim, handler, events, extraEnv = {}) {
  const sock = path.join(work, `api-${++sockN}.sock`);
  let readyAt = 0n;
  const { server, posts } = await startMockApi(sock, events, {
    onReady: (t) => {
      readyAt = t;
    },
  });
  const env = {
    ...baseEnv,
    ...extraEnv,
    _HANDLER: handler,
    SCF_RUNTIME: 'nodejs',
    SCF_RUNTIME_API: `unix:${sock}`,
    USER_CODE_ROOT: code,
    SCF_FUNCTIONNAME: 'bench',
  };
  const t0 = process.hrtime.bigint();
  const child = spawn(shim, [], { env, cwd: code, stdio: ['ignore', 'ignore', 'inherit'] });
  const exit = await new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? s)));
  server.close();
  return { coldMs: Number(readyAt - t0) / 1e6, exit, posts };
}

function nodeE0() {
  const t0 = process.hrtime.bigint();
  spawnSync(process.execPath, ['-e', '0'], { env: baseEnv, stdio: 'ignore' });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function readTimings(file) {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => Number(l) / 1000); // µs
}

function bigEvent(ascii) {
  const items = [];
  let i = 0;
  let text = '';
  while (text.length < 1024 * 1024) {
    for (let k = 0; k < 200; k++, i++) {
      items.push({ id: i, name: `item-${i}`, tags: ['a', 'b', ascii ? 'uni' : '中文 emoji😀'], price: i * 1.25, ok: i % 2 === 0, nested: { x: i, y: null } });
    }
    text = JSON.stringify(items);
  }
  return text;
}

(async () => {
  const shim = findShim();
  console.log(`scf-shim: ${shim}; node ${process.version}; ${RUNS} runs; NODE_EXTRA_CA_CERTS unset in every process`);

  // 1. cold start
  const cold = [];
  const base = [];
  for (let i = 0; i < RUNS; i++) {
    base.push(nodeE0());
    const r = await instance(shim, 'index.noop', ['{}']);
    if (r.exit !== 0 || r.posts[0]?.body !== 'null') throw new Error(`cold start run failed: ${JSON.stringify(r)}`);
    cold.push(r.coldMs);
  }
  const c = median(cold);
  const b = median(base);
  console.log(
    `cold start (spawn → init/ready, empty handler): median ${c.toFixed(1)} ms; node -e 0: ${b.toFixed(1)} ms; ` +
      `difference +${(c - b).toFixed(1)} ms (target ≤ +5 ms), ratio ${(c / b).toFixed(2)}×`,
  );

  // 2. warm overhead, small event
  const N = 2000;
  const tfile = path.join(work, 'warm.txt');
  const warm = await instance(shim, 'index.noop', Array(N).fill('{"key":"value","n":1}'), { SCF_NODE_TIMINGS: tfile });
  const us = readTimings(tfile).slice(100); // skip the first (JIT warm-up)
  const turn = warm.posts.slice(100).map((p) => Number(p.turnaroundNs) / 1000);
  console.log(
    `warm overhead inside the instance (small event, ${us.length} invocations): p50 ${median(us).toFixed(1)} µs, ` +
      `p90 ${pct(us, 90).toFixed(1)} µs (target ≤ 15 µs); whole turnaround seen by the API server incl. HTTP: ` +
      `p50 ${median(turn).toFixed(1)} µs`,
  );

  // 3. a 1 MB event. The handler parses the same text itself (read once at init) and returns how long that
  // took: delivery = (arrival → answer) − that baseline, both measured in the same process, interleaved.
  // Two events: ASCII only, and with some non-ASCII text (V8 then decodes UTF-8 into a two-byte string).
  for (const ascii of [true, false]) {
    const text = bigEvent(ascii);
    const M = 40;
    const efile = path.join(work, `event-${ascii}.json`);
    fs.writeFileSync(efile, text);
    const bfile = path.join(work, `big-${ascii}.txt`);
    const big = await instance(shim, 'index.parse_baseline', Array(M).fill(text), {
      SCF_NODE_TIMINGS: bfile,
      BENCH_EVENT_FILE: efile,
    });
    const total = readTimings(bfile).map((u) => u / 1000); // ms
    const parse = big.posts.map((p) => Number(p.body) / 1e6);
    const delivered = total.map((t, i) => t - parse[i]).slice(5);
    const d = median(delivered);
    const p = median(parse.slice(5));
    console.log(
      `1 MB event, ${ascii ? 'ASCII only' : 'with non-ASCII text'} (${(Buffer.byteLength(text) / 1048576).toFixed(2)} MiB) ` +
        `delivered to the handler: median ${d.toFixed(2)} ms; JSON.parse of the same text in the same process: ` +
        `${p.toFixed(2)} ms; ratio ${(d / p).toFixed(2)}× (target ≤ 1.2×)`,
    );
  }
  fs.rmSync(work, { recursive: true, force: true });
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
