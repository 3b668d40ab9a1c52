"""Fixtures for the dbt tests: synthetic CDMs generated once per session and built once.

Builds are the slow part (dbt start-up and ~40 models with their data and unit tests), so
each CDM is generated and built once per session and shared by the tests that read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import duckdb_profile_at

from cohort_etl.config import NamedProfile
from cohort_etl.db import Database, connected
from cohort_etl.dbt_runner import BuildResult, DbtBuild


def cdm_checksums(db: Database, schema: str) -> dict[str, tuple[int, str]]:
    """(row count, order-independent content hash) of every table in ``schema``."""
    out = {}
    prefix = db.schema_ref(schema)
    for table in db.tables(schema):
        if db.dialect == "duckdb":
            sql = f"select count(*), cast(coalesce(sum(hash(t)), 0) as varchar) from {prefix}.{table} t"
        else:
            sql = (
                f"select count(*), coalesce(sum(hashtext(t::text)::numeric), 0)::text "
                f"from {prefix}.{table} t"
            )
        frame = db.query_df(sql)
        out[table] = (int(frame.iat[0, 0]), str(frame.iat[0, 1]))
    return out


@dataclass
class BuiltCdm:
    profile: NamedProfile
    result: BuildResult
    checksums_before: dict[str, tuple[int, str]]


def generate_and_build(
    profile: NamedProfile, seed: int, persons: int, replace: bool = False, **sizes: int
) -> BuiltCdm:
    """``replace``: the profile's CDM schema may hold an earlier test's CDM (the session's
    one PostgreSQL database is shared by the test files a worker runs, in any order)."""
    from cohort_etl.synthetic.generator import generate
    from cohort_etl.synthetic.params import SynthParams

    generate(SynthParams(seed=seed, persons=persons, **sizes), profile, replace=replace)
    with connected(profile) as db:
        before = cdm_checksums(db, profile.settings.cdm_schema)
    result = DbtBuild(profile, threads=4).run()
    return BuiltCdm(profile=profile, result=result, checksums_before=before)


@pytest.fixture(scope="session")
def synthetic_seed1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltCdm]:
    """Seed 1, 2,000 background persons, the default ALL subset (~880 persons)."""
    path: Path = tmp_path_factory.mktemp("seed1") / "cdm.duckdb"
    yield generate_and_build(duckdb_profile_at(path, "seed1"), seed=1, persons=2_000)


@pytest.fixture(scope="session")
def synthetic_seed7(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltCdm]:
    """Seed 7, 500 background persons, a smaller ALL subset (another size)."""
    path: Path = tmp_path_factory.mktemp("seed7") / "cdm.duckdb"
    yield generate_and_build(
        duckdb_profile_at(path, "seed7"),
        seed=7,
        persons=500,
        n_core=200,
        n_all_no_cart=100,
        n_dlbcl=20,
    )
