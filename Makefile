# The project's one task runner; CI calls `make test` too.
#   make demo    build everything, then invoke the example functions through scf-local
#   make test    every test tier (unit → platform → per-language hosts), after lint
#   make build   the workspace, the example libraries and the language SDKs
#   make lint    cargo fmt --check, clippy and cargo doc (warnings, broken doc links included, are errors)
#   make soak    the reliability tier (tests/tests/reliability.rs) at 25 times its counts, with its figures
#   make bench   benchmarks side by side with AWS's runtime clients, written to BENCHMARKS.md
#                (QUICK=1: fewer runs and smaller sizes, written to target/BENCHMARKS-quick.md)
#   make peers   AWS's Node.js and Rust runtime clients, for the Lambda-dialect tests (make test runs it)
#   make dist    the release artifacts in dist/: the runtime tarball, the Python wheel, the npm package
#                (every binary for glibc 2.17; docs/install.md)
ROOT    := $(abspath .)
CARGO   ?= cargo
PYTHON  ?= python3
VENV    := $(ROOT)/.venv
export CARGO_TERM_COLOR ?= never

# make bench: set up ours (release) and AWS's runtime clients, then write BENCHMARKS.md (not a test);
# make bench QUICK=1 for a quick look (fewer runs, smaller sizes).
.PHONY: bench
bench:
	bench/setup.sh
	target/release/scf-bench $(if $(QUICK),--quick)

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
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --quiet

test: lint build peers test-rust test-platform-python test-sdks test-dist

# The release artifacts (release profile) in dist/.
.PHONY: dist dist-debug test-dist
dist: venv
	scripts/dist.sh release $(ROOT)/dist

# The same artifacts in the debug profile, for the tests.
DIST_DEBUG := $(ROOT)/target/dist-debug
dist-debug: venv
	scripts/dist.sh debug $(DIST_DEBUG)

# The artifacts as a user gets them: the tarball extracted into a prefix and run with a PATH of that prefix,
# /usr/bin and /bin only; the wheel in a fresh venv and the npm package in a fresh folder, with no cargo.
test-dist: dist-debug build-rust venv
	SCF_DIST_DIR=$(DIST_DEBUG) $(VENV)/bin/python -m pytest -q tests/dist
	$(VENV)/bin/mypy --strict tests/dist sdk-python/build_backend

# AWS's Node.js and Rust runtime clients, run on scf-local by tests/tests/lambda.rs.
.PHONY: peers
peers:
	bench/peers/setup.sh

test-rust:
	$(CARGO) test --workspace

# The reliability tier at soak counts (not part of make test): fuzz, oversized bodies and logs, descriptor
# exhaustion, a hostile runtime, each printing its figures (requests, answers, hangs, peak RSS, fds).
.PHONY: soak
soak: build
	SCF_SOAK=1 $(CARGO) test -p scf-tests --test reliability -- --nocapture --test-threads=1 \
	  >target/soak.log 2>&1; rc=$$?; \
	  grep -E 'front-door fuzz|oversized bodies|log cap|descriptor limit|runtime-API abuse|test result|FAILED|panicked' target/soak.log; \
	  exit $$rc

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
	rm -rf .venv dist sdk-node/index.node sdk-node/node_modules
