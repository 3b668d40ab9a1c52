"""Every dbt model is documented in YAML: a description, and a description for every
column the model really has (read from the built database, so a new column without docs
fails here). The manifest is the one the seed-1 build wrote."""

from __future__ import annotations

import json

import pytest
from tests.dbt.conftest import BuiltCdm

from cohort_etl.db import connected

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
