"""The same CDM on DuckDB and on PostgreSQL gives byte-identical results.json (issue 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import duckdb_profile_at

from cohort_etl.config import NamedProfile
from cohort_etl.pipeline import run_pipeline
from cohort_etl.synthetic.generator import generate
from cohort_etl.synthetic.params import SynthParams

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_duckdb_and_postgres_give_identical_results(
    pg_profile: NamedProfile, tmp_path: Path
) -> None:
    params = SynthParams(seed=42, persons=2_000)
    duck = duckdb_profile_at(tmp_path / "cdm.duckdb", "duckdb-parity")
    outputs = {}
    for profile in (duck, pg_profile):
        generate(params, profile, replace=True)
        summary = run_pipeline(profile, out_root=tmp_path / profile.name, quiet=True)
        outputs[profile.name] = summary.outputs
    for study, paths in outputs["duckdb-parity"].items():
        on_duck = paths["results"].read_bytes()
        on_pg = outputs[pg_profile.name][study]["results"].read_bytes()
        assert on_duck == on_pg, f"{study}: results.json differs between DuckDB and PostgreSQL"
