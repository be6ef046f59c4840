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

echo "== AWS's Node.js and Rust runtime clients (npm, crates.io)"
bench/peers/setup.sh || echo "bench: a peer did not install; its rows will be missing"
