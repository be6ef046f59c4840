'use strict';
// Test helpers: a temporary code root with a handler inside node_modules (node_modules/ is git-ignored,
// so it is made at test time), and a fake add-on driving bootstrap.js without the Rust core.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const FIXTURES = path.join(__dirname, 'fixtures');

function nodeModulesRoot() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'scf-sdk-nm-'));
  const pkg = path.join(root, 'node_modules', 'my-handler');
  fs.mkdirSync(pkg, { recursive: true });
  fs.writeFileSync(path.join(pkg, 'package.json'), '{"name":"my-handler","main":"lib.js"}');
  fs.writeFileSync(path.join(pkg, 'lib.js'), "exports.handler = async () => 'from node_modules';\n");
  return root;
}

/**
 * Runs bootstrap.js against the fake add-on (test/fake-addon.js) with the given events (raw texts).
 * Returns {status, stdout, stderr, posts: [{type, ...}]}.
 */
function runBootstrap(codeRoot, handler, events, extraEnv = {}) {
  const env = { ...process.env, ...extraEnv };
  delete env.NODE_EXTRA_CA_CERTS;
  env.SCF_NODE_ADDON = path.join(__dirname, 'fake-addon.js');
  env.FAKE_CODE_ROOT = codeRoot;
  env.FAKE_HANDLER = handler;
  env.FAKE_EVENTS = JSON.stringify(events);
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'bootstrap.js')], {
    env,
    cwd: codeRoot,
    encoding: 'utf8',
    timeout: 20_000,
  });
  const posts = [];
  const logs = [];
  // Every line in the order printed: a log line's place among the posts.
  const lines = r.stdout.split('\n').filter((l) => l.length);
  for (const l of lines) {
    if (l.startsWith('@@POST ')) posts.push(JSON.parse(l.slice(7)));
    else if (l.length) logs.push(l);
  }
  return { status: r.status, signal: r.signal, stderr: r.stderr, posts, logs, lines };
}

module.exports = { FIXTURES, nodeModulesRoot, runBootstrap };
