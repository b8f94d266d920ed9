# agentd — build, test, demo and benchmark entry points.
#
#   make deps    libseccomp-dev + pkg-config (apt), checks for cargo
#   make build   debug binaries (what the e2e tests drive)
#   make test    build, then every test; needs root. AGENTD_TEST_EXPECT=userns,landlock,…
#                turns a missing kernel feature into a failure instead of a SKIP (.ci/run sets it)
#   make demo    a confined shell next to a fake home with an SSH key (root; runs as `nobody`)
#   make bench   agentctl run latency against bwrap and bare exec (root)
#   make lint    what CI checks before the tests

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
AGENTD_TEST_EXPECT ?=

.PHONY: all deps build release test demo bench lint clean

all: build

deps:
	@command -v $(CARGO) >/dev/null || { \
	  echo "cargo not found. Install Rust (>= 1.85) with rustup:"; \
	  echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y"; \
	  echo "then run: . \"\$$HOME/.cargo/env\""; exit 1; }
	@if ! pkg-config --exists libseccomp 2>/dev/null; then \
	  echo "installing libseccomp-dev pkg-config"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq libseccomp-dev pkg-config >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq libseccomp-dev pkg-config; }; \
	fi

build: deps
	$(CARGO) build --workspace --bins

release: deps
	$(CARGO) build --workspace --bins --release

test: build
	AGENTD_TEST_EXPECT=$(AGENTD_TEST_EXPECT) $(CARGO) test --workspace

demo: build
	bash tests/demo.sh

bench: deps
	bash bench/run-latency.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
