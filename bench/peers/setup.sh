#!/usr/bin/env bash
# Installs AWS's Node.js and Rust runtime clients from the registries, for the Lambda-dialect tests
# (tests/tests/lambda.rs) and the benchmarks: aws-lambda-ric from npm (its native part needs cmake,
# autoconf, automake, libtool and g++ from Debian) and the lambda_runtime crate (built outside the
# workspace). awslambdaric, the Python one, comes with .venv (requirements-dev.txt).
set -euo pipefail
cd "$(dirname "$0")"

need=()
for pkg in cmake autoconf automake libtool g++; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "peers: installing ${need[*]} (needed to build aws-lambda-ric's native part)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -f node/node_modules/aws-lambda-ric/index.mjs ]; then
  (cd node && npm install --no-audit --no-fund --loglevel=error)
fi
(cd rust && cargo build --release -q)
