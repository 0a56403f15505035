# Two entry points: `make demo` and `make test`. Both create .venv when it is
# missing and install what they need from the package registries.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test install sandbox clean format .venv313 checkov lock lock-upgrade deploy-size vendor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The monitor with its dev tools, and the sandbox (sandbox/: a distribution of its own,
# never deployed) next to it.
$(STAMP): pyproject.toml requirements.txt sandbox/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,sandbox]" -e ./sandbox
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/sso-monitor demo

sandbox: install
	$(BIN)/sso-monitor sandbox

# requirements.txt, what the Functions build installs, is generated from pyproject.toml's
# [project.dependencies] by uv (pinned below, installed into .venv): every version pinned,
# every file hashed, one universal resolution for Python 3.11 and newer with markers where
# a version differs by Python (docs/decisions.md, "requirements.txt is a lock of
# pyproject.toml"). Needs the package index; tests/test_dependencies.py checks it offline.
# `make lock` keeps the current pins where pyproject allows them; `make lock-upgrade`
# moves every package to its newest allowed version.
UV_VERSION ?= 0.13.9
UV_STAMP   := $(VENV)/.installed-uv-$(UV_VERSION)
LOCK_ARGS  := --universal --python-version 3.11 --generate-hashes --quiet

$(UV_STAMP): | $(BIN)/python
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	touch $@

lock: $(UV_STAMP)
	$(BIN)/uv pip compile pyproject.toml $(LOCK_ARGS) --output-file requirements.txt

lock-upgrade: $(UV_STAMP)
	$(BIN)/uv pip compile pyproject.toml $(LOCK_ARGS) --upgrade --output-file requirements.txt

# What the deployment package's dependencies weigh: requirements.txt installed with pip
# --target into an empty directory (as the Functions build does) by Python 3.12, the
# Function App's default (DEPLOY_PYTHON=... to choose another), then the total (du -sm)
# and the five largest distributions. Needs the package index.
deploy-size: install
	$(BIN)/python -m tests.test_dependencies --deploy-size

# Azurite (the Azure Storage emulator) for the storage tests, from package-lock.json.
node_modules/.bin/azurite: package.json $(wildcard package-lock.json)
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
	touch $@

# The status page's MSAL.js, bundled from the npm package package.json pins (no CDN):
# copied into the Function App's files, where it is committed, so a deployment needs no
# build step. After changing the pin: `make vendor`, then commit (tests/functions/
# test_status_view.py checks the copy is the package's file, byte for byte).
VENDOR := sso_monitor/functions/static/vendor
vendor: node_modules/.bin/azurite
	cp node_modules/@azure/msal-browser/lib/msal-browser.min.js $(VENDOR)/msal-browser.min.js
	cp node_modules/@azure/msal-browser/LICENSE $(VENDOR)/msal-browser.LICENSE.txt

# Python 3.13 venv with azure-functions-runtime (the worker the Functions host uses) and
# requirements.txt, for tests/functions/test_indexing.py; rebuilt only when they change.
.venv313: install
	$(BIN)/python -m tests.functions.test_indexing --build-venv313

# checkov, for the static checks of infra/ (tests/infra/test_checkov.py), in a venv of its
# own: its many exactly pinned dependencies would fight the project's. Rebuilt only when
# the pinned version changes.
CHECKOV_VERSION ?= 3.3.30
CHECKOV_VENV    := .venv-checkov
CHECKOV_STAMP   := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

$(CHECKOV_STAMP):
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)"
	touch $@

checkov: $(CHECKOV_STAMP)

test: install node_modules/.bin/azurite .venv313 $(CHECKOV_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Fix what ruff can fix and format everything (tests/test_code_quality.py checks it).
format: install
	$(BIN)/ruff check --fix sso_monitor sandbox tests bench function_app.py
	$(BIN)/ruff format sso_monitor sandbox tests bench function_app.py

clean:
	rm -rf $(VENV) .venv313 $(CHECKOV_VENV) .pytest_cache .hypothesis .sandbox .mypy_cache .ruff_cache
