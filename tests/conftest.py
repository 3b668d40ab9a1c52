"""Shared fixtures: temporary DuckDB and PostgreSQL profiles.

PostgreSQL is a real server (127.0.0.1:5432, trust auth). Each test session gets its own
throw-away database, dropped at the end. If the server is down the PostgreSQL tests fail
(they are not skipped): CI starts the server in .ci/run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohort_etl.config import DuckDBProfile, NamedProfile, PostgresProfile

PG_ADMIN = os.environ.get("COHORT_ETL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def duckdb_profile_at(path: Path, name: str = "test-duckdb") -> NamedProfile:
    return NamedProfile(name=name, settings=DuckDBProfile(type="duckdb", path=path))


@pytest.fixture
def duckdb_profile(tmp_path: Path) -> NamedProfile:
    return duckdb_profile_at(tmp_path / "cdm.duckdb")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; yields its SQLAlchemy URL."""
    import psycopg

    name = f"cohort_etl_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    admin.execute(f'create database "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


@pytest.fixture
def pg_profile(pg_database: str) -> NamedProfile:
    return NamedProfile(
        name="test-postgres", settings=PostgresProfile(type="postgres", url=pg_database)
    )


def r_available() -> bool:
    """True when Rscript with survival and MatchIt is installed (CI installs it)."""
    return shutil.which("Rscript") is not None
