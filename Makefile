# The project's one task runner; CI calls `make test` too.
#   make demo    build everything, then invoke the example functions through scf-local
#   make test    every test tier (unit → platform → per-language hosts), after lint
#   make build   the workspace, the example libraries and the language SDKs
#   make lint    cargo fmt --check and clippy (warnings are errors)
#   make bench   benchmarks side by side with AWS's runtime clients, written to BENCHMARKS.md
#   make peers   AWS's Node.js and Rust runtime clients, for the Lambda-dialect tests (make test runs it)
ROOT    := $(abspath .)
CARGO   ?= cargo
PYTHON  ?= python3
VENV    := $(ROOT)/.venv
export CARGO_TERM_COLOR ?= never

# make bench: set up ours (release) and AWS's runtime clients, then write BENCHMARKS.md (not a test).
.PHONY: bench
bench:
	bench/setup.sh
	target/release/scf-bench

.PHONY: all build build-rust build-sdks venv demo test test-rust test-platform-python test-sdks lint fmt clean

all: build

build: build-rust build-sdks venv

# Debug builds: the tests and the demo run the debug binaries (target/debug/scf-local, scf-shim).
build-rust:
	$(CARGO) build --workspace --all-targets

build-sdks: build-rust
	$(MAKE) -C sdk-python build ROOT=$(ROOT)
	$(MAKE) -C sdk-node build ROOT=$(ROOT) PROFILE=debug

demo: build
	scripts/demo.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: lint build peers test-rust test-platform-python test-sdks

# AWS's Node.js and Rust runtime clients, run on scf-local by tests/tests/lambda.rs.
.PHONY: peers
peers:
	bench/peers/setup.sh

test-rust:
	$(CARGO) test --workspace

# The Python tools the tests use (pytest, the official TencentCloud SDK), in .venv.
venv: $(VENV)/.requirements-dev

$(VENV)/.requirements-dev: requirements-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The official tencentcloud-sdk-python client against scf-local serve.
test-platform-python: build-rust venv
	$(VENV)/bin/python -m pytest -q tests/platform

test-sdks:
	$(MAKE) -C sdk-python test ROOT=$(ROOT)
	$(MAKE) -C sdk-node test ROOT=$(ROOT)

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf .venv sdk-node/index.node sdk-node/node_modules
