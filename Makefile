# Two commands do everything on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTRUCTION := $(BIN)/instruction
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run setup install test test-faults test-fast lint browser-deps pdf-deps faketime-deps caddy-deps services clean-db

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed pdf-deps node_modules/axe-core/axe.min.js

## pdf-deps: the Debian libraries WeasyPrint needs for the PDF letters (Pango, HarfBuzz, fonts).
PDF_LIBS := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fontconfig
pdf-deps:
	@ldconfig -p | grep -q libpangoft2-1.0.so.0 && ldconfig -p | grep -q libharfbuzz-subset.so.0 \
	  && fc-list 2>/dev/null | grep -qi dejavu || { \
	  echo "Installing the Debian libraries of WeasyPrint (PDF letters)..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(PDF_LIBS) >/dev/null) \
	  || { echo "ERROR: could not install $(PDF_LIBS) (apt-get install them)"; exit 1; }; }

## setup: install, migrate, load the territory, the campaigns and the demo data (no server).
setup: install
	$(INSTRUCTION) db upgrade
	$(INSTRUCTION) territory import
	$(INSTRUCTION) campaigns load
	$(INSTRUCTION) demo load

## run: setup, then serve the app on http://$(HOST):$(PORT) with the worker beside it.
run: setup
	@echo "Application : http://$(HOST):$(PORT)  (Ctrl-C pour arrêter)"
	$(INSTRUCTION) serve --host $(HOST) --port $(PORT)

## browser-deps: Debian's Chromium for the end-to-end tests (Playwright drives /usr/bin/chromium),
## and axe-core (pinned in package-lock.json) that tests/a11y.py injects into the pages.
browser-deps: node_modules/axe-core/axe.min.js
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || { echo "ERROR: could not install chromium (apt-get install chromium)"; exit 1; }; }

node_modules/axe-core/axe.min.js: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "Installing Debian's npm for axe-core..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null) \
	  || { echo "ERROR: could not install npm (apt-get install npm)"; exit 1; }; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## faketime-deps: Debian's faketime, to run the setup chain under a clock set years ahead.
faketime-deps:
	@command -v faketime >/dev/null 2>&1 || { \
	  echo "Installing Debian's faketime for the tests on a future date..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null) \
	  || { echo "ERROR: could not install faketime (apt-get install faketime)"; exit 1; }; }

## caddy-deps: Debian's caddy, to validate deploy/Caddyfile (the stack's reverse proxy) in the tests.
caddy-deps:
	@command -v caddy >/dev/null 2>&1 || { \
	  echo "Installing Debian's caddy to validate deploy/Caddyfile..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq caddy >/dev/null) \
	  || { echo "ERROR: could not install caddy (apt-get install caddy)"; exit 1; }; }

services:
	@scripts/ensure_services.sh

## test: the whole suite on real PostgreSQL, Redis, SMTP sink and headless Chromium.
test: install services browser-deps faketime-deps caddy-deps
	$(BIN)/mypy instruction
	$(BIN)/pytest -q

## test-faults: faults against real services (private PostgreSQL and Redis stopped and restarted,
## the worker killed, SMTP refusing, uploads unwritable), and the fuzzing with more examples; slow,
## so apart from `make test`.
test-faults: install services
	FUZZ_EXAMPLES=8 FUZZ_MAX_EXAMPLES=40 $(BIN)/pytest -q --faults tests/faults tests/test_fuzz.py

lint: install
	$(BIN)/ruff check .

## bench: the region-scale figures (100,000 dossiers on PostgreSQL; bench/README.md).
## BENCH_DATABASE_URL names the database, which is dropped and recreated.
bench: install services
	$(BIN)/python bench/run.py
