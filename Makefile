# make run   — the service with demo data on http://127.0.0.1:8000 (embedded PostgreSQL
#              under .data/ unless DATABASE_URL is set)
# make test  — the whole test suite against a throwaway PostgreSQL it starts itself

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup run test lint format lock

setup: $(INSTALLED)

$(INSTALLED): requirements-dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

run: setup
	$(BIN)/python -m api.local

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-pin every dependency after a change to pyproject.toml (needs the package registry).
lock:
	rm -rf /tmp/usage-lock && $(PYTHON) -m venv /tmp/usage-lock
	/tmp/usage-lock/bin/pip install --quiet . && /tmp/usage-lock/bin/pip freeze --exclude usage > requirements.lock
	/tmp/usage-lock/bin/pip install --quiet '.[dev]' && /tmp/usage-lock/bin/pip freeze --exclude usage > requirements-dev.lock
	rm -rf /tmp/usage-lock
