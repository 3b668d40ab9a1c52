"""The spark profile and the Parquet/CSV checks, without starting Spark."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.spark.conftest import spark_profile_at

from cohort_etl.config import SparkProfile, get_profile
from cohort_etl.dbt_runner import dbt_env
from cohort_etl.errors import ConfigError, InputDataError
from cohort_etl.spark.loader import register_cdm_folder
from cohort_etl.spark.session import spark_conf


def test_repo_spark_profile_and_env_override(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COHORT_ETL_SPARK_WAREHOUSE", str(tmp_path / "wh"))
    profile = get_profile("spark")
    assert isinstance(profile.settings, SparkProfile)
    assert profile.dialect == "spark"
    assert profile.settings.resolved_warehouse() == (tmp_path / "wh").resolve()


def test_dbt_gets_the_same_spark_settings(tmp_path: Path) -> None:
    profile = spark_profile_at(tmp_path / "wh")
    env = dbt_env(profile)
    assert env["COHORT_ETL_DBT_TYPE"] == "spark"
    conf = json.loads(env["COHORT_ETL_DBT_SPARK_CONF"])
    assert conf == spark_conf(profile.settings)
    # one warehouse and one metastore, under the profile's folder, for both processes
    assert conf["spark.sql.warehouse.dir"] == str((tmp_path / "wh" / "warehouse").resolve())
    assert (
        str((tmp_path / "wh" / "metastore_db").resolve())
        in conf["spark.hadoop.javax.jdo.option.ConnectionURL"]
    )
    assert conf["spark.master"] == "local[2]"


def test_profile_conf_overrides_and_rejects_non_spark_keys(tmp_path: Path) -> None:
    settings = SparkProfile(
        type="spark", warehouse=tmp_path, conf={"spark.sql.shuffle.partitions": "3"}
    )
    assert spark_conf(settings)["spark.sql.shuffle.partitions"] == "3"
    path = tmp_path / "profiles.yml"
    path.write_text(
        "default: s\nprofiles:\n  s: {type: spark, conf: {hive.metastore.uris: 'thrift://x'}}\n"
    )
    with pytest.raises(ConfigError, match=r"profiles\.s\.conf.*not a Spark setting"):
        get_profile(None, path)


def _person(path: Path, **override: pa.Array) -> None:
    columns = {
        "person_id": pa.array([1, 2], pa.int64()),
        "gender_concept_id": pa.array([8532, 8507], pa.int64()),
        "year_of_birth": pa.array([1990, 1980], pa.int32()),
        "race_concept_id": pa.array([0, 0], pa.int64()),
        "ethnicity_concept_id": pa.array([0, 0], pa.int64()),
    }
    columns.update(override)
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path / "part-0.parquet")


def _observation_period(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "observation_period_id": pa.array([1], pa.int64()),
                "person_id": pa.array([1], pa.int64()),
                "observation_period_start_date": pa.array([0], pa.date32()),
                "observation_period_end_date": pa.array([10], pa.date32()),
                "period_type_concept_id": pa.array([32817], pa.int64()),
            }
        ),
        path,
    )


def test_missing_required_table_is_named(tmp_path: Path) -> None:
    _person(tmp_path / "cdm" / "person")
    with pytest.raises(InputDataError, match=r"required table observation_period is missing"):
        register_cdm_folder(tmp_path / "cdm", spark_profile_at(tmp_path / "wh"))


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    _observation_period(tmp_path / "cdm" / "observation_period.parquet")
    folder = tmp_path / "cdm" / "PERSON"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"person_id": pa.array([1], pa.int64())}), folder / "p.parquet")
    with pytest.raises(InputDataError, match=r"PERSON: required column gender_concept_id"):
        register_cdm_folder(tmp_path / "cdm", spark_profile_at(tmp_path / "wh"))


def test_column_stored_as_another_kind_is_named(tmp_path: Path) -> None:
    _observation_period(tmp_path / "cdm" / "observation_period.parquet")
    _person(tmp_path / "cdm" / "person", year_of_birth=pa.array(["1990", "x"], pa.string()))
    with pytest.raises(InputDataError, match=r"person: column year_of_birth is stored as string"):
        register_cdm_folder(tmp_path / "cdm", spark_profile_at(tmp_path / "wh"))


def test_bad_csv_value_names_file_column_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "cdm"
    folder.mkdir()
    (folder / "person.csv").write_text(
        "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id\n"
        "1,8532,1990,0,0\n2,8507,nineteen,0,0\n"
    )
    (folder / "observation_period.csv").write_text(
        "observation_period_id,person_id,observation_period_start_date,"
        "observation_period_end_date,period_type_concept_id\n1,1,2020-01-01,2020-02-01,32817\n"
    )
    with pytest.raises(InputDataError, match=r"person\.csv: column year_of_birth, line 3"):
        register_cdm_folder(folder, spark_profile_at(tmp_path / "wh"))
    # nothing was registered or left half-written beside the source files
    assert sorted(p.name for p in folder.iterdir()) == ["observation_period.csv", "person.csv"]
