#!/usr/bin/env bash
# A flame graph of `scf-local serve` answering sync `InvokeFunction` calls to a native no-op function, one
# client on one kept-alive connection: `bench/profile/front-door.sh [SECONDS] [OUT.svg]`.
#
# Needs the release build (`make bench` or `cargo build --release -p scf-local -p scf-bench-native`), `perf`
# (Debian: linux-perf) and inferno's `inferno-collapse-perf` and `inferno-flamegraph` (`cargo install
# inferno`). Only the platform's process is sampled (every thread, cpu-clock, DWARF call graphs); the
# client is a plain Python loop in another process.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-8}"
out="${2:-target/front-door-sync.svg}"
for tool in perf inferno-collapse-perf inferno-flamegraph; do
  command -v "$tool" > /dev/null || { echo "front-door.sh: $tool is missing (see the comment at the top)" >&2; exit 1; }
done
for f in target/release/scf-local target/release/libbench.so; do
  [ -e "$f" ] || { echo "front-door.sh: $f is missing: cargo build --release -p scf-local -p scf-bench-native" >&2; exit 1; }
done

work="$(mktemp -d)"
serve_pid=""
trap '[ -n "$serve_pid" ] && kill "$serve_pid" 2> /dev/null; rm -rf "$work"' EXIT
mkdir "$work/fn"
cp target/release/libbench.so "$work/fn/"
printf 'inputs:\n  name: noop\n  handler: bench.noop\n  runtime: native\n' > "$work/fn/serverless.yml"

target/release/scf-local serve --port 0 --data-dir "$work/data" "$work/fn" > /dev/null 2> "$work/serve.err" &
serve_pid=$!
addr=""
for _ in $(seq 1 300); do
  addr="$(grep -o 'listening on http://[0-9.:]*' "$work/serve.err" | sed 's|.*http://||' || true)"
  [ -n "$addr" ] && break
  kill -0 "$serve_pid" 2> /dev/null || { cat "$work/serve.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "front-door.sh: scf-local serve did not listen" >&2; exit 1; }

cat > "$work/drive.py" << 'PY'
import http.client, json, sys, time
host, port = sys.argv[1].rsplit(":", 1)
end = time.monotonic() + float(sys.argv[2])
conn = http.client.HTTPConnection(host, int(port))
body = json.dumps({"FunctionName": "noop", "Event": "{}"})
headers = {"X-TC-Action": "InvokeFunction", "Content-Type": "application/json"}
calls = 0
while time.monotonic() < end:
    conn.request("POST", "/", body, headers)
    answer = conn.getresponse().read()
    if b'"ErrMsg":""' not in answer:
        sys.exit(f"unexpected answer: {answer[:300]!r}")
    calls += 1
print(f"{calls} sync calls", file=sys.stderr)
PY
# One second of warm-up (the instance's cold start is not in the profile), then the sampled run.
python3 "$work/drive.py" "$addr" 1
python3 "$work/drive.py" "$addr" "$((secs + 2))" &
drive=$!
sleep 1
perf record -q -F 1999 --call-graph dwarf,32768 -p "$serve_pid" -o "$work/perf.data" -- sleep "$secs"
wait "$drive"
perf script --no-inline -i "$work/perf.data" 2> /dev/null | inferno-collapse-perf --all > "$work/folded"
inferno-flamegraph --minwidth 0.5 --width 1400 \
  --title "scf-local serve: sync InvokeFunction, native no-op, one client (perf cpu-clock, DWARF)" \
  < "$work/folded" > "$out"
echo "front-door.sh: wrote $out" >&2
