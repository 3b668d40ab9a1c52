"""bench.layout.scatter_persons: one consistent person renumbering, clustered by person_id.

A small CDM is generated, copied (the copy is the "before"), and scattered; the scattered
file is compared with the copy row by row through the returned mapping.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pytest
from bench.layout import person_permutation, scatter_persons
from tests.conftest import duckdb_profile_at

from cohort_etl.synthetic.generator import generate
from cohort_etl.synthetic.params import SynthParams

SEED = 5


@dataclass
class Scattered:
    before: Path
    after: Path
    result: dict
    background: int


@pytest.fixture(scope="module")
def scattered(tmp_path_factory: pytest.TempPathFactory) -> Scattered:
    root = tmp_path_factory.mktemp("layout")
    path = root / "cdm.duckdb"
    params = SynthParams(seed=3, persons=2_000)
    generate(params, duckdb_profile_at(path, "layout"), progress=lambda m: None)
    before = root / "before.duckdb"
    shutil.copy(path, before)
    result = scatter_persons(path, seed=SEED)
    return Scattered(before, path, result, params.persons)


@pytest.fixture
def con(scattered: Scattered) -> Iterator[duckdb.DuckDBPyConnection]:
    """The scattered file (catalog ``cdm``) with the copy attached as ``before``."""
    c = duckdb.connect(str(scattered.after), read_only=True)
    c.execute(f"attach '{scattered.before}' as before (read_only)")
    ids = scattered.result["mapping"]
    c.register("person_map", {"old_id": ids[:, 0], "new_id": ids[:, 1]})
    yield c
    c.close()


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    return con.execute(sql).fetchall()[0][0]


def test_tables_found_and_counts_unchanged(
    scattered: Scattered, con: duckdb.DuckDBPyConnection
) -> None:
    tables = scattered.result["tables"]
    storage = {k for k in tables if k.startswith("cdm_storage_")}
    expected = {
        "person",
        "observation_period",
        "death",
        "visit_occurrence",
        "condition_occurrence",
        "drug_exposure",
        "procedure_occurrence",
        "measurement",
        "observation",
    }
    assert {k.split(".")[1] for k in storage} >= expected
    assert "synthetic_truth.patients" in tables
    for key, counts in tables.items():
        for catalog in ("cdm", "before"):
            rows, persons = con.execute(
                f"select count(*), count(distinct person_id) from {catalog}.{key}"
            ).fetchall()[0]
            assert (rows, persons) == (counts["rows"], counts["persons"]), (catalog, key)
        assert counts["rows"] > 0, key


def test_mapping_is_a_seeded_permutation(scattered: Scattered) -> None:
    ids = scattered.result["mapping"]
    old, new = ids[:, 0], ids[:, 1]
    assert len(old) == scattered.result["persons"] == len(np.unique(old))
    assert np.array_equal(np.sort(new), old)  # same id set, each used once
    assert np.array_equal(new, person_permutation(old, SEED))
    assert np.mean(old == new) < 0.01


def test_every_row_renumbered_consistently(
    scattered: Scattered, con: duckdb.DuckDBPyConnection
) -> None:
    """Old rows with person_id mapped == new rows (as multisets); per-person counts kept."""
    for key in scattered.result["tables"]:
        mapped = (
            f"select t.* replace (m.new_id as person_id) from before.{key} as t "
            "left join person_map as m on m.old_id = t.person_id"
        )
        for diff in (f"{mapped} except all select * from cdm.{key}",
                     f"select * from cdm.{key} except all {mapped}"):  # fmt: skip
            assert scalar(con, f"select count(*) from ({diff})") == 0, key
        per_person = (
            "select list(n order by n) from (select count(*) as n from {} group by person_id)"
        )
        old_counts = scalar(con, per_person.format(f"before.{key}"))
        new_counts = scalar(con, per_person.format(f"cdm.{key}"))
        assert old_counts == new_counts, key


def test_tables_clustered_by_person_and_schema_kept(
    scattered: Scattered, con: duckdb.DuckDBPyConnection
) -> None:
    for key in scattered.result["tables"]:
        schema, table = key.split(".")
        out_of_order = scalar(
            con,
            f"select count(*) from (select person_id, lag(person_id) over (order by rowid) "
            f"as prev from cdm.{key}) where person_id < prev",
        )
        assert out_of_order == 0, key
        columns = (
            "select list((column_name, data_type, is_nullable) order by column_index) "
            "from duckdb_columns() where database_name = '{}' and schema_name = '{}' "
            "and table_name = '{}'"
        )
        assert scalar(con, columns.format("cdm", schema, table)) == scalar(
            con, columns.format("before", schema, table)
        ), key


def test_all_patients_scattered(scattered: Scattered, con: duckdb.DuckDBPyConnection) -> None:
    truth_ids = "select person_id from {}.synthetic_truth.patients"
    old = np.array([r[0] for r in con.execute(truth_ids.format("before")).fetchall()])
    new = np.array([r[0] for r in con.execute(truth_ids.format("cdm")).fetchall()])
    lo, hi = con.execute("select min(person_id), max(person_id) from cdm.cdm.person").fetchall()[0]
    assert old.min() > scattered.background  # the generator's layout this fixes
    assert (new <= scattered.background).sum() > len(new) / 2
    assert (new.max() - new.min()) / (hi - lo) > 0.8
    # and they sit among the others in the stored person table, not in one block of rows
    (person,) = [k for k in scattered.result["tables"] if k.endswith("_storage_a.person")
                 or k.endswith("_storage_b.person")]  # fmt: skip
    pos = con.execute(
        f"select min(pos), max(pos), count(*) from (select row_number() over (order by rowid) "
        f"as pos, person_id from cdm.{person}) where person_id in (select person_id from "
        "cdm.synthetic_truth.patients)"
    ).fetchall()[0]
    assert pos[2] == len(new)
    assert (pos[1] - pos[0]) / scattered.result["tables"][person]["rows"] > 0.8


def test_truth_agrees_with_cdm(con: duckdb.DuckDBPyConnection) -> None:
    """Truth facts per patient (person, sex, birth year, observation start, death, ALL
    diagnosis and CAR-T date) are found for the same person in the scattered CDM views."""
    for catalog in ("before", "cdm"):  # the check holds before, so it means something after
        row = con.execute(
            f"""
            select
                count(*) as patients,
                count(*) filter (where p.person_id is null) as missing_person,
                count(*) filter (where p.year_of_birth <> t.year_of_birth) as birth_year,
                count(*) filter (where p.gender_concept_id <> case t.sex when 'F' then 8532
                                 when 'M' then 8507 end) as sex,
                count(*) filter (where op.start is distinct from t.observation_start) as op,
                count(*) filter (where d.death_date is distinct from t.death_date) as death,
                count(t.death_date) as deaths,
                count(*) filter (where t.diagnosis_date is not null and not exists (
                    select 1 from {catalog}.cdm.condition_occurrence as c
                    where c.person_id = t.person_id
                      and c.condition_start_date = t.diagnosis_date)) as diagnosis,
                count(*) filter (where t.car_t_date is not null and not exists (
                    select 1 from {catalog}.cdm.procedure_occurrence as x
                    where x.person_id = t.person_id and x.procedure_date = t.car_t_date
                    union all
                    select 1 from {catalog}.cdm.drug_exposure as x
                    where x.person_id = t.person_id
                      and x.drug_exposure_start_date = t.car_t_date)) as cart,
                count(t.car_t_date) as cart_patients
            from {catalog}.synthetic_truth.patients as t
            left join {catalog}.cdm.person as p on p.person_id = t.person_id
            left join {catalog}.cdm.death as d on d.person_id = t.person_id
            left join (
                select person_id, min(observation_period_start_date) as start
                from {catalog}.cdm.observation_period group by person_id
            ) as op on op.person_id = t.person_id
            """
        ).fetchall()[0]
        patients, missing, birth, sex, op, death, deaths, dx, cart, cart_patients = row
        assert patients > 0 and deaths > 0 and cart_patients > 0, (catalog, row)
        assert (missing, birth, sex, op, death, dx, cart) == (0,) * 7, (catalog, row)


def test_cdm_views_read_the_new_tables(
    scattered: Scattered, con: duckdb.DuckDBPyConnection
) -> None:
    views = [
        r[0]
        for r in con.execute(
            "select view_name from duckdb_views() where database_name = 'cdm' "
            "and schema_name = 'cdm' and not internal"
        ).fetchall()
    ]
    assert views
    storage = {k.split(".")[1]: k for k in scattered.result["tables"] if "_storage_" in k}
    for view in views:
        rows = scalar(con, f"select count(*) from cdm.cdm.{view}")
        if view in storage:
            assert rows == scattered.result["tables"][storage[view]]["rows"], view
