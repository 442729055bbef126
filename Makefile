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

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python scripts/run_demo.py

test: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .broker db.sqlite3 .pytest_cache .ruff_cache
