'use strict';
// Finds and loads the neon add-on (the Rust core: runtime API client, context, error bodies).
//
// The add-on is the first of these that exists:
//   1. `SCF_NODE_ADDON`, a path (the tests use a stand-in);
//   2. `index.node` beside package.json: built from source on this machine (`make -C sdk-node build`, or
//      `npm install` from a checkout of the repository when no prebuilt one fits);
//   3. `prebuilds/<platform>-<arch>/scf_sdk_node.node`: the prebuilt add-on the npm package ships
//      (linux-x64: N-API, any Node.js >= 18, glibc >= 2.17).
// `scripts/install.js` uses the same list to decide whether anything needs building.

const fs = require('node:fs');
const path = require('node:path');

const PACKAGE_DIR = path.join(__dirname, '..');
/** The add-on's file name inside `prebuilds/<platform>-<arch>/`. */
const PREBUILT_NAME = 'scf_sdk_node.node';

/** `<platform>-<arch>` of this process, as `prebuilds/` names its folders. */
function platformTag() {
  return `${process.platform}-${process.arch}`;
}

/** The prebuilt add-on for this platform (it may not exist). */
function prebuiltPath() {
  return path.join(PACKAGE_DIR, 'prebuilds', platformTag(), PREBUILT_NAME);
}

/** Where the add-on may be, in the order tried. */
function candidates() {
  const list = [];
  if (process.env.SCF_NODE_ADDON) list.push(process.env.SCF_NODE_ADDON);
  list.push(path.join(PACKAGE_DIR, 'index.node'), prebuiltPath());
  return list;
}

/** The `<platform>-<arch>` folders of `prebuilds/`: the platforms this copy of the package has an add-on for. */
function prebuiltPlatforms() {
  try {
    return fs.readdirSync(path.join(PACKAGE_DIR, 'prebuilds')).filter((d) => fs.existsSync(path.join(PACKAGE_DIR, 'prebuilds', d, PREBUILT_NAME)));
  } catch {
    return [];
  }
}

/** The first candidate that exists, or null. */
function locate() {
  const list = candidates();
  // An explicit SCF_NODE_ADDON is used as given, so that a wrong one fails loudly instead of falling back.
  if (process.env.SCF_NODE_ADDON) return list[0];
  return list.find((p) => fs.existsSync(p)) || null;
}

let cached;

/** Loads the add-on `file` straight away: `require` would first resolve the path as a module (a few stat and
 * realpath calls, ~0.3 ms of a cold start here) to the same `process.dlopen`. */
function dlopen(file) {
  const module = { exports: {} };
  process.dlopen(module, path.resolve(file));
  return module.exports;
}

/** The add-on, or a clear error saying what to do. */
function load() {
  if (cached) return cached;
  const file = locate();
  let cause = 'none of them exists';
  if (file) {
    try {
      cached = file.endsWith('.node') ? dlopen(file) : require(file);
      return cached;
    } catch (e) {
      cause = `${file}: ${e && e.message}`;
    }
  }
  const err = new Error(
    `scf-sdk: cannot load the native add-on (looked for ${candidates().join(', ')}; ${cause}). ` +
      `This copy of scf-sdk has prebuilt add-ons for: ${prebuiltPlatforms().join(', ') || 'none'} (the ` +
      `released package ships linux-x64: glibc 2.17 or later, Node.js 18 or later); this is ${platformTag()}. ` +
      'Install the released package (`npm install scf-sdk`, or its .tgz), or build the add-on from a checkout ' +
      'of the repository with Rust installed (`make -C sdk-node build`), or name a built one with SCF_NODE_ADDON.',
  );
  err.code = 'SCF_ADDON_MISSING';
  throw err;
}

/** The add-on if there is one that loads, else null (the local `invoke()` helper works without it). */
function tryLoad() {
  try {
    return load();
  } catch {
    return null;
  }
}

module.exports = { load, tryLoad, locate, candidates, prebuiltPath, prebuiltPlatforms, platformTag, PREBUILT_NAME };
