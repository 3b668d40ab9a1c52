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

# the two demo runs, one session instance shared by every folder
from tests.demo import demo_run, demo_runs  # noqa: F401

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


#: skip reasons (substrings) -> the system-package group a skipped test belongs to
SKIP_GROUPS = {
    "Rscript": "R oracle",
    "R package": "R oracle",
    "chromium": "browser (Chromium)",
    "java": "Spark (Java)",
}
INSTALL_COMMAND = "sudo .ci/install-system-deps"


def skipped_groups(reasons: list[str]) -> dict[str, int]:
    """How many skipped tests fall in each group that a system package would enable."""
    counts: dict[str, int] = {}
    for reason in reasons:
        for key, group in SKIP_GROUPS.items():
            if key.lower() in reason.lower():
                counts[group] = counts.get(group, 0) + 1
                break
    return counts


def pytest_unconfigure(config: pytest.Config) -> None:
    """End the run with one loud line when tests were skipped for a missing system package
    (R, Chromium, Java), naming the groups and the command that installs them."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    reasons = []
    for report in reporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            reasons.append(str(longrepr[2]))
    groups = skipped_groups(reasons)
    if groups:
        named = ", ".join(f"{group} ({n} tests)" for group, n in sorted(groups.items()))
        reporter.write_sep(
            "!",
            f"NOT RUN: {named}; install the system packages with: {INSTALL_COMMAND}",
            red=True,
            bold=True,
        )
