# The two fresh-machine commands (see README.md):
#   make run    install everything, build the web UI, start the server + a local main agent
#   make test   install everything (incl. Debian's chromium for UI tests) and run every test
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
PORT ?= 5000
HOST ?= 127.0.0.1

.PHONY: run test install install-dev frontend browser test-python test-frontend bench bench-smoke reliability-soak backup clean

$(VPY):
	$(PY) -m venv $(VENV)

install: $(VPY)
	$(VPY) -m pip install -q -r requirements.txt -c constraints.txt

install-dev: $(VPY)
	$(VPY) -m pip install -q -r requirements-dev.txt -c constraints.txt

frontend:
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build

browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }

run: install frontend
	HOST=$(HOST) PORT=$(PORT) PY=$(VPY) bash scripts/run_local.sh

test: install-dev frontend browser test-frontend test-python

test-frontend:
	cd frontend && npm test

test-python:
	$(VPY) -m pytest -p no:cacheprovider

bench: install-dev
	$(VPY) -m bench

# CI runs this: every scenario at toy size, to prove the benchmark code works (timings never asserted)
bench-smoke: install-dev
	$(VPY) -m bench --quick

reliability-soak: install-dev
	$(VPY) -m pytest tests/reliability -m soak -p no:cacheprovider

backup: install
	$(VPY) scripts/backup_db.py

clean:
	rm -rf $(VENV) frontend/node_modules frontend/dist
