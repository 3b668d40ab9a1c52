"""The build shares the OMOP cohort / cohort_definition / episode / episode_event tables
with other tools (a site's CohortGenerator cohorts, an oncology ETL's episodes): it writes
or replaces only its own rows. Rows of other cohort ids and other episodes written before
the build are found unchanged after it; stale rows of the build's own ids are replaced.
The table names and id offsets come from the profile (CohortGenerator-style)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import PG_ADMIN
from tests.dbt.test_build_fixture import scenario

from cohort_etl.cdm.ddl import create_table_sql
from cohort_etl.config import DuckDBProfile, NamedProfile, PostgresProfile
from cohort_etl.db import Database, connected
from cohort_etl.dbt_runner import DbtBuild

pytestmark = pytest.mark.slow

#: A site's own cohort (id 1001: two eras of one subject, as CohortGenerator writes them)
FOREIGN_COHORT = [
    (1001, 42, dt.date(2019, 1, 1), dt.date(2019, 6, 30)),
    (1001, 42, dt.date(2020, 1, 1), dt.date(2020, 3, 31)),
]
#: An episode written by another ETL, with one episode_event (an EHR episode record)
FOREIGN_EPISODE = (7, 1, 32531, dt.date(2019, 1, 1), 0, 32828)
FOREIGN_EPISODE_EVENT = (7, 555, 1147094)


def _write_shared_tables(db: Database, own_cohort_id: int, cohort_table: str) -> None:
    """The tables (CDM v5.4 DDL) as another tool left them: its own rows, plus a stale row
    of one of our cohort ids (a subject this build never puts in it) that the build must
    replace."""
    db.create_schema("results")
    p = db.param
    names = {
        "cohort": cohort_table,
        "cohort_definition": f"{cohort_table}_definition",
        "episode": "episode",
        "episode_event": "episode_event",
    }
    for omop, name in names.items():
        db.execute(
            create_table_sql(omop, "results", db.dialect).replace(
                f"results.{omop} (", f"results.{name} (", 1
            )
        )

    def insert(table: str, columns: str, row: tuple) -> None:
        values = ", ".join([p] * len(row))
        db.execute(
            f"insert into {db.table_ref('results', table)} ({columns}) values ({values})", row
        )

    for row in [*FOREIGN_COHORT, (own_cohort_id, 999, dt.date(2018, 1, 1), dt.date(2018, 2, 1))]:
        insert(
            cohort_table,
            "cohort_definition_id, subject_id, cohort_start_date, cohort_end_date",
            row,
        )
    insert(
        names["cohort_definition"],
        "cohort_definition_id, cohort_definition_name, cohort_definition_description, "
        "definition_type_concept_id, cohort_definition_syntax, subject_concept_id",
        (1001, "site cohort", "written by CohortGenerator", 32880, "{}", 56),
    )
    insert(
        "episode",
        "episode_id, person_id, episode_concept_id, episode_start_date, "
        "episode_object_concept_id, episode_type_concept_id",
        FOREIGN_EPISODE,
    )
    insert(
        "episode_event",
        "episode_id, event_id, episode_event_field_concept_id",
        FOREIGN_EPISODE_EVENT,
    )


def _rows(db: Database, table: str, where: str = "") -> pd.DataFrame:
    return db.query_df(f"select * from {db.table_ref('results', table)} {where}")


def _build_with_foreign_rows(profile: NamedProfile, own_cohort_id: int, cohort_table: str) -> None:
    with connected(profile) as db:
        scenario().write(db)
        _write_shared_tables(db, own_cohort_id, cohort_table)
    DbtBuild(profile, threads=2).run()


def _check_foreign_rows_survive_and_own_rows_are_the_build(
    profile: NamedProfile, cohort_table: str, definition_table: str, own_ids: list[int]
) -> pd.DataFrame:
    with connected(profile) as db:
        cohort = _rows(db, cohort_table)
        foreign = cohort[cohort.cohort_definition_id == 1001]
        assert sorted(
            (int(r.subject_id), str(r.cohort_start_date)[:10]) for r in foreign.itertuples()
        ) == [(42, "2019-01-01"), (42, "2020-01-01")]
        own = cohort[cohort.cohort_definition_id.isin(own_ids)]
        built = _rows(db, "own_cohort")
        assert set(built.cohort_definition_id) <= set(own_ids)
        assert len(built) > 0
        key = ["cohort_definition_id", "subject_id"]
        assert (
            own[key].sort_values(key).values.tolist() == built[key].sort_values(key).values.tolist()
        )
        assert 999 not in set(own.subject_id)  # the stale own row was replaced
        assert set(cohort.cohort_definition_id) == {1001} | set(built.cohort_definition_id)

        definitions = _rows(db, definition_table).set_index("cohort_definition_id")
        assert definitions.loc[1001, "cohort_definition_name"] == "site cohort"
        assert sorted(definitions.index) == sorted([1001, *own_ids])
        assert definitions.loc[own_ids[0], "cohort_definition_name"] == "cart_index"

        episode = _rows(db, "episode")
        assert (episode.episode_id == 7).sum() == 1
        assert episode.episode_id.is_unique
        assert len(episode) == len(_rows(db, "own_episode")) + 1
        events = _rows(db, "episode_event")
        assert events[events.episode_id == 7].values.tolist() == [list(FOREIGN_EPISODE_EVENT)]
        assert len(events) == len(_rows(db, "own_episode_event")) + 1
        return _rows(db, "analysis_hsct_after_cart")


def test_duckdb_build_keeps_other_cohorts_and_episodes(tmp_path: Path) -> None:
    profile = NamedProfile(
        name="own-rows", settings=DuckDBProfile(type="duckdb", path=tmp_path / "cdm.duckdb")
    )
    _build_with_foreign_rows(profile, own_cohort_id=3, cohort_table="cohort")
    _check_foreign_rows_survive_and_own_rows_are_the_build(
        profile, "cohort", "cohort_definition", [1, 2, 3, 4, 5]
    )
    # a rerun replaces the build's rows again, and still only those
    DbtBuild(profile, threads=2).run()
    _check_foreign_rows_survive_and_own_rows_are_the_build(
        profile, "cohort", "cohort_definition", [1, 2, 3, 4, 5]
    )


@pytest.fixture
def own_pg_database() -> Iterator[str]:
    """A database of its own (the session database holds the parity tests' CDM)."""
    import psycopg

    name = f"cohort_etl_own_rows_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.mark.postgres
def test_postgres_build_keeps_other_cohorts_and_episodes(own_pg_database: str) -> None:
    profile = NamedProfile(
        name="own-rows-pg", settings=PostgresProfile(type="postgres", url=own_pg_database)
    )
    _build_with_foreign_rows(profile, own_cohort_id=3, cohort_table="cohort")
    _check_foreign_rows_survive_and_own_rows_are_the_build(
        profile, "cohort", "cohort_definition", [1, 2, 3, 4, 5]
    )


def test_cohort_table_name_and_id_offset_come_from_the_profile(tmp_path: Path) -> None:
    """A site whose cohort table is `site_cohort` and whose own cohorts use ids 1-5000
    moves this build's ids to 9001-9005; the marts select by cohort name, so they hold the
    same persons as with the default ids."""
    profile = NamedProfile(
        name="offset",
        settings=DuckDBProfile(
            type="duckdb",
            path=tmp_path / "cdm.duckdb",
            cohort_table="site_cohort",
            cohort_definition_table="site_cohort_definition",
            cohort_id_offset=9000,
            episode_id_offset=10**12,
        ),
    )
    _build_with_foreign_rows(profile, own_cohort_id=9003, cohort_table="site_cohort")
    mart = _check_foreign_rows_survive_and_own_rows_are_the_build(
        profile, "site_cohort", "site_cohort_definition", [9001, 9002, 9003, 9004, 9005]
    )
    with connected(profile) as db:
        assert "cohort" not in db.tables("results")
        episodes = _rows(db, "own_episode")
        assert (episodes.episode_id >= 10**12).all()
        index = _rows(db, "own_cohort", "where cohort_definition_id = 9001")
    assert sorted(mart.person_id) == sorted(index.subject_id)
    # the scenario's person 1 is in the index cohort (test_build_fixture): the mart is not empty
    assert 1 in set(mart.person_id)
