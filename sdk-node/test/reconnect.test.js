'use strict';
// The poller of the runtime API's socket (src/poll.rs) across reconnections: a platform that closes the
// connection after every other event makes the instance reconnect to post that result, and the wait for the next
// event is then on the new connection. Every invocation must be answered, and what the poller holds per connection (a poll
// handle on its own duplicate of the socket) must be released, so the instance's descriptors do not grow.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startMockApi } = require('../bench/mock-api');

const REPO = path.resolve(__dirname, '..', '..');
const SHIM = process.env.SCF_SHIM || path.join(REPO, 'target', 'debug', 'scf-shim');

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
  const env = {
    ...process.env,
    _HANDLER: 'index.fds',
    SCF_RUNTIME: 'nodejs',
    SCF_RUNTIME_API: `unix:${sock}`,
    USER_CODE_ROOT: code,
    SCF_FUNCTIONNAME: 'reconnect',
    SCF_NODE_BOOTSTRAP: path.join(REPO, 'sdk-node', 'bootstrap.js'),
  };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.SCF_NODE_ADDON;
  const child = spawn(SHIM, [], { env, cwd: code, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exit = await new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? s)));
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
