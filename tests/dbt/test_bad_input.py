"""Bad input stops the build before dbt runs, with one line naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.dbt.cdm_fixture import CdmBuilder

from cohort_etl.cli import run_cli
from cohort_etl.config import NamedProfile
from cohort_etl.db import connected
from cohort_etl.dbt_runner import DbtBuild, check_cdm, dbt_env
from cohort_etl.errors import InputDataError


def _cdm(profile: NamedProfile, **kwargs: object) -> None:
    with connected(profile) as db:
        CdmBuilder().person(1).write(db, **kwargs)  # type: ignore[arg-type]


def test_missing_table(duckdb_profile: NamedProfile) -> None:
    _cdm(duckdb_profile, skip_tables=("death",))
    with pytest.raises(InputDataError, match=r"^CDM table cdm\.death is missing$"):
        DbtBuild(duckdb_profile).run()


def test_missing_column(duckdb_profile: NamedProfile) -> None:
    _cdm(duckdb_profile)
    with connected(duckdb_profile) as db:
        db.execute(
            f"alter table {db.schema_ref('cdm')}.procedure_occurrence drop column procedure_end_date"
        )
    with pytest.raises(
        InputDataError,
        match=r"^CDM table cdm\.procedure_occurrence lacks column\(s\) procedure_end_date$",
    ):
        check_cdm(duckdb_profile)


def test_empty_vocabulary(duckdb_profile: NamedProfile) -> None:
    _cdm(duckdb_profile, vocabulary=False)
    with pytest.raises(InputDataError, match="CDM vocabulary table cdm.concept is empty"):
        check_cdm(duckdb_profile)


def test_missing_cdm_schema_via_cli(
    duckdb_profile: NamedProfile,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    profiles = tmp_path / "profiles.yml"
    path = duckdb_profile.settings.path  # type: ignore[union-attr]
    profiles.write_text(
        f"default: t\nprofiles:\n  t:\n    type: duckdb\n    path: {path}\n    cdm_schema: omop\n"
    )
    monkeypatch.setenv("COHORT_ETL_PROFILES", str(profiles))
    with pytest.raises(SystemExit) as info:
        run_cli(["build"])
    assert info.value.code == 5
    assert capsys.readouterr().err == "error: CDM schema 'omop' does not exist (profile 't')\n"


@pytest.mark.postgres
def test_dbt_env_maps_profiles(duckdb_profile: NamedProfile, pg_profile: NamedProfile) -> None:
    duck = dbt_env(duckdb_profile, threads=3)
    assert duck["COHORT_ETL_DBT_TYPE"] == "duckdb"
    assert duck["COHORT_ETL_DBT_DUCKDB_PATH"] == str(duckdb_profile.settings.path)  # type: ignore[union-attr]
    assert (duck["COHORT_ETL_DBT_CDM_SCHEMA"], duck["COHORT_ETL_DBT_RESULTS_SCHEMA"]) == (
        "cdm",
        "results",
    )
    assert duck["COHORT_ETL_DBT_THREADS"] == "3"
    assert duck["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
    pg = dbt_env(pg_profile)
    assert (
        pg["COHORT_ETL_DBT_TYPE"],
        pg["COHORT_ETL_DBT_PG_HOST"],
        pg["COHORT_ETL_DBT_PG_PORT"],
    ) == (
        "postgres",
        "127.0.0.1",
        "5432",
    )
    assert pg["COHORT_ETL_DBT_PG_DBNAME"].startswith("cohort_etl_test_")
