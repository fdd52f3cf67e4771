# make run   — the service with demo data on http://127.0.0.1:8000 (embedded PostgreSQL
#              under .data/ unless DATABASE_URL is set)
# make test  — the whole test suite against a throwaway PostgreSQL it starts itself, then the
#              Citus suite on a throwaway three-node Citus cluster when Citus is installed
# make docs  — the documentation (docs/) built into site/; make docs-serve serves it

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup page machine-run machine-test run test test-citus bench bench-import loadtest soak lint format lock openapi \
	docs docs-serve screenshot

setup: $(INSTALLED)

$(INSTALLED): requirements-dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# The page: npm ci when the lock file changes, a Vite build when its sources change.
FRONTEND := frontend
NODE_MODULES := $(FRONTEND)/node_modules/.package-lock.json
PAGE := $(FRONTEND)/dist/index.html
PAGE_SOURCES := $(filter-out %.test.ts,$(shell find $(FRONTEND)/src -type f)) \
	$(addprefix $(FRONTEND)/,index.html vite.config.ts tsconfig.json .env package.json)

$(NODE_MODULES): $(FRONTEND)/package-lock.json $(FRONTEND)/package.json
	cd $(FRONTEND) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(PAGE): $(NODE_MODULES) $(PAGE_SOURCES)
	cd $(FRONTEND) && npm run --silent build

page: $(PAGE)

# What the machine must have besides Python and Node, checked before anything else: as root,
# installed with apt-get; otherwise one line says what to install.
machine-run:
	@scripts/prerequisites.sh $(if $(DATABASE_URL),,postgresql)

machine-test:
	@scripts/prerequisites.sh postgresql chromium curl

run: machine-run setup page
	$(BIN)/python -m api.dev.local

# The single-node suite runs in two processes, each with its own throwaway cluster and server:
# its tests wait on PostgreSQL, servers and a browser more than they compute.
test: machine-test setup page
	cd $(FRONTEND) && npx vitest run
	@$(MAKE) --no-print-directory docs
	$(BIN)/pytest -n 2 --dist loadscope --durations=15
	@$(MAKE) --no-print-directory test-citus

# The tests of the data path (every figure against the oracle, exactly-once, cross-org reads,
# thresholds' crossings and deliveries) and tests/citus (router statements, distribute, a
# worker crash, rebalancing) on a Citus coordinator and two workers. USAGE_REQUIRE_CITUS=1
# (CI) makes a missing Citus a failure. Two pytest workers, each with a cluster of its own:
# 16 minutes one at a time, 10 so. --durations: the slowest tests, where to trim the suite.
CITUS_SUITE := tests/citus tests/usage/test_fetch.py tests/usage/test_against_oracle.py tests/usage/test_groups.py \
	tests/usage/test_filters.py tests/ingest/test_exactly_once.py tests/ingest/test_long_lived.py \
	tests/ingest/test_folding.py tests/ingest/test_allocation_plans.py tests/alerts/test_evaluation.py tests/alerts/test_delivery.py \
	tests/alerts/test_tests_and_rotation.py \
	tests/alerts/test_two_watchers.py tests/test_dedupe_migration.py tests/export/test_exactly_once.py \
	tests/export/test_export_smoke.py tests/test_keys.py

test-citus: setup
	@if $(BIN)/python -c 'import sys, api.dev.citus_cluster as c; sys.exit(not c.installed())'; \
	then USAGE_TEST_ENGINE=citus $(BIN)/pytest -n 2 --dist loadscope --durations=15 $(CITUS_SUITE); \
	elif [ -n "$(USAGE_REQUIRE_CITUS)" ]; then \
		echo "Citus suite: Citus is not installed for this PostgreSQL, and USAGE_REQUIRE_CITUS is set"; exit 1; \
	else echo "Citus suite not run: this PostgreSQL has no Citus extension (install Citus 13 to run it)"; fi

# The documentation site (mkdocs.yml, docs/) in site/. Strict: a broken link or anchor, or a
# page missing from the nav, fails the build (and so make test). NO_MKDOCS_2_WARNING quiets
# the notice Material for MkDocs prints on every build: its end of life, in May 2027.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs

docs: setup
	$(MKDOCS) build --strict

docs-serve: setup
	$(MKDOCS) serve --dev-addr 127.0.0.1:8001

# docs/images/usage-page.png, the picture in the README and the docs: the page over the whole
# demo data in headless Chromium (tests/page/test_screenshot.py, which make test runs over
# two days of it).
screenshot: machine-test setup page
	USAGE_SCREENSHOT=docs $(BIN)/pytest tests/page/test_screenshot.py

# Generates 10M LLM calls on first use (kept in .data/bench); about 15 minutes. CITUS=1: the
# same again on a three-node Citus cluster over the same data, side by side.
bench: setup
	$(BIN)/python -m bench $(if $(CITUS),--citus)

# `usage-api import` of a million-event file (EVENTS=1000000) into a throwaway PostgreSQL.
bench-import: setup
	$(BIN)/python -m bench.importing --events $(or $(EVENTS),1000000)

# Readers and ingesters at once on a throwaway PostgreSQL, then every figure against the
# oracle; bounded in time (SECONDS=30).
loadtest: setup
	$(BIN)/python -m bench.loadtest --seconds $(or $(SECONDS),30)

# Steady ingest (RATE events/s, 1000) and reads for MINUTES (10) on a throwaway durable
# PostgreSQL: read latency, table sizes and dead tuples minute by minute, then every figure
# against the oracle; writes .data/soak/results.json and soak.png.
soak: setup
	$(BIN)/python -m bench.soak --minutes $(or $(MINUTES),10) --rate $(or $(RATE),1000)

lint: setup $(NODE_MODULES)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd $(FRONTEND) && npx tsc --noEmit

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# openapi.yaml is the app's generated document, and the page's types are generated from it
# (a test fails when either differs). The document does not depend on the database, so no
# real URL is needed to write it.
openapi: setup $(NODE_MODULES)
	DATABASE_URL=postgresql://unused $(BIN)/litestar --app api.web.app:create_app \
		schema openapi --output openapi.yaml
	cd $(FRONTEND) && npm run --silent types

# Re-pin every dependency after a change to pyproject.toml (needs the package registry).
lock:
	rm -rf /tmp/usage-lock && $(PYTHON) -m venv /tmp/usage-lock
	/tmp/usage-lock/bin/pip install --quiet . && /tmp/usage-lock/bin/pip freeze --exclude usage > requirements.lock
	/tmp/usage-lock/bin/pip install --quiet '.[dev]' && /tmp/usage-lock/bin/pip freeze --exclude usage > requirements-dev.lock
	rm -rf /tmp/usage-lock
