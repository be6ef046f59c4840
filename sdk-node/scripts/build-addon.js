'use strict';
// Builds the neon add-on (crate scf-sdk-node) with cargo and copies it to index.node beside package.json.
// Run by `make -C sdk-node build`, and by `npm install` from a checkout when no prebuilt add-on fits
// (scripts/install.js). Needs the workspace around it: the released package does not carry it.
// SCF_SDK_PROFILE=debug builds a debug add-on.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const here = path.resolve(__dirname, '..');
const out = path.join(here, 'index.node');

const cargo = process.env.CARGO || 'cargo';
const profile = process.env.SCF_SDK_PROFILE === 'debug' ? [] : ['--release'];
const args = ['build', '-p', 'scf-sdk-node', ...profile, '--message-format=json-render-diagnostics',
  '--manifest-path', path.join(here, 'Cargo.toml')];
const r = spawnSync(cargo, args, { cwd: here, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
if (r.error) {
  console.error(`scf-sdk: cannot run ${cargo} (${r.error.message}); the add-on needs a Rust toolchain (https://rustup.rs)`);
  process.exit(1);
}
if (r.status !== 0) {
  console.error(`scf-sdk: \`${cargo} ${args.join(' ')}\` failed (exit ${r.status})`);
  process.exit(r.status || 1);
}
let built = null;
for (const line of r.stdout.split('\n')) {
  if (!line.startsWith('{')) continue;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    continue;
  }
  if (msg.reason === 'compiler-artifact' && msg.target && msg.target.name === 'scf_sdk_node') {
    built = (msg.filenames || []).find((f) => /\.(so|dylib|dll)$/.test(f)) || built;
  }
}
if (!built) {
  console.error('scf-sdk: cargo built no scf_sdk_node library');
  process.exit(1);
}
// Copy through a temporary file and rename, so a running node never sees a half-written add-on.
const tmp = `${out}.${process.pid}.tmp`;
fs.copyFileSync(built, tmp);
fs.renameSync(tmp, out);
console.log(`scf-sdk: ${path.relative(process.cwd(), out) || out} <- ${built}`);
