# Relay: the two quickstart commands are `make demo` and `make test`.
SHELL := /bin/bash
UV := $(shell ./scripts/ensure-uv)
RUN := $(UV) run --frozen

.DEFAULT_GOAL := help
.PHONY: help install up demo test test-faults tf-local-smoke terraform-check bench lint lint-docker typecheck contracts contracts-check unit integration e2e clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

install: ## install Python and every dependency from uv.lock into .venv
	$(UV) sync --frozen --all-packages

up: install ## run the whole stack locally (moto server, PostgreSQL, Redis, five services); Ctrl-C stops it
	$(RUN) relay up

demo: install ## start the stack, run one task through the public API live, download its artifact, stop
	$(RUN) relay demo

test: install lint typecheck contracts-check terraform-check ## lint, types, contracts, Terraform, unit, integration and e2e tests
	$(RUN) pytest -m "not faults and not tf"

test-faults: install ## the fault suite: real process kills and outages on a whole local stack
	$(RUN) pytest -m faults tests/faults

# checkov pins older boto3/aiobotocore than the services use, so it runs in its own
# environment (uvx) instead of the project's dev dependencies. --skip-download: offline, no call
# to the vendor's API (it only adds guideline links and platform suppressions we do not use).
CHECKOV := checkov==3.3.30

tf-local-smoke: install ## apply terraform/envs/local to moto, run the stack on that topology, one task through the API
	$(RUN) pytest -m tf tests/deploy

terraform-check: ## checkov over terraform/ (0 failed checks; each skip gives its reason inline)
	$(UV) tool run --from $(CHECKOV) checkov -d terraform --framework terraform --quiet --compact --skip-download

bench: install ## benchmarks on a local stack, each beside a same-run baseline; writes docs/benchmarks.md (~8 min)
	$(RUN) python -m relay_devkit.bench --out docs/benchmarks.md

lint: install ## ruff lint and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

lint-docker: install ## hadolint the Dockerfiles; check docker-compose.yml against the Compose Specification
	$(RUN) hadolint services/*/Dockerfile deploy/tools.Dockerfile
	$(RUN) check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

typecheck: install ## mypy (strict) over every package
	$(RUN) mypy

contracts: install ## regenerate contracts/ (JSON Schemas, AsyncAPI) from the code
	$(RUN) python -m relay_devkit.contracts

contracts-check: install ## fail if contracts/ differs from what the code generates
	$(RUN) python -m relay_devkit.contracts --check

unit: install ## unit tests only (no PostgreSQL, Redis or moto needed)
	$(RUN) pytest -m "not integration and not e2e and not tf"

e2e: install ## end-to-end tests against a whole local stack
	$(RUN) pytest -m e2e

clean: ## remove the local stack's state (.relay/) and demo output
	rm -rf .relay relay-output
