# The two commands of the README (`make demo`, `make test`) do all set-up on a fresh machine:
# .ci/bootstrap makes (once) a venv with PyTorch 2.11.0 outside the clone, and cargo builds
# the libtorch bindings against it. Tests run with the release profile so the bindings are
# compiled once for both.
VENV ?= $(HOME)/.cache/rift/torch-2.11.0
export RIFT_VENV := $(VENV)
export LIBTORCH_USE_PYTORCH := 1
export PATH := $(VENV)/bin:$(PATH)
export RIFT_PYTHON := $(VENV)/bin/python3
RIFT := target/release/rift

.PHONY: bootstrap build test demo bench clippy fmt fuzz

bootstrap:
	@.ci/bootstrap >/dev/null

build: bootstrap
	cargo build --release

# The one command CI runs: formatting and lints (warnings are errors) before the suite.
test: build
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings
	cargo test --release

# The explorer on a terminal; without one (CI, a pipe) the same pipeline, printed.
demo: build
	$(RIFT) doctor
	@if [ -t 1 ]; then $(RIFT) demo --session sessions/demo; \
	else $(RIFT) demo --headless --session sessions/demo; fi

bench: build
	cargo bench --bench engine && cargo bench --bench pipeline && cargo bench --bench tui && \
		cargo bench --bench versus && cargo bench --bench precision && cargo bench --bench alpha_search && \
		cargo bench --bench autoattack

clippy: bootstrap
	cargo clippy --release --all-targets -- -D warnings

fmt:
	cargo fmt --check
