"""`cohort-etl run --profile spark` on the demo CDM equals the DuckDB run (issue 14):
results.json byte for byte for both studies, and every table the dbt build makes (seed and
models) row for row."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import duckdb_profile_at
from tests.dbt.test_postgres_parity import _normalised
from tests.spark.conftest import SparkDemo, folder_digest

from cohort_etl.dbt_runner import dbt_project_dir, parse_run_results

STUDIES = ("hsct_after_cart", "salvage_after_cart_relapse")
pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _built_tables(profile_name: str) -> list[str]:
    """Seeds and table models of the last build of ``profile_name`` (dbt's manifest)."""
    manifest = json.loads(
        (dbt_project_dir() / "target" / profile_name / "manifest.json").read_text()
    )
    return sorted(
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "seed"
        or (node["resource_type"] == "model" and node["config"]["materialized"] == "table")
    )


@pytest.mark.parametrize("study", STUDIES)
def test_results_json_identical_to_duckdb(spark_demo: SparkDemo, study: str) -> None:
    on_duck = (spark_demo.duckdb_out / study / "results.json").read_bytes()
    on_spark = (spark_demo.spark_out / study / "results.json").read_bytes()
    assert json.loads(on_duck)["headline"], "no headline results on DuckDB"
    assert on_spark == on_duck, f"{study}: results.json differs between Spark and DuckDB"


def test_every_built_table_equals_duckdb(spark_demo: SparkDemo) -> None:
    tables = _built_tables("spark")
    assert len(tables) >= 35, tables
    duck = duckdb_profile_at(spark_demo.duckdb_path, "duckdb")
    differ = []
    for table in tables:
        on_duck = _normalised(duck, table, [])
        on_spark = _normalised(spark_demo.profile, table, [])
        keys = list(on_duck.columns)
        assert list(on_spark.columns) == keys, f"{table}: columns differ"
        on_duck = on_duck.sort_values(keys).reset_index(drop=True)
        on_spark = on_spark.sort_values(keys).reset_index(drop=True)
        try:
            pd.testing.assert_frame_equal(on_spark, on_duck, check_dtype=False)
        except AssertionError as exc:
            differ.append(f"{table}: {str(exc).splitlines()[0]}")
    assert not differ, "tables differ between Spark and DuckDB:\n" + "\n".join(differ)


def test_same_data_and_unit_tests_pass(spark_demo: SparkDemo) -> None:
    counts = {}
    for profile in ("spark", "duckdb"):
        nodes = parse_run_results(dbt_project_dir() / "target" / profile / "run_results.json")
        assert {n.status for n in nodes} <= {"success", "pass"}, [
            (n.name, n.status) for n in nodes if n.status not in ("success", "pass")
        ]
        counts[profile] = {
            kind: sum(n.resource_type == kind for n in nodes)
            for kind in ("seed", "model", "test", "unit_test")
        }
    assert counts["spark"] == counts["duckdb"]
    assert counts["spark"]["test"] > 100 and counts["spark"]["unit_test"] > 5, counts


def test_source_parquet_untouched(spark_demo: SparkDemo) -> None:
    assert folder_digest(spark_demo.parquet) == spark_demo.parquet_digest_before


def test_outputs_name_the_spark_profile(spark_demo: SparkDemo) -> None:
    manifest = json.loads((spark_demo.spark_out / STUDIES[0] / "manifest.json").read_text())
    assert manifest["profile"] == "spark" and manifest["dialect"] == "spark"
    assert manifest["dbt_adapter_version"] not in ("", "not installed")
    assert Path(spark_demo.spark_out / STUDIES[0] / "report.html").stat().st_size > 1000
