"""Every dbt model and CDM source is documented in YAML: a description, and a description
for every column the model really has (read from the built database, so a new column
without docs fails here) and every source column the project reads. The manifest is the
one the seed-1 build wrote; `dbt docs generate` is run on that build too."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from tests.dbt.conftest import BuiltCdm

from cohort_etl.cdm.spec import TABLES
from cohort_etl.db import connected
from cohort_etl.dbt_runner import dbt_env, dbt_executable, dbt_project_dir
from cohort_etl.quality.requirements import REQUIRED_COLUMNS

pytestmark = pytest.mark.slow


def test_every_model_and_column_is_described(synthetic_seed1: BuiltCdm) -> None:
    run_results = synthetic_seed1.result.run_results_path
    assert run_results is not None
    manifest = json.loads((run_results.parent / "manifest.json").read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert len(models) >= 49
    problems = []
    with connected(synthetic_seed1.profile, read_only=True) as db:
        for node in models:
            where = f"{node['original_file_path']}"
            if not node["description"].strip():
                problems.append(f"{where}: model {node['name']} has no description")
            if node["config"]["materialized"] == "ephemeral":
                sql = f"select * from ({node['compiled_code']}) as model limit 0"
                actual = list(db.query_df(sql).columns)
            else:
                actual = list(db.columns(node["schema"], node["alias"]))
            assert actual, where
            documented = {
                name: column["description"].strip() for name, column in node["columns"].items()
            }
            problems += [
                f"{where}: column {node['name']}.{name} has no description"
                for name in actual
                if not documented.get(name)
            ]
            problems += [
                f"{where}: {node['name']}.{name} is documented but not a column"
                for name in documented
                if name not in actual
            ]
    assert problems == []


def test_dbt_docs_generate_documents_every_model_source_and_column(
    synthetic_seed1: BuiltCdm, tmp_path: Path
) -> None:
    """`dbt docs generate` on the built seed-1 CDM: every relation of its catalog (models
    and the CDM sources) is described, with every column the project reads; every source
    is a CDM table the project reads, its keys tested (not_null, unique on the spec's
    primary key) and its freshness declared off."""
    env = {**os.environ, **dbt_env(synthetic_seed1.profile, threads=1)}
    project = str(dbt_project_dir())
    args = [dbt_executable(), "--no-use-colors", "docs", "generate", "--project-dir", project]
    args += ["--profiles-dir", project, "--target-path", str(tmp_path)]
    args += ["--log-path", str(tmp_path / "logs")]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    catalog = json.loads((tmp_path / "catalog.json").read_text())
    problems = []
    for unique_id, relation in catalog["nodes"].items():
        node = manifest["nodes"][unique_id]
        if node["resource_type"] != "model":
            continue
        if not node["description"].strip():
            problems.append(f"model {node['name']} has no description")
        problems += [
            f"column {node['name']}.{name} has no description"
            for name in relation["columns"]
            if not node["columns"].get(name, {}).get("description", "").strip()
        ]
    sources = {s["name"]: s for s in manifest["sources"].values()}
    read = {table: set(columns) for table, columns in REQUIRED_COLUMNS.items()}
    read["cdm_source"] = {"cdm_release_date"}
    assert set(sources) == set(read)
    assert len(catalog["sources"]) == len(read)
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    for table, source in sources.items():
        if not source["description"].strip():
            problems.append(f"source {table} has no description")
        actual = catalog["sources"][source["unique_id"]]["columns"]
        for name in read[table]:
            if not source["columns"].get(name, {}).get("description", "").strip():
                problems.append(f"source column {table}.{name} has no description")
        problems += [
            f"source column {table}.{name} is documented but not a column"
            for name in source["columns"]
            if name not in actual
        ]
        freshness = source["freshness"] or {}
        assert not (freshness.get("warn_after") or {}).get("count"), table
        assert not (freshness.get("error_after") or {}).get("count"), table
        for key in (f.name for f in TABLES[table] if f.primary_key):
            tested = {
                t["test_metadata"]["name"]
                for t in tests
                if source["unique_id"] in t["depends_on"]["nodes"]
                and t.get("column_name") == key
                and t.get("test_metadata")
            }
            if not {"unique", "not_null"} <= tested:
                problems.append(f"source key {table}.{key} lacks unique / not_null tests")
    assert problems == []
