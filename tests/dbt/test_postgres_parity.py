"""The same synthetic CDM built on PostgreSQL gives the same cohorts, attrition, episodes
and analysis marts as on DuckDB (the portable-SQL promise)."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.dbt.conftest import BuiltCdm, cdm_checksums, generate_and_build

from cohort_etl.config import NamedProfile
from cohort_etl.db import connected

TABLES = {
    "cohort": ["cohort_definition_id", "subject_id"],
    "cohort_definition": ["cohort_definition_id"],
    "cohort_attrition": ["cohort_definition_id", "rule_number"],
    "episode": ["episode_id"],
    "episode_event": ["episode_id", "event_id", "episode_event_field_concept_id"],
    "analysis_hsct_after_cart": ["person_id"],
    "analysis_salvage_after_relapse": ["person_id"],
}


def _normalised(profile: NamedProfile, table: str, keys: list[str]) -> pd.DataFrame:
    with connected(profile) as db:
        frame = db.query_df(f"select * from {db.schema_ref('results')}.{table}")
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        values = frame[column]
        if any(part in column for part in ("date",)):
            out[column] = pd.to_datetime(values).dt.strftime("%Y-%m-%d").fillna("")
        elif (
            pd.api.types.is_numeric_dtype(values) or values.map(lambda x: isinstance(x, int)).all()
        ):
            out[column] = pd.to_numeric(values).astype("Float64")
        else:
            out[column] = values.astype("string").fillna("")
    return out.sort_values(keys).reset_index(drop=True)


@pytest.fixture(scope="module")
def postgres_seed1(pg_database: str) -> BuiltCdm:
    from cohort_etl.config import PostgresProfile

    profile = NamedProfile(
        name="pg-seed1", settings=PostgresProfile(type="postgres", url=pg_database)
    )
    return generate_and_build(profile, seed=1, persons=2_000, replace=True)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("table", sorted(TABLES))
def test_postgres_matches_duckdb(
    table: str, synthetic_seed1: BuiltCdm, postgres_seed1: BuiltCdm
) -> None:
    duck = _normalised(synthetic_seed1.profile, table, TABLES[table])
    pg = _normalised(postgres_seed1.profile, table, TABLES[table])
    assert list(pg.columns) == list(duck.columns)
    assert len(duck) > 0
    pd.testing.assert_frame_equal(pg, duck, check_dtype=False)


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_cdm_unchanged_and_same_tests(
    postgres_seed1: BuiltCdm, synthetic_seed1: BuiltCdm
) -> None:
    with connected(postgres_seed1.profile) as db:
        assert cdm_checksums(db, "cdm") == postgres_seed1.checksums_before
    assert postgres_seed1.result.count("test") == synthetic_seed1.result.count("test")
    assert postgres_seed1.result.count("unit_test", "pass") == synthetic_seed1.result.count(
        "unit_test"
    )


@pytest.mark.slow
def test_duckdb_cdm_unchanged_by_build(
    synthetic_seed1: BuiltCdm, synthetic_seed7: BuiltCdm
) -> None:
    for built in (synthetic_seed1, synthetic_seed7):
        with connected(built.profile) as db:
            assert cdm_checksums(db, "cdm") == built.checksums_before
