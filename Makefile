# Two commands on a fresh clone: `make run` (the demo) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The suite runs on real PostgreSQL and Redis; these defaults are the standard local ports.
# Redis database 15 keeps the suite away from a demo running on database 0.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/connector
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/15

.PHONY: install run test lint bench clean

# The browser tests (tests/browser) drive Debian's Chromium through Playwright; Playwright's own
# browser download is never used (it cannot work on a closed network).
CHROMIUM ?= /usr/bin/chromium

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP) $(CHROMIUM)

$(CHROMIUM):
	@if [ "$$(id -u)" != "0" ]; then \
		echo "$(CHROMIUM) is missing and the browser tests need it. Install Debian's Chromium as root:" >&2; \
		echo "  apt-get update && apt-get install -y --no-install-recommends chromium" >&2; \
		exit 1; \
	fi
	@command -v apt-get >/dev/null || { \
		echo "$(CHROMIUM) is missing and there is no apt-get here: install Chromium at $(CHROMIUM) yourself." >&2; \
		exit 1; }
	@echo "Installing Debian's chromium for the browser tests (Playwright drives $(CHROMIUM))"
	apt-get update && apt-get install -y --no-install-recommends chromium || { \
		echo "Could not install Debian's chromium package (needed at $(CHROMIUM) by the browser tests)." >&2; \
		exit 1; }
	@test -x $(CHROMIUM) || { echo "apt-get installed chromium, but $(CHROMIUM) is not there." >&2; exit 1; }

# DEBUG defaults to off (production); the demo and the suite run in development mode, and say so.
# `make run EMBEDDED=1` forces SQLite + the filesystem broker (under .run/); WEB_PORT / SANDBOX_PORT pick ports.
run: $(STAMP)
	DEBUG=1 EMBEDDED=$(EMBEDDED) $(BIN)/python scripts/run_demo.py

test: install
	DEBUG=1 DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/pytest $(PYTEST_ARGS)

# What a reviewer checks: ruff (lint + format), the import-layer contract ([tool.importlinter] in
# pyproject.toml: sync -> accounts -> integrations -> connector) and mypy with django-stubs on the typed seams
# ([tool.mypy] in pyproject.toml: integrations/ and sync/mappers/), and no production module over 400 lines
# with docs/MODULES.md current (scripts/module_map.py --check). CI runs it before the tests.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DEBUG=1 $(BIN)/mypy
	$(BIN)/python scripts/module_map.py --check

bench: $(STAMP)
	DEBUG=1 DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .run .broker db.sqlite3 .beat-schedule* staticfiles .pytest_cache .ruff_cache .mypy_cache
