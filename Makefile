# Two commands do everything on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTRUCTION := $(BIN)/instruction
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run setup install test test-2031 test-2031-dates test-faults test-fast lint browser-deps pdf-deps faketime-deps caddy-deps services clean-db

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

## test-2031: the whole suite (as `make test` runs it) under a clock set to 2031 by Debian's faketime,
## on its own database. The monotonic clock stays real (FAKETIME_DONT_FAKE_MONOTONIC: faked, the
## timeouts of Python's locks and events never expire); $(FAKETIME_SHIM) works around libfaketime
## 0.9.10's monotonic sleeps failing with EINVAL (tests/faketime/monotonic_sleep.c); the browser
## runs with its monotonic clock faked (tests/faketime/chromium).
FUTURE_CLOCK ?= 2031-06-15 10:00:00
TEST_2031_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/instruction_test_2031
FAKETIME_SHIM := $(VENV)/faketime-monotonic-sleep.so
FAKED := TEST_DATABASE_URL=$(TEST_2031_DATABASE_URL) FAKETIME_DONT_FAKE_MONOTONIC=1 \
  LD_PRELOAD=$(CURDIR)/$(FAKETIME_SHIM) CHROMIUM=$(CURDIR)/tests/faketime/chromium faketime '$(FUTURE_CLOCK)'

$(FAKETIME_SHIM): tests/faketime/monotonic_sleep.c | $(BIN)/python
	@command -v cc >/dev/null 2>&1 || { \
	  echo "Installing Debian's gcc to build $@..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null) \
	  || { echo "ERROR: could not install gcc (apt-get install gcc)"; exit 1; }; }
	cc -shared -fPIC -O2 -Wall -Wextra -o $@ $< -ldl

test-2031: install services browser-deps faketime-deps caddy-deps $(FAKETIME_SHIM)
	$(FAKED) $(BIN)/pytest -q

## test-2031-dates: the files of test-2031 where the date matters, which CI runs (the whole suite
## twice would double its time): the setup chain, the clock, the worker and its nightly jobs,
## deadlines and legal acts, notifications, retention and archives, the campaigns, one browser test.
DATE_TESTS := tests/test_setup.py tests/test_clock.py tests/test_worker.py tests/test_jobs_batches.py \
  tests/test_notifications_jobs.py tests/test_acts.py tests/test_acts_watch.py tests/rules/test_rules_acts.py \
  tests/rules/test_rules_parameters.py tests/test_workflow.py tests/test_portal.py \
  tests/test_admin_campaigns.py tests/test_personal_data.py tests/test_dossier_archive.py \
  tests/test_export_jobs.py tests/test_payment_requests.py tests/test_teamwork_thread.py \
  tests/test_e2e_acts.py
test-2031-dates: install services browser-deps faketime-deps $(FAKETIME_SHIM)
	$(FAKED) $(BIN)/pytest -q $(DATE_TESTS)

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
