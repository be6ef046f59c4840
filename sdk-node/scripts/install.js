'use strict';
// `npm install`'s step for the native add-on (the package's "install" script). In order:
//   1. SCF_SDK_SKIP_BUILD=1: nothing (the pure-JS parts — invoke(), the types — work without the add-on);
//   2. a prebuilt add-on for this platform (prebuilds/<platform>-<arch>/, see lib/native.js) that loads in
//      this Node.js: nothing to build;
//   3. a checkout of the repository (the crate's Cargo.toml and src/ are here) with cargo on PATH: build
//      the add-on from source (scripts/build-addon.js → index.node);
//   4. otherwise: say why there is no add-on and what to do, and leave the install in place (the add-on
//      is needed only inside a function instance, where its absence is reported the same way).
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const native = require('../lib/native');

const here = path.resolve(__dirname, '..');

function say(message) {
  // npm shows an install script's output only when it fails or runs in the foreground; stderr is where a
  // user who looks finds it.
  process.stderr.write(`scf-sdk: ${message}\n`);
}

function prebuiltLoads() {
  const file = native.prebuiltPath();
  if (!fs.existsSync(file)) return `no prebuilt add-on for ${native.platformTag()}`;
  try {
    require(file);
    return null;
  } catch (e) {
    return `the prebuilt add-on ${file} does not load here (${e && e.message})`;
  }
}

function hasCargo() {
  const r = spawnSync(process.env.CARGO || 'cargo', ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

function main() {
  if (process.env.SCF_SDK_SKIP_BUILD === '1') {
    say('SCF_SDK_SKIP_BUILD=1: no add-on set up');
    return 0;
  }
  const why = prebuiltLoads();
  if (why === null) return 0;
  const checkout = fs.existsSync(path.join(here, 'Cargo.toml')) && fs.existsSync(path.join(here, 'src', 'lib.rs'));
  if (checkout && hasCargo()) {
    say(`${why}: building it from source with cargo`);
    const r = spawnSync(process.execPath, [path.join(__dirname, 'build-addon.js')], { stdio: 'inherit' });
    return r.status === null ? 1 : r.status;
  }
  const fix = checkout
    ? 'install Rust (https://rustup.rs) and run `npm install` again, or install the released package, which ships a prebuilt add-on'
    : 'this package carries no Rust sources to build one: use linux-x64 (glibc 2.17+), or build the add-on from a checkout of the repository (`make -C sdk-node build`) and name it with SCF_NODE_ADDON';
  say(`${why}, and none can be built here (${checkout ? 'no cargo on PATH' : 'no sources'}); ${fix}. ` +
    'The pure-JS parts (invoke(), the types) work without it.');
  return 0;
}

process.exit(main());
