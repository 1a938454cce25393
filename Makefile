# options-helper: every target bootstraps .venv on a fresh machine that has only python3 and make.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export DAGSTER_DISABLE_TELEMETRY := 1
# Compile the installed packages' bytecode once at install: where PYTHONDONTWRITEBYTECODE is set
# (as in this sandbox) every start would otherwise compile typer, duckdb's and dagster's Python
# from source (options-helper --help: ~0.1 s with the cache, ~0.25 s without).
export UV_COMPILE_BYTECODE := 1
# The demo writes here; tests always use temporary directories.
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: help venv demo test test-slow lint bench soak browser clean

help:
	@echo "make demo   set up .venv and run the daily pipeline on the synthetic provider"
	@echo "make test   set up .venv and run the whole test suite"
	@echo "make test-slow  the long kill and contention variants"
	@echo "make lint   ruff, mypy and the import contracts (lint-imports)"
	@echo "make bench  benchmarks; figures go to docs/performance.md"
	@echo "make soak   long kill / contention / fault harness (not part of make test)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"

# Re-sync whenever the lock, the project metadata or these settings change.
$(VENV)/.synced: uv.lock pyproject.toml Makefile | $(UV)
	$(UV) sync --frozen --all-extras --group dev --python $(BIN)/python
	@touch $@

venv: $(VENV)/.synced

demo: venv
	$(BIN)/python -m frontends.cli.demo $(DEMO_ARGS)

# Browser tests need Debian's chromium; install it when missing and we are allowed to.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "warning: chromium missing; browser tests will be skipped"; fi; \
	fi

# Two workers on a 2-core machine; a file's tests share a worker (and its session fixtures).
PYTEST_WORKERS ?= auto
test: venv browser
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The long variants (200 SIGKILLs, 120 s of contention) kept out of `make test`.
test-slow: venv
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check ledger stages frontends tests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: venv
	$(BIN)/python -m tests.bench.run_all

soak: venv
	$(BIN)/python -m tests.soak.run_all

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
