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
PYTEST_ARGS ?=

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

demo: $(PY_STAMP) $(DOCS_STAMP) $(READER_STAMP)
	$(BIN)/m2mpay demo

lint: $(PY_STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(PY_STAMP)
	$(BIN)/mypy

unit: $(PY_STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test: $(PY_STAMP) $(NODE_STAMP) $(DOCS_STAMP) $(READER_STAMP) lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

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
	rm -rf $(VENV) node_modules $(DOCS_ASSETS) $(READER_ASSETS) .mypy_cache .ruff_cache .pytest_cache .hypothesis mutants
