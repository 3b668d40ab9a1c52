# cohort-etl: every target bootstraps its own virtualenv (.venv) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
CLI := $(BIN)/cohort-etl
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.PHONY: help cohorts test test-fast bench lint clean demo-cdm

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# the benchmarks also need the optional peer (OHDSI Circe) of the index cohort
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

cohorts: $(STAMP) ## Generate the demo CDM if none is configured, build cohorts, analyse, report
	$(CLI) run

test: $(STAMP) ## Run every test (pytest + dbt tests) on DuckDB and the local PostgreSQL
	$(BIN)/python -m pytest

test-fast: $(STAMP) ## Tests without PostgreSQL, R or browser
	$(BIN)/python -m pytest -m "not postgres and not r_oracle and not slow"

bench: $(BENCH_STAMP) ## Benchmarks (speed and peak memory), written to bench/results/
	$(BIN)/python -m bench

lint: $(STAMP) ## ruff + mypy on src
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

clean: ## Remove generated data and outputs (keeps .venv)
	rm -rf data output bench/results dbt_project/target dbt_project/logs
