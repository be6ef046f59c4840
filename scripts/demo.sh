#!/usr/bin/env bash
# `make demo`: invoke the example functions in every language through the real scf-local and show their
# results (stdout) and logs (stderr) as a developer sees them.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/target/debug
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Native examples: copy each library into a code directory of its own, as a deployment would.
mkdir -p "$WORK/rust-hello" "$WORK/rust-errors"
cp "$BIN/libindex.so" "$WORK/rust-hello/"
cp "$BIN/liberrors.so" "$WORK/rust-errors/"

export SCF_PYTHON="$ROOT/.venv/bin/python"
unset RUST_BACKTRACE

show() {
  local title=$1; shift
  printf '\n\033[1m== %s\033[0m\n$ scf-local invoke %s\n' "$title" "$*"
  "$BIN/scf-local" invoke "$@" 2>"$WORK/log"
  local code=$?
  printf -- '-- log (stderr) --\n'
  cat "$WORK/log"
  printf -- '-- exit %s --\n' "$code"
}

show "Rust: hello" "$WORK/rust-hello" --handler index.main_handler --event '{"name":"SCF"}'
show "Rust: a returned error (430 HandledError)" "$WORK/rust-errors" --handler errors.returned_error
show "Rust: a panic (430 UnhandledError)" "$WORK/rust-errors" --handler errors.panics
show "Rust: past the timeout (433)" "$WORK/rust-errors" --handler errors.sleeps --timeout 1 --event '{"seconds":5}'
show "Rust: no such handler (437)" "$WORK/rust-errors" --handler errors.nope

if [ -d examples/python-hello ]; then
  show "Python: hello" examples/python-hello --handler index.main_handler --runtime python3 --event '{"name":"SCF"}'
fi
if [ -d examples/python-errors ]; then
  show "Python: an uncaught exception (430)" examples/python-errors --handler index.raises --runtime python3
fi
if [ -d examples/node-hello ]; then
  show "Node.js: hello (CommonJS)" examples/node-hello --handler index.main_handler --runtime nodejs --event '{"name":"SCF"}'
fi
if [ -d examples/node-esm ]; then
  show "Node.js: ES module with top-level await" examples/node-esm --handler index.main_handler --runtime nodejs --event '{"name":"SCF"}'
fi
if [ -d examples/node-errors ]; then
  show "Node.js: a thrown Error (430)" examples/node-errors --handler index.throws --runtime nodejs
fi
