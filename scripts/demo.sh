#!/usr/bin/env bash
# `make demo`: invoke the example functions in every language through the real scf-local and show their
# results (stdout) and logs (stderr) as a developer sees them.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/target/debug
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

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

# Native examples run from their crates: scf-local builds each with cargo (its progress in the log), then loads it.
show "Rust: hello" examples/rust-hello --event '{"name":"SCF"}'
show "Rust: a returned error (430 HandledError)" examples/rust-errors --handler errors.returned_error
show "Rust: a panic (430 UnhandledError)" examples/rust-errors --handler errors.panics
show "Rust: past the timeout (433)" examples/rust-errors --handler errors.sleeps --timeout 1 --event '{"seconds":5}'
show "Rust: no such handler (437)" examples/rust-errors --handler errors.nope

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

# ---------------------------------------------------------------------------------------------------
# The platform: scf-local serve with two functions, driven through its TencentCloud-API-shaped front door.
printf '\n\033[1m== scf-local serve: cold and warm calls, an async call, a throttled call\033[0m\n'
mkdir -p "$WORK/counter"
cp "$BIN/liberrors.so" "$WORK/counter/"
cat > "$WORK/counter/serverless.yml" <<'YML'
component: scf
inputs:
  name: counter
  handler: errors.counter
  runtime: native
  timeout: 10
  local:
    concurrency: 1
YML
"$BIN/scf-local" serve --port 0 --data-dir "$WORK/data" "$WORK/counter" 2>"$WORK/serve.log" &
SERVE=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/serve.log" && break; sleep 0.1; done
cat "$WORK/serve.log"
ADDR=$(sed -n 's|^scf-local: listening on http://||p' "$WORK/serve.log")
api() { # api ACTION JSON
  curl -sS -X POST "http://$ADDR/" -H "X-TC-Action: $1" -H "Content-Type: application/json" -d "$2"; echo
}
echo "-- cold call (Init Report in the log):"
api Invoke '{"FunctionName":"counter","ClientContext":"{}","LogType":"Tail"}'
echo "-- warm call (same instance: invocations=2):"
api Invoke '{"FunctionName":"counter","ClientContext":"{}"}'
echo "-- async call (a request id at once):"
api Invoke '{"FunctionName":"counter","InvocationType":"Event","ClientContext":"{\"sleep_ms\":1500}"}'
sleep 0.3
echo "-- sync call while the only instance is busy with the async one (concurrency 1 → 432):"
api Invoke '{"FunctionName":"counter","ClientContext":"{}"}'
sleep 1.5
echo "-- the function's logs (scf-local logs counter):"
"$BIN/scf-local" logs counter --data-dir "$WORK/data"
kill -TERM "$SERVE"; wait "$SERVE" 2>/dev/null

# ---------------------------------------------------------------------------------------------------
# Web functions: HTTP servers started by scf_bootstrap, proxied at /web/<function>/<path> (docs/web.md).
printf '\n\033[1m== scf-local serve: web functions (Python stdlib, Node http, Rust hyper) and an image-style event function\033[0m\n'
mkdir -p "$WORK/web-rust"
cp examples/web-rust/scf_bootstrap examples/web-rust/serverless.yml "$BIN/web-rust" "$WORK/web-rust/"
"$BIN/scf-local" serve --port 0 --data-dir "$WORK/webdata" examples/web-python examples/web-node \
  "$WORK/web-rust" examples/image-event 2>"$WORK/web.log" &
WEB=$!
for _ in $(seq 100); do grep -q "data in" "$WORK/web.log" && break; sleep 0.1; done
cat "$WORK/web.log"
WADDR=$(sed -n 's|^scf-local: listening on http://||p' "$WORK/web.log")
for f in web-python web-node web-rust; do
  echo "-- curl http://$WADDR/web/$f/echo?a=1 -d hello"
  curl -sS "http://$WADDR/web/$f/echo?a=1" -d hello; echo
done
echo "-- a request past the timeout (433):"
curl -sS "http://$WADDR/web/web-python/sleep?s=10"; echo
echo "-- the image-style event function (POST /event-invoke):"
curl -sS -X POST "http://$WADDR/" -H "X-TC-Action: Invoke" \
  -d '{"FunctionName":"image-event","ClientContext":"{\"name\":\"SCF\"}"}'; echo
echo "-- web-python's logs (scf-local logs web-python):"
"$BIN/scf-local" logs web-python --data-dir "$WORK/webdata"
kill -TERM "$WEB"; wait "$WEB" 2>/dev/null
