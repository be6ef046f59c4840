'use strict';
// Loads the neon add-on (the Rust core: runtime API client, context, error bodies).

const path = require('node:path');

const ADDON = process.env.SCF_NODE_ADDON || path.join(__dirname, '..', 'index.node');

let cached;

/** The add-on, or a clear error saying how to build it. */
function load() {
  if (cached) return cached;
  try {
    cached = require(ADDON);
  } catch (e) {
    const err = new Error(
      `scf-sdk: cannot load the native add-on ${ADDON} (${e && e.message}). ` +
        'Build it with `make -C sdk-node build` (or `npm install` in sdk-node/), which runs ' +
        '`cargo build -p scf-sdk-node --release` and copies libscf_sdk_node.so to index.node.',
    );
    err.code = 'SCF_ADDON_MISSING';
    throw err;
  }
  return cached;
}

/** The add-on if it is built, else null (the local `invoke()` helper works without it). */
function tryLoad() {
  try {
    return load();
  } catch {
    return null;
  }
}

module.exports = { load, tryLoad, ADDON };
