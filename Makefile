# relationd developer entry points. Every target bootstraps what it needs (scripts/ensure-venv,
# scripts/ensure-services), so `make test` works on a fresh clone. Tools run from .venv/bin.
#
#   make run       venv + services + migrate, then the daemon and the scripted demo (Ctrl-C stops)
#   make test      ruff check, then pytest (fast suite, one worker per core; slow fault/soak tests
#                  excluded); promtool, dot too
#   make lint      ruff check, ruff format --check, mypy
#   make fault     the slow fault and soak tests (pytest -m slow)
#   make ha-demo   the highly available set on this machine (3 broker nodes, database primary,
#                  standby and monitor, 2 daemons) surviving node kills; stops it all (root)
#   make bench     the benchmarks (installs the bench extra)
#   make migrate   create or upgrade the schema of RELATIOND_DATABASE_URL (schema.sql, migrations/)
#   make clean     remove .venv and caches
#
# PYTEST_ARGS passes extra pytest arguments, e.g. make test PYTEST_ARGS='-k dedupe -x'; '-n 0' runs
# the fast suite in one process (to see a test's output with -s).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BIN := .venv/bin
PYTEST_ARGS ?=
# Each worker has its own database and vhost (tests/conftest.py); a file's tests stay together, so
# its module fixtures (private nodes, a daemon) start once. The slow suite runs in one process.
FAST_WORKERS := -n auto --maxprocesses 4 --dist loadfile

# pytest exit 5 means it collected no tests: for a target whose job is to run tests, a failure.
define pytest
	rc=0; $(BIN)/pytest -p no:cacheprovider -ra $(1) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make: pytest collected no tests (exit 5); that is a failure" >&2; fi; \
	exit $$rc
endef

.PHONY: help venv services run test lint fault bench migrate clean ha-demo

help:
	@sed -n 's/^#   make /  make /p' Makefile

venv:
	@scripts/ensure-venv

services:
	@scripts/ensure-services

migrate: venv services
	@$(BIN)/relationd migrate

run: migrate
	@scripts/run-demo

test: venv
	@$(BIN)/ruff check --quiet .
	@scripts/ensure-services
	@scripts/ensure-tools
	@$(call pytest,$(FAST_WORKERS))

lint: venv
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy daemon handlers contracts client

fault: venv services
	@$(call pytest,-m slow)

ha-demo: venv services
	@$(BIN)/python deploy/ha_demo.py

bench:
	@scripts/ensure-venv --bench
	@scripts/ensure-services
	@$(BIN)/python -c 'import importlib.util as u, sys; sys.exit(u.find_spec("bench.__main__") is None)' 2>/dev/null || \
		{ echo "make bench: there is no bench package (bench/__main__.py) yet" >&2; exit 1; }
	@$(BIN)/python -m bench

clean:
	rm -rf .venv .pytest_cache .ruff_cache .mypy_cache .hypothesis .run build dist *.egg-info
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
