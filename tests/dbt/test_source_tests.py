"""The dbt data tests declared on the CDM sources (key uniqueness and NULLs, person links)
repeat what the data-quality stage checks just before every build, and at 10M persons they
were 95% of the build's node time: `build` leaves them out, `build --source-tests` runs
them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.dbt.conftest import BuiltCdm

from cohort_etl.dbt_runner import DbtBuild

pytestmark = pytest.mark.slow


def _tests_run(run_results: Path) -> dict[str, str]:
    """unique_id -> status of every data test in a dbt run_results.json."""
    results = json.loads(run_results.read_text())["results"]
    return {r["unique_id"]: r["status"] for r in results if r["unique_id"].startswith("test.")}


def _on_source(unique_id: str) -> bool:
    # dbt names a generic test on a source `source_<test>_<source>_<table>_<column>`
    return unique_id.split(".")[2].startswith("source_")


def test_default_build_leaves_the_source_tests_out(synthetic_seed1: BuiltCdm) -> None:
    path = synthetic_seed1.result.run_results_path
    assert path is not None
    ran = _tests_run(path)
    assert len(ran) >= 100, "the model tests still run"
    assert [t for t in ran if _on_source(t)] == []


def test_source_tests_run_on_request(synthetic_seed1: BuiltCdm, tmp_path: Path) -> None:
    result = DbtBuild(
        synthetic_seed1.profile, select="source:*", target_dir=tmp_path, source_tests=True
    ).run()
    assert result.run_results_path is not None
    ran = _tests_run(result.run_results_path)
    on_source = {t: s for t, s in ran.items() if _on_source(t)}
    kinds = {t.split(".")[2].split("_cdm_")[0] for t in on_source}
    assert {"source_unique", "source_not_null", "source_relationships"} <= kinds, kinds
    # every key of the CDM tables the project reads is tested, and passes on this CDM
    assert len(on_source) >= 25, sorted(on_source)
    assert set(on_source.values()) == {"pass"}, on_source
