"""A small synthetic CDM generated once per session, and throw-away copies of it with one
fault each (the CDM's views over the generator's storage become real tables first, so
a fault can be written into them)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from tests.conftest import duckdb_profile_at

from cohort_etl.config import NamedProfile
from cohort_etl.synthetic.generator import generate
from cohort_etl.synthetic.params import SynthParams

BASE = SynthParams(seed=3, persons=1_000, n_core=60)


@pytest.fixture(scope="session")
def base_cdm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("quality_base") / "base.duckdb"
    generate(BASE, duckdb_profile_at(path, "quality-base"))
    return path


def materialize(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Replace the view cdm.<table> by a table of the same rows (and columns)."""
    kind = con.execute(
        "select table_type from information_schema.tables "
        "where table_schema = 'cdm' and table_name = ?",
        [table],
    ).fetchone()
    if kind is None or kind[0] != "VIEW":
        return
    con.execute(f"create table cdm.{table}__copy as select * from cdm.{table}")
    con.execute(f"drop view cdm.{table}")
    con.execute(f"alter table cdm.{table}__copy rename to {table}")


Mutate = Callable[[duckdb.DuckDBPyConnection], None]


@pytest.fixture
def faulty(base_cdm: Path, tmp_path: Path) -> Callable[..., NamedProfile]:
    """``faulty(fn, *tables)``: a copy of the base CDM with ``tables`` materialised and
    ``fn(connection)`` applied; returns its profile."""

    def make(mutate: Mutate | None = None, *tables: str) -> NamedProfile:
        path = tmp_path / "faulty.duckdb"
        shutil.copyfile(base_cdm, path)
        con = duckdb.connect(str(path))
        try:
            for table in tables:
                materialize(con, table)
            if mutate is not None:
                mutate(con)
        finally:
            con.close()
        return duckdb_profile_at(path, "faulty")

    return make
