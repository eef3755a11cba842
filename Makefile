# The two fresh-machine commands (see README.md):
#   make run    install everything, build the web UI, start the server + a local main agent
#   make test   install everything (incl. Debian's chromium for UI tests) and run every test
# An agent-only box: make install-agent, then .venv/bin/python setup_master_agent.py --server URL
# `make install` (so `make run` too) also puts the `tq` command in $(VENV)/bin/ (pyproject.toml).
# Steps run only when their inputs changed (stamp files): a second `make run` starts at once.
PY ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
PORT ?= 5000
HOST ?= 127.0.0.1
DATA_DIR ?= data
UI_SOURCES := $(shell find frontend/src frontend/public -type f 2>/dev/null) frontend/index.html \
	frontend/vite.config.ts frontend/tsconfig.json

.PHONY: run test install install-dev install-agent preflight preflight-agent frontend browser postgres \
	test-python test-postgres test-frontend bench bench-smoke reliability-soak fresh-install-check backup clean \
	api-types

preflight:
	@PY=$(PY) bash scripts/preflight.sh python node

preflight-agent:
	@PY=$(PY) bash scripts/preflight.sh python

$(VPY):
	$(PY) -m venv $(VENV)

$(VENV)/.installed-agent: requirements-agent.txt constraints.txt | $(VPY)
	$(VPY) -m pip install -q -r requirements-agent.txt -c constraints.txt
	@touch $@

$(VENV)/.installed-runtime: requirements.txt requirements-agent.txt requirements-client.txt constraints.txt | $(VPY)
	$(VPY) -m pip install -q -r requirements.txt -c constraints.txt
	@touch $@ $(VENV)/.installed-agent

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed-runtime
	$(VPY) -m pip install -q -r requirements-dev.txt -c constraints.txt
	@touch $@

# tq in the venv's bin/: the client package, editable; its dependencies came with requirements.txt
$(VENV)/.installed-client: pyproject.toml $(VENV)/.installed-runtime
	$(VPY) -m pip install -q --no-deps -e .
	@touch $@

install-agent: preflight-agent $(VENV)/.installed-agent
install: preflight $(VENV)/.installed-runtime $(VENV)/.installed-client
install-dev: preflight $(VENV)/.installed-dev $(VENV)/.installed-client

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

frontend/dist/index.html: frontend/node_modules/.installed $(UI_SOURCES)
	cd frontend && npm run build

frontend: preflight frontend/dist/index.html

# PostgreSQL 15's server binaries, for test-postgres (Debian's postgresql-15; its own cluster is not used)
postgres:
	@[ -x /usr/lib/postgresql/15/bin/initdb ] || command -v initdb >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq postgresql-15 >/dev/null; }

browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }

run: install frontend
	HOST=$(HOST) PORT=$(PORT) DATA_DIR=$(DATA_DIR) PY=$(VPY) bash scripts/run_local.sh

test: install-dev frontend browser test-frontend test-python test-postgres

test-frontend: frontend/node_modules/.installed
	cd frontend && npm test

test-python:
	$(VPY) -m pytest -p no:cacheprovider

# The server's database tests again on PostgreSQL 15: the session starts its own throwaway cluster
# (tests/pg.py: initdb in a temp dir, a Unix socket only), one database per server; ~3 min.
PG_TESTS := test_postgresql test_tasks_api test_retry_sweep test_scheduling test_starvation test_migrations \
	test_task_transitions test_placements test_agent_status test_sub_heartbeats test_beat_buffer test_liveness \
	test_task_readings test_waiting_reasons test_openapi test_notifications

test-postgres: install-dev postgres
	TASK_SYSTEM_TEST_DATABASE=postgresql $(VPY) -m pytest -p no:cacheprovider $(PG_TESTS:%=tests/%.py)

# The web UI's API types (frontend/src/api-schema.d.ts, committed) from the server's OpenAPI document;
# run after changing a route or a response model (backend/api/responses.py). tests/test_api_types.py
# fails while the committed file is stale.
API_DOC := frontend/node_modules/.cache/openapi.json

api-types: $(VENV)/.installed-runtime frontend/node_modules/.installed
	$(VPY) scripts/dump_openapi.py $(API_DOC)
	cd frontend && npm run --silent gen:api

bench: install-dev
	$(VPY) -m bench

# CI runs this: every scenario at toy size, to prove the benchmark code works (timings never asserted)
bench-smoke: install-dev
	$(VPY) -m bench --quick

# CI runs this: `make run` from a venv that never saw requirements-dev.txt, one task through it
fresh-install-check:
	bash scripts/fresh_install_check.sh

reliability-soak: install-dev
	$(VPY) -m pytest tests/reliability -m soak -p no:cacheprovider

# SQLite: a consistent copy into $(DATA_DIR)/backups/; PostgreSQL (TASK_SYSTEM_DATABASE_URL): the pg_dump command
backup: install
	$(VPY) scripts/backup_db.py --data-dir $(DATA_DIR)

clean:
	rm -rf $(VENV) frontend/node_modules frontend/dist
