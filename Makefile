# Relay: the two quickstart commands are `make demo` and `make test`.
SHELL := /bin/bash
UV := $(shell ./scripts/ensure-uv)
RUN := $(UV) run --frozen

.DEFAULT_GOAL := help
.PHONY: help install up demo test test-faults tf-local-smoke terraform-check bench lint lint-docker typecheck contracts contracts-check unit integration e2e clean console-build console-check console-deploy browser images compose-smoke container-engine base-image

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# Bytecode is compiled once here (uv: site-packages; compileall: the workspace's own sources):
# where PYTHONDONTWRITEBYTECODE is set (as on the machines CI runs on), Python would compile every
# module it imports in every process (a service's start-up took 2.5 s of CPU instead of 1.0).
WORKSPACE_SOURCES := shared/src ops/src devkit/src clients/python/src $(wildcard services/*/src)

install: ## install Python and every dependency from uv.lock into .venv; build the web console
	$(UV) sync --frozen --all-packages --compile-bytecode
	$(RUN) python -m compileall -q -j 0 $(WORKSPACE_SOURCES)
	@$(MAKE) --no-print-directory console-build

up: install ## run the whole stack locally (moto server, PostgreSQL, Redis, five services); Ctrl-C stops it
	$(RUN) relay up

demo: install ## start the stack, run one task through the public API live, download its artifact, stop
	$(RUN) relay demo

# The suites that start no whole stack run on TEST_WORKERS pytest-xdist workers, a test module
# to a worker; the whole-stack suites (STACK_SUITES) one test at a time: each stack holds ~40 of
# PostgreSQL's 100 connections, and their timings assume a machine they do not share.
TEST_WORKERS ?= 3
STACK_SUITES := tests/e2e tests/console tests/stack

test: install lint typecheck contracts-check terraform-check console-check browser ## lint, types, contracts, Terraform, the console's checks, unit, integration, e2e and browser tests
	$(RUN) pytest -m "not faults and not tf" -n $(TEST_WORKERS) --dist loadfile $(STACK_SUITES:%=--ignore=%)
	$(RUN) pytest -m "not faults and not tf" $(STACK_SUITES)

# Each fault module runs against a stack of its own (fresh database, own moto, own processes),
# so FAULT_WORKERS modules run at once; 1 runs them one after another.
FAULT_WORKERS ?= 2

test-faults: install ## the fault suite: real process kills and outages on a whole local stack
	$(RUN) pytest -m faults tests/faults $(if $(filter-out 0 1,$(FAULT_WORKERS)),-n $(FAULT_WORKERS) --dist loadfile)

# checkov pins older boto3/aiobotocore than the services use, so it runs in its own
# environment (uvx) instead of the project's dev dependencies. --skip-download: offline, no call
# to the vendor's API (it only adds guideline links and platform suppressions we do not use).
CHECKOV := checkov==3.3.30

tf-local-smoke: install ## apply terraform/envs/local to moto, run the stack on that topology, one task through the API
	$(RUN) pytest -m tf tests/deploy

terraform-check: ## checkov over terraform/ (0 failed checks; each skip gives its reason inline)
	$(UV) tool run --from $(CHECKOV) checkov -d terraform --framework terraform --quiet --compact --skip-download

bench: install ## benchmarks on a local stack, each beside a same-run baseline; writes docs/benchmarks.md (~13 min)
	$(RUN) python -m relay_devkit.bench --out docs/benchmarks.md

lint: install ## ruff lint and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

lint-docker: install ## hadolint the Dockerfiles; check docker-compose.yml against the Compose Specification
	$(RUN) hadolint services/*/Dockerfile deploy/tools.Dockerfile
	$(RUN) check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

# --- Container images and the compose stack, with docker where a daemon answers, else podman
# (scripts/container-engine installs and configures it; docs/adr/0021-images-without-docker.md).
# RELAY_LOCAL_BASE=1: no registry reachable, so the base image is made here (scripts/base-image)
# and compose-smoke runs local stand-ins for postgres, redis and the collector (deploy/smoke/).
# Every setting: README.md, "Images and the compose smoke".
RELAY_IMAGE_TAG ?= local
PYTHON_IMAGE ?=
RELAY_LOCAL_BASE ?= 0
RELAY_SMOKE_GATEWAY_PORT ?= 18000
RELAY_SMOKE_MOTO_PORT ?= 18055
IMAGE_SETTINGS = RELAY_IMAGE_TAG='$(RELAY_IMAGE_TAG)' PYTHON_IMAGE='$(PYTHON_IMAGE)' RELAY_LOCAL_BASE='$(RELAY_LOCAL_BASE)'

container-engine: ## set up a container engine: docker if its daemon answers, else podman (installed via apt-get)
	@scripts/container-engine

base-image: ## make the local python base image (mmdebstrap + import) for hosts that reach no registry
	scripts/base-image

images: ## build the five service images and the tools image (PYTHON_IMAGE, RELAY_IMAGE_TAG, RELAY_LOCAL_BASE)
	$(IMAGE_SETTINGS) scripts/build-images

compose-smoke: install images ## docker-compose.yml up on those images, one task through the API, the containers checked, down
	$(IMAGE_SETTINGS) RELAY_SMOKE_GATEWAY_PORT='$(RELAY_SMOKE_GATEWAY_PORT)' \
	  RELAY_SMOKE_MOTO_PORT='$(RELAY_SMOKE_MOTO_PORT)' PATH="$(CURDIR)/.venv/bin:$$PATH" scripts/compose-smoke

typecheck: install ## mypy (strict) over every package
	$(RUN) mypy

contracts: install ## regenerate contracts/ (JSON Schemas, AsyncAPI) from the code
	$(RUN) python -m relay_devkit.contracts

contracts-check: install ## fail if contracts/ differs from what the code generates
	$(RUN) python -m relay_devkit.contracts --check

unit: install ## unit tests only (no PostgreSQL, Redis or moto needed)
	$(RUN) pytest -m "not integration and not e2e and not tf"

e2e: install browser ## end-to-end tests against a whole local stack
	$(RUN) pytest -m e2e

# --- The web console (console/: Vite + Preact + TypeScript; the gateway serves console/dist at
# /console/). npm ci runs again only when the lock file changes, the build only when a source
# file does. Until console/package.json exists there is nothing to build, and the targets say so.
CONSOLE := console
CONSOLE_INSTALLED := $(CONSOLE)/node_modules/.relay-npm-ci
CONSOLE_SOURCES = $(shell find $(CONSOLE) \( -path $(CONSOLE)/node_modules -o -path $(CONSOLE)/dist \
	-o -path $(CONSOLE)/coverage -o -path $(CONSOLE)/test-results \) -prune -o -type f \
	! -name '*.tsbuildinfo' ! -name .eslintcache -print 2>/dev/null)
NO_CONSOLE := echo "console/package.json not found: no web console to build or check yet"

$(CONSOLE_INSTALLED): $(CONSOLE)/package.json $(CONSOLE)/package-lock.json
	cd $(CONSOLE) && npm ci --no-audit --no-fund
	touch $@

$(CONSOLE)/dist/index.html: $(CONSOLE_INSTALLED) $(CONSOLE_SOURCES)
	cd $(CONSOLE) && npm run build
	touch $@

console-build: ## build the web console into console/dist (npm ci + npm run build, when changed)
ifeq ($(wildcard $(CONSOLE)/package.json),)
	@$(NO_CONSOLE)
else
	@$(MAKE) --no-print-directory $(CONSOLE)/dist/index.html
endif

console-check: ## the web console's lint, type checks and unit tests (npm run lint, typecheck, test)
ifeq ($(wildcard $(CONSOLE)/package.json),)
	@$(NO_CONSOLE)
else
	@$(MAKE) --no-print-directory $(CONSOLE_INSTALLED)
	cd $(CONSOLE) && npm run lint
	cd $(CONSOLE) && npm run typecheck
	cd $(CONSOLE) && CI=true npm test
endif

console-deploy: install ## publish console/dist to the frontend bucket and invalidate index.html (RELAY_CONSOLE_BUCKET, RELAY_CONSOLE_DISTRIBUTION_ID; docs/deploy.md)
	@test -f $(CONSOLE)/dist/index.html || { $(NO_CONSOLE); exit 1; }
	$(RUN) relay console-deploy

# The browser tests drive Debian's chromium through Playwright (no browser download of its own).
browser: ## install Debian's chromium for the browser tests when it is missing (apt-get, as root)
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "chromium not found: installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium \
	  || { echo "could not install chromium: install it (Debian: apt-get install chromium) so that \
	\`chromium\` is on PATH" >&2; exit 1; }; \
	}

clean: ## remove the local stack's state (.relay/) and demo output
	rm -rf .relay relay-output
