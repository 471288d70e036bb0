# Developer entry points. `make run` sets everything up and serves the demo; `make test` is what CI runs.
SHELL := /bin/bash

VENV    ?= .venv
PY      := $(VENV)/bin/python
CITYHUB := $(VENV)/bin/cityhub
RUFF    := $(VENV)/bin/ruff
MYPY    := $(VENV)/bin/mypy
PYTEST  := $(VENV)/bin/pytest
HOST    ?= 127.0.0.1
PORT    ?= 8000
ORDERS  ?= 20000
# a year of history: ~55 orders a day, so today's lists, the 30-day street ranking and the overdue views have content
YEARS   ?= 1
# pytest-xdist workers: one per core, at most 4 (each starts its own throw-away PostgreSQL cluster); 0 = no xdist.
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)

# Stamps make re-runs fast: reinstall only when the dependency files are newer than the last install.
PY_STAMP   := $(VENV)/.cityhub-installed
NODE_STAMP := node_modules/.cityhub-installed
# The web UI's front-end files, copied out of node_modules (never committed, never from a CDN).
VENDOR_STAMP := src/cityhub/web/static/vendor/.cityhub-installed

.PHONY: install run check-port test lint fmt bench clean distclean

install: $(PY_STAMP) $(if $(wildcard package.json),$(NODE_STAMP) $(VENDOR_STAMP))

$(PY_STAMP): pyproject.toml
	@test -x $(PY) || { echo "==> python3 -m venv $(VENV)"; python3 -m venv $(VENV); }
	@# Replaced by OpenCC's own binding, which installs the same module name: remove it first, or uninstalling it
	@# later would delete the new package's files.
	@$(PY) -m pip show -q opencc-python-reimplemented 2>/dev/null && $(PY) -m pip uninstall -y -q opencc-python-reimplemented || true
	@echo "==> pip install -e '.[dev]'"
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(PY) -m pip install --progress-bar off -q -e '.[dev]'
	@touch $@

$(NODE_STAMP): package.json $(wildcard package-lock.json)
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js and npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	@if [ -f package-lock.json ]; then echo "==> npm ci"; npm ci --no-audit --no-fund --ignore-scripts; \
	 else echo "==> npm install"; npm install --no-audit --no-fund --ignore-scripts; fi
	@mkdir -p node_modules && touch $@

$(VENDOR_STAMP): $(NODE_STAMP) $(PY_STAMP) src/cityhub/web/vendor.py
	@echo "==> copy web UI vendor files from node_modules"
	$(PY) -m cityhub.web.vendor node_modules
	@touch $@

# Before the first run's minutes of set-up, not after them: a port something already answers on.
check-port:
	@python3 scripts/port-free $(HOST) $(PORT)

run: check-port install
	$(CITYHUB) db upgrade
	$(CITYHUB) demo seed --orders $(ORDERS) --years $(YEARS)
	$(CITYHUB) serve --host $(HOST) --port $(PORT)

# Every check runs even when an earlier one fails, so one CI run reports all problems; the exit code
# says whether any failed. pytest's exit code 5 (no tests collected) is not a failure.
test: install
	@failed=(); \
	echo "==> ruff check"; $(RUFF) check . || failed+=("ruff check"); \
	echo "==> ruff format --check"; $(RUFF) format --check . || failed+=("ruff format"); \
	echo "==> mypy"; $(MYPY) || failed+=("mypy"); \
	echo "==> pytest (unit + integration, SQLite and PostgreSQL)"; \
	$(PYTEST) -n $(PYTEST_WORKERS) --durations=10 --continue-on-collection-errors; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests ran"; elif [ $$rc -ne 0 ]; then failed+=("pytest"); fi; \
	if [ $${#failed[@]} -gt 0 ]; then echo "FAILED: $${failed[*]}" >&2; exit 1; fi; \
	echo "all checks passed"

lint: $(PY_STAMP)
	$(RUFF) check .
	$(RUFF) format --check .
	$(MYPY)

fmt: $(PY_STAMP)
	$(RUFF) check --fix .
	$(RUFF) format .

# Smoke run of every benchmark that has a --quick mode; the others (and the full sizes) are run by hand as
# bench/README.md describes. Its figures go to a throw-away directory (CITYHUB_BENCH_RESULTS), never over the
# measured ones in bench/results/.
bench: $(PY_STAMP)
	@export CITYHUB_BENCH_RESULTS="$${CITYHUB_BENCH_RESULTS:-$$(mktemp -d "$${TMPDIR:-/tmp}/cityhub-bench.XXXXXX")}"; \
	echo "==> smoke figures go to $$CITYHUB_BENCH_RESULTS"; \
	found=0; for f in bench/*.py; do \
	  [ -e "$$f" ] || continue; case "$$(basename $$f)" in _*) continue;; esac; \
	  if ! grep -q -- '--quick' "$$f"; then echo "==> skip $$f (no --quick mode; see bench/README.md)"; continue; fi; \
	  found=1; echo "==> $(PY) $$f --quick"; $(PY) "$$f" --quick || exit 1; \
	done; [ $$found = 1 ] || echo "no benchmarks in bench/ yet"

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis htmlcov .coverage build dist
	find . -path ./$(VENV) -prune -o -path ./node_modules -prune -o -name __pycache__ -type d -exec rm -rf {} +
	rm -f $(PY_STAMP) $(NODE_STAMP)

# Also the installed environments (the demo database in data/ is kept).
distclean: clean
	rm -rf $(VENV) node_modules
