#!/usr/bin/env bash
# Sets up what `make bench` measures: release builds of ours, and AWS's runtime clients from the registries
# (awslambdaric from PyPI via .venv, aws-lambda-ric from npm, lambda_runtime from crates.io).
# A peer that cannot be installed is reported as missing in BENCHMARKS.md, not silently skipped.
set -uo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p scf-shim -p scf-local -p scf-bench -p scf-bench-native
make -s venv
make -s -C sdk-python build
make -s -C sdk-node build PROFILE=release

echo "== lambda_runtime (crates.io)"
(cd bench/peers/rust && cargo build --release -q) || echo "bench: lambda_runtime did not build; its rows will be missing"

echo "== aws-lambda-ric (npm; its native part needs cmake autoconf automake libtool g++)"
need=()
for pkg in cmake autoconf automake libtool g++; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null 2>&1 \
    || echo "bench: could not install ${need[*]}"
fi
(cd bench/peers/node && npm install --no-audit --no-fund --loglevel=error) || echo "bench: aws-lambda-ric did not install; its rows will be missing"
