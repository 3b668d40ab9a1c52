from __future__ import annotations

from pathlib import Path

import pytest

from cohort_etl.cdm.ddl import create_table_sql, physical_type
from cohort_etl.cdm.spec import TABLES
from cohort_etl.config import get_profile
from cohort_etl.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles.yml"
    path.write_text(text)
    return path


def test_default_profile_from_repo_file() -> None:
    profile = get_profile()
    assert profile.dialect in ("duckdb", "postgres")


def test_unknown_profile_names_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "default: a\nprofiles:\n  a: {type: duckdb, path: x.duckdb}\n")
    with pytest.raises(ConfigError, match=r"unknown profile 'nope'; defined profiles: a"):
        get_profile("nope", path)


def test_bad_type_names_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, "default: a\nprofiles:\n  a: {type: oracle}\n")
    with pytest.raises(ConfigError, match=r"profiles\.a"):
        get_profile(None, path)


def test_env_expansion_and_missing_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "default: a\nprofiles:\n  a: {type: duckdb, path: '${DBX}'}\n")
    monkeypatch.setenv("DBX", "/tmp/q.duckdb")
    assert str(get_profile(None, path).settings.path) == "/tmp/q.duckdb"  # type: ignore[union-attr]
    monkeypatch.delenv("DBX")
    with pytest.raises(ConfigError, match="DBX is not set"):
        get_profile(None, path)


def test_ddl_types_follow_spec() -> None:
    person = {f.name: f for f in TABLES["person"]}
    assert physical_type(person["person_id"], "duckdb") == "BIGINT"
    assert physical_type(person["year_of_birth"], "postgres") == "INTEGER"
    sql = create_table_sql("person", "cdm", "postgres")
    assert "person_id BIGINT NOT NULL" in sql
    assert "gender_source_value VARCHAR(50)" in sql


def test_profile_before_the_subcommand_is_used_and_the_subcommand_s_own_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cohort-etl --profile b synth` writes into profile b's file; a --profile after the
    subcommand wins over the one before it."""
    from cohort_etl.cli import run_cli

    profiles = write(
        tmp_path,
        f"default: a\nprofiles:\n  a: {{type: duckdb, path: '{tmp_path / 'a.duckdb'}'}}\n"
        f"  b: {{type: duckdb, path: '{tmp_path / 'b.duckdb'}'}}\n",
    )
    monkeypatch.setenv("COHORT_ETL_PROFILES", str(profiles))
    monkeypatch.delenv("COHORT_ETL_PROFILE", raising=False)
    small = ["synth", "--persons", "200", "--cart-patients", "10", "--seed", "4"]
    run_cli(["-q", "--profile", "b", *small])
    assert (tmp_path / "b.duckdb").is_file() and not (tmp_path / "a.duckdb").exists()
    run_cli(["-q", "--profile", "b", *small, "--profile", "a"])
    assert (tmp_path / "a.duckdb").is_file()
    with pytest.raises(SystemExit) as stopped:
        run_cli(["-q", "--profile", "nope", "check"])
    assert stopped.value.code == ConfigError.exit_code
    assert "unknown profile 'nope'; defined profiles: a, b" in capsys.readouterr().err
