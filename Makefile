# m2mpay: `make demo` and `make test` do all set-up on a fresh Debian machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.m2mpay-installed
NODE_STAMP := node_modules/.m2mpay-installed
# The node serves its API docs from its own package, never from a CDN (m2mpay.api.docs).
SWAGGER_UI_DIST ?= node_modules/swagger-ui-dist
DOCS_ASSETS := src/m2mpay/api/docs_assets
DOCS_STAMP := $(DOCS_ASSETS)/.copied
# The provenance web reader (web/reader), bundled with the pinned esbuild into the package
# (m2mpay.provenance.reader_app serves it), never from a CDN.
READER_ASSETS := src/m2mpay/provenance/reader_assets
READER_STAMP := $(READER_ASSETS)/.built
READER_SOURCES := $(wildcard web/reader/*)
# The web app (web/app: Preact, uPlot's stylesheet), bundled the same way into the package
# (m2mpay.api.webapp serves it at /app/); its bundle and stylesheet carry their content's
# hash in their names, so the node lets browsers keep them for good.
APP_ASSETS := src/m2mpay/api/app_assets
APP_STAMP := $(APP_ASSETS)/.built
APP_SOURCES := $(wildcard web/app/* web/app/pages/*)
# `make test` lists its 15 slowest tests last: where the suite's time goes, and which test
# nears its timeout, is in every CI log.
PYTEST_ARGS ?=
# Test modules are spread over workers (pytest-xdist, a module's tests stay on one worker
# so its module fixtures start once): about a quarter of the suite's time with one worker a
# core is spent waiting on the node, broker, chain and browser processes it starts, so one
# worker more than cores (three on two: 12 min against 15), at least three, at most four.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n >= 4 ? 4 : (n < 2 ? 3 : n + 1) )))

.PHONY: help demo test lint typecheck unit system-deps contracts lock clean \
	mutants mutants-python mutants-contracts

help:
	@echo "make demo   - set up if needed, run the machine-economy scenarios end to end"
	@echo "make test   - set up if needed (venv, npm, Debian packages), lint, type-check, run all tests"
	@echo "make contracts - rebuild contracts/build/*.json from the Vyper sources"
	@echo "make lock   - re-resolve requirements.lock from pyproject.toml"
	@echo "make mutants - mutation testing (not part of make test, ~1 h): pure cores and contracts,"
	@echo "               kill rate per target; or make mutants-python / make mutants-contracts"

# Debian packages the project needs and a fresh machine may lack.
system-deps:
	@missing=""; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || missing="$$missing mosquitto"; \
	command -v mosquitto_sub >/dev/null 2>&1 || missing="$$missing mosquitto-clients"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v $(firstword $(PYTHON) python3) >/dev/null 2>&1 || missing="$$missing python3"; \
	$(firstword $(PYTHON) python3) -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(PY_STAMP): requirements.lock pyproject.toml | system-deps
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "m2mpay needs Python 3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

$(NODE_STAMP): package.json package-lock.json | system-deps
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Swagger UI's bundle, stylesheet and icon (and its licence) from the pinned npm package.
$(DOCS_STAMP): $(NODE_STAMP)
	@mkdir -p $(DOCS_ASSETS)
	cp $(addprefix $(SWAGGER_UI_DIST)/,swagger-ui-bundle.js swagger-ui.css favicon-32x32.png \
		LICENSE NOTICE) $(DOCS_ASSETS)/
	@touch $@

# The reader's bundle (its code, @noble/curves, @noble/hashes, jsQR), page and stylesheet,
# and the licences of what the bundle holds.
$(READER_STAMP): $(NODE_STAMP) $(READER_SOURCES)
	@mkdir -p $(READER_ASSETS)
	node_modules/.bin/esbuild web/reader/reader.js --bundle --format=esm --minify \
		--target=chrome111,firefox115,safari16.4 --legal-comments=none \
		--outfile=$(READER_ASSETS)/reader.js --log-level=warning
	cp web/reader/index.html web/reader/reader.css $(READER_ASSETS)/
	for package in @noble/curves @noble/hashes jsqr; do \
		cp node_modules/$$package/LICENSE $(READER_ASSETS)/LICENSE.$$(basename $$package); done
	@touch $@

# The web app's bundle and stylesheet (its code, Preact, uPlot's CSS), its page naming
# them, and the licences of what they hold. A fresh directory: no stale hashed file stays.
# Split (ESM) for one thing only: uPlot, which only the dashboard draws with and which is
# most of the app's weight, is a chunk the chart fetches by import(); the pages stay in the
# entry (a page of its own cost each a second round of requests: slower, measured).
$(APP_STAMP): $(NODE_STAMP) $(APP_SOURCES)
	rm -rf $(APP_ASSETS) && mkdir -p $(APP_ASSETS)
	node_modules/.bin/esbuild web/app/main.jsx --bundle --format=esm --minify \
		--jsx=automatic --jsx-import-source=preact \
		--target=chrome111,firefox115,safari16.4 --legal-comments=none \
		--splitting --entry-names=[name]-[hash] --chunk-names=chunk-[hash] \
		--outdir=$(APP_ASSETS) --log-level=warning
	js=$$(cd $(APP_ASSETS) && ls main-*.js) && css=$$(cd $(APP_ASSETS) && ls main-*.css) && \
		sed -e "s|\"main.js\"|\"$$js\"|" -e "s|\"main.css\"|\"$$css\"|" web/app/index.html \
		> $(APP_ASSETS)/index.html
	for package in preact uplot; do \
		cp node_modules/$$package/LICENSE $(APP_ASSETS)/LICENSE.$$package; done
	@touch $@

demo: $(PY_STAMP) $(DOCS_STAMP) $(READER_STAMP) $(APP_STAMP)
	$(BIN)/m2mpay demo

lint: $(PY_STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(PY_STAMP)
	$(BIN)/mypy

unit: $(PY_STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test: $(PY_STAMP) $(NODE_STAMP) $(DOCS_STAMP) $(READER_STAMP) $(APP_STAMP) lint typecheck
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope --durations=15 $(PYTEST_ARGS)

contracts: $(PY_STAMP)
	$(BIN)/m2mpay contracts build

lock: $(PY_STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --no-header --quiet -o requirements.lock

# Mutation testing, one worker: mutmut over the pure cores ([tool.mutmut] in
# pyproject.toml), then one mutant at a time of the contracts' checks through the
# conformance suite on the embedded ledger. Reports land in mutants/.
mutants: mutants-python mutants-contracts

mutants-python: $(PY_STAMP)
	rm -rf mutants
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/mutmut run --max-children 1
	$(BIN)/python tools/mutants/report.py --json mutants/python-report.json

mutants-contracts: $(PY_STAMP)
	@mkdir -p mutants
	$(BIN)/python tools/mutants/vyper_mutants.py --json mutants/contracts-report.json

clean:
	rm -rf $(VENV) node_modules $(DOCS_ASSETS) $(READER_ASSETS) $(APP_ASSETS) .mypy_cache .ruff_cache .pytest_cache .hypothesis mutants
