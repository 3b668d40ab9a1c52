# cohort-etl: every target bootstraps its own virtualenv (.venv) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
SPARK_STAMP := $(VENV)/.installed-spark
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

# the Spark tests and benchmarks also need the optional `spark` extra (pyspark, dbt-spark)
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	@touch $(SPARK_STAMP)

test: $(SPARK_STAMP) ## Run every test (pytest + dbt tests) on DuckDB, the local PostgreSQL and a local Spark
	@# R, Chromium, Java, PostgreSQL: installed here when root with apt-get, else listed
	@bash .ci/install-system-deps --if-able
	@# two workers, whole files per worker (module fixtures built once); dbt builds take a lock
	$(BIN)/python -m pytest -m "not spark" -n 2 --dist loadfile
	@# Spark's Hive metastore (Derby) admits one process: its tests run as a step of their own
	COHORT_ETL_TEST_SPARK=required $(BIN)/python -m pytest -m spark

test-fast: $(STAMP) ## Tests without PostgreSQL, R, browser or Spark
	$(BIN)/python -m pytest -m "not postgres and not r_oracle and not slow and not spark"

bench: $(BENCH_STAMP) $(SPARK_STAMP) ## Benchmarks (speed and peak memory), written to bench/results/
	$(BIN)/python -m bench

lint: $(STAMP) ## ruff + mypy on src
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

clean: ## Remove generated data and outputs (keeps .venv)
	rm -rf data output bench/results dbt_project/target dbt_project/logs
