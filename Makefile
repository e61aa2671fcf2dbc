# The project's two promised commands are `make demo` and `make test` (see README.md); both
# work on a fresh machine that has Python 3.11, Java 17, Maven and Node.js 20.
# Set-up is idempotent and quick when warm: the venv is made once, the project reinstalled only
# when pyproject.toml changes, Kafka's jars and Azurite fetched only when missing.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_PORT ?= 3000

.DEFAULT_GOAL := help
.PHONY: help setup test demo stack-up stack-down lint bench

help:
	@echo "make demo        set up, start the local stack and dagster dev (UI on :3000); Ctrl-C stops"
	@echo "make test        set up, then the whole test suite against the local stack"
	@echo "make stack-up    set up and start the local stack (kusto-sink devstack up)"
	@echo "make stack-down  stop the local stack"
	@echo "make lint        ruff check and ruff format --check"
	@echo "make bench       the benchmark (~15 min; BENCH_ARGS=--help for its flags), bench/results/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

setup: $(INSTALLED)
	$(BIN)/kusto-sink devstack fetch

# The `stack` fixture starts the servers the tests need (or reuses a running stack).
# pytest exits 5 when it collected no test: that fails here like any other non-zero status.
test: setup
	$(BIN)/pytest

# The demo runs its own sink (devstack/demo.yaml, fed by a producer) unless KUSTO_SINK_CONFIG
# names other settings.
demo: setup
	$(BIN)/kusto-sink devstack demo --port $(DEMO_PORT)

stack-up: setup
	$(BIN)/kusto-sink devstack up

stack-down: $(INSTALLED)
	$(BIN)/kusto-sink devstack down

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Starts the servers it needs and stops the ones it started; not part of `make test` (a smoke
# run of it with tiny sizes is). BENCH_ARGS passes flags, e.g. BENCH_ARGS="--records 100000".
bench: setup
	$(BIN)/kusto-sink bench $(BENCH_ARGS)
