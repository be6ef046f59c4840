'use strict';
// The poller of the runtime API's socket (src/poll.rs) across reconnections: a platform that closes the
// connection after every other event makes the instance reconnect to post that result, and the wait for the next
// event is then on the new connection. Every invocation must be answered, and what the poller holds per connection (a poll
// handle on its own duplicate of the socket) must be released, so the instance's descriptors do not grow. And a
// platform that goes away while a handler runs: the poller sees the end while no `next` waits, and the result
// still reaches the platform on a new connection.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startMockApi } = require('../bench/mock-api');

const REPO = path.resolve(__dirname, '..', '..');
const SHIM = process.env.SCF_SHIM || path.join(REPO, 'target', 'debug', 'scf-shim');

/**
 * Starts the real scf-shim on the Node host with `handler` from `code`, against the runtime API at `sock`.
 * @returns {{exited: Promise<number | string>, stderr: () => string}}
 */
function startShim(code, sock, handler, name) {
  const env = {
    ...process.env,
    _HANDLER: handler,
    SCF_RUNTIME: 'nodejs',
    SCF_RUNTIME_API: `unix:${sock}`,
    USER_CODE_ROOT: code,
    SCF_FUNCTIONNAME: name,
    SCF_NODE_BOOTSTRAP: path.join(REPO, 'sdk-node', 'bootstrap.js'),
  };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.SCF_NODE_ADDON;
  const child = spawn(SHIM, [], { env, cwd: code, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? s)));
  return { exited, stderr: () => stderr };
}

test('a connection closed after every other event: every invocation answered, descriptors bounded', async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'scf-node-reconnect-'));
  test.after(() => fs.rmSync(work, { recursive: true, force: true }));
  const code = path.join(work, 'code');
  fs.mkdirSync(code);
  // Each invocation answers with the number of descriptors the instance has open while it runs.
  fs.writeFileSync(path.join(code, 'index.js'), "exports.fds = async () => require('fs').readdirSync('/proc/self/fd').length;\n");
  const N = 60;
  const sock = path.join(work, 'api.sock');
  const { server, posts } = await startMockApi(sock, Array(N).fill('{}'), { close: true });
  const shim = startShim(code, sock, 'index.fds', 'reconnect');
  const exit = await shim.exited;
  const stderr = shim.stderr();
  server.close();
  assert.equal(exit, 0, stderr);
  assert.equal(posts.length, N, stderr);
  for (const p of posts) assert.equal(p.type, 'response', `${p.id}: ${p.body}`);
  const counts = posts.map((p) => Number(p.body));
  // After the first invocations (the loop's own descriptors are made by then), the count stays flat.
  const early = Math.max(...counts.slice(0, 10));
  const late = Math.max(...counts.slice(10));
  assert.ok(late <= early, `open descriptors grew across reconnections: ${counts.join(' ')}`);
});

test('the platform closes the connection while a handler runs: its result goes on a new connection, the next event is answered', async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'scf-node-close-running-'));
  test.after(() => fs.rmSync(work, { recursive: true, force: true }));
  const code = path.join(work, 'code');
  fs.mkdirSync(code);
  // The second event's handler waits for a line on a FIFO, which the test writes once the platform's side of the
  // connection is gone: the close is seen by the waiting poller while no `next` waits.
  const fifo = path.join(work, 'release');
  const made = require('node:child_process').spawnSync('mkfifo', [fifo]);
  assert.equal(made.status, 0, String(made.stderr));
  fs.writeFileSync(
    path.join(code, 'index.js'),
    `exports.run = async (event) => {
  if (event.wait) await require('fs').promises.readFile(${JSON.stringify(fifo)}, 'utf8');
  return { n: event.n };
};
`,
  );
  const events = [{ n: 1 }, { n: 2, wait: true }, { n: 3 }, { n: 4 }].map((e) => JSON.stringify(e));
  const sock = path.join(work, 'api.sock');
  let closedSecond;
  const closed = new Promise((resolve) => (closedSecond = resolve));
  const { server, posts } = await startMockApi(sock, events, {
    onEvent: (n, socket) => {
      if (n !== 2) return;
      // Once the event is out, the platform's side goes away (the instance sees the end while the handler runs).
      socket.on('close', closedSecond);
      socket.destroy();
    },
  });
  const shim = startShim(code, sock, 'index.run', 'close-running');
  await closed;
  // Off the event loop (opening a FIFO for writing waits for its reader), so the mock platform keeps serving.
  await fs.promises.writeFile(fifo, 'go\n');
  const exit = await shim.exited;
  const stderr = shim.stderr();
  server.close();
  assert.equal(exit, 0, stderr);
  const bodies = posts.filter((p) => p.type === 'response').map((p) => JSON.parse(p.body).n);
  const seen = posts.map((p) => `${p.id} ${p.type} ${p.body}`).join('; ');
  // Every result once, in order: the second on a new connection (the platform was gone when it was written).
  assert.deepEqual(bodies, [1, 2, 3, 4], `${seen}\n${stderr}`);
});
