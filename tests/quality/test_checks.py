"""The data-quality stage on a synthetic CDM with one known fault at a time.

The clean CDM's findings are checked against the generator's own count of the errors it
planted (records before the observation period, records after death); each fault is
written into a copy of the CDM and must come back as a finding naming its table, column,
count and an example id, with the right severity. Errors stop ``DbtBuild`` before dbt
starts; the build runs green through warnings (one real dbt build at the end).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from cohort_etl.cli import run_cli
from cohort_etl.config import NamedProfile
from cohort_etl.dbt_runner import DbtBuild
from cohort_etl.errors import InputDataError
from cohort_etl.quality import QualityReport, run_checks
from cohort_etl.synthetic import vocabulary as v

Faulty = Callable[..., NamedProfile]


def truth(profile: NamedProfile, name: str) -> int:
    path = profile.settings.path  # type: ignore[union-attr]
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(
            "select value from synthetic_truth.parameters where name = ?", [name]
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0])


def only(report: QualityReport, check: str, table: str | None = None) -> list:
    return [f for f in report.findings if f.check == check and (table is None or f.table == table)]


def test_clean_cdm_has_no_errors_and_counts_the_planted_faults(faulty: Faulty) -> None:
    profile = faulty()
    report = run_checks(profile)
    assert report.errors == []
    outside = sum(f.count for f in only(report, "outside_observation_period"))
    assert outside == truth(profile, "error.outside_observation_period")
    after_death = sum(f.count for f in only(report, "after_death"))
    assert after_death == truth(profile, "error.after_death")
    dropped = {(c.rule[0], c.table): c.rows for c in report.cleaning}
    assert sum(n for (rule, _), n in dropped.items() if rule == "2") == outside


def test_duplicate_person_id_is_an_error_with_the_id(faulty: Faulty) -> None:
    profile = faulty(
        lambda con: con.execute(
            "insert into cdm.person select * from cdm.person where person_id = 7"
        ),
        "person",
    )
    report = run_checks(profile)
    (finding,) = only(report, "primary_key_unique", "person")
    assert (finding.severity, finding.column, finding.count, finding.example_ids) == (
        "error",
        "person_id",
        1,
        (7,),
    )
    with pytest.raises(
        InputDataError,
        match=r"^1 value\(s\) of primary key cdm\.person\.person_id occur more than once \(e\.g\. 7\)$",
    ):
        DbtBuild(profile).run()


def test_duplicate_drug_exposure_id(faulty: Faulty) -> None:
    def dup(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            "insert into cdm.drug_exposure select * from cdm.drug_exposure "
            "where drug_exposure_id in (select min(drug_exposure_id) from cdm.drug_exposure)"
        )

    profile = faulty(dup, "drug_exposure")
    (finding,) = only(run_checks(profile), "primary_key_unique", "drug_exposure")
    assert (finding.severity, finding.column, finding.count) == ("error", "drug_exposure_id", 1)


def test_null_person_id(faulty: Faulty) -> None:
    def null(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            "update cdm.condition_occurrence set person_id = null where condition_occurrence_id in "
            "(select condition_occurrence_id from cdm.condition_occurrence order by 1 limit 3)"
        )

    profile = faulty(null, "condition_occurrence")
    (finding,) = only(run_checks(profile), "required_not_null", "condition_occurrence")
    assert (finding.severity, finding.column, finding.count, len(finding.example_ids)) == (
        "error",
        "person_id",
        3,
        3,
    )
    with pytest.raises(
        InputDataError, match="NULL in required column cdm.condition_occurrence.person_id"
    ):
        DbtBuild(profile).run()


def test_end_before_start_is_a_warning_and_a_repair(faulty: Faulty) -> None:
    def swap(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            "update cdm.drug_exposure set drug_exposure_end_date = drug_exposure_start_date - 5 "
            "where drug_exposure_id in (select drug_exposure_id from cdm.drug_exposure "
            "order by 1 limit 4)"
        )

    report = run_checks(faulty(swap, "drug_exposure"))
    (finding,) = only(report, "end_before_start", "drug_exposure")
    assert (finding.severity, finding.count) == ("warning", 4)
    (rule,) = [c for c in report.cleaning if c.rule.startswith("5") and c.table == "drug_exposure"]
    assert (rule.rows, rule.action) == (4, "repaired")


def _cart_person(con: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    row = con.execute(
        "select person_id, min(drug_exposure_start_date) from cdm.drug_exposure "
        f"where drug_concept_id in ({', '.join(str(c) for c in v.CD19_CART_INGREDIENTS)}, "
        f"{v.KYMRIAH_250M}, {v.KYMRIAH_600M}) group by person_id order by person_id limit 1"
    ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def test_death_shortly_before_cart_is_an_error_naming_the_person(faulty: Faulty) -> None:
    found: dict[str, int] = {}

    def die(con: duckdb.DuckDBPyConnection) -> None:
        person, day = _cart_person(con)
        found["person"] = person
        con.execute("delete from cdm.death where person_id = ?", [person])
        con.execute(
            "insert into cdm.death (person_id, death_date, death_type_concept_id) "
            "values (?, cast(? as date) - 10, 32817)",
            [person, day],
        )

    profile = faulty(die, "death")
    (finding,) = only(run_checks(profile), "cart_after_death")
    assert (finding.severity, finding.count, finding.example_ids) == (
        "error",
        1,
        (found["person"],),
    )


def test_empty_concept_ancestor_refused_unless_accepted(faulty: Faulty) -> None:
    profile = faulty(lambda con: con.execute("delete from cdm.concept_ancestor"))
    (finding,) = only(run_checks(profile), "vocabulary_empty", "concept_ancestor")
    assert finding.severity == "error"
    assert "--accept-incomplete-vocabulary" in finding.message
    accepted = run_checks(profile, accept_incomplete_vocabulary=True)
    (finding,) = only(accepted, "vocabulary_empty", "concept_ancestor")
    assert finding.severity == "warning"
    assert accepted.errors == []
    assert accepted.to_dict()["options"]["accept_incomplete_vocabulary"] is True


@pytest.mark.parametrize("table", ["concept_relationship", "concept"])
def test_other_empty_vocabulary_tables(faulty: Faulty, table: str) -> None:
    profile = faulty(lambda con: con.execute(f"delete from cdm.{table}"))
    findings = only(run_checks(profile), "vocabulary_empty", table)
    assert [f.severity for f in findings] == ["error"]


def test_dates_stored_as_text(faulty: Faulty) -> None:
    def as_text(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("alter table cdm.procedure_occurrence alter procedure_date type varchar")

    profile = faulty(as_text, "procedure_occurrence")
    (finding,) = only(run_checks(profile), "column_type")
    assert (finding.table, finding.column, finding.severity) == (
        "procedure_occurrence",
        "procedure_date",
        "error",
    )
    assert "VARCHAR" in finding.message


def test_missing_table_and_column(faulty: Faulty) -> None:
    def drop(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("drop view cdm.death")
        con.execute("alter table cdm.measurement drop column value_as_number")

    report = run_checks(faulty(drop, "measurement"))
    assert [(f.check, f.table, f.column) for f in report.errors] == [
        ("required_table", "death", None),
        ("required_column", "measurement", "value_as_number"),
    ]


def test_events_of_unknown_persons_and_bad_periods(faulty: Faulty) -> None:
    def orphan(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("delete from cdm.person where person_id = 11")
        con.execute(
            "update cdm.observation_period set observation_period_end_date = "
            "observation_period_start_date - 1 where person_id = 12"
        )

    report = run_checks(faulty(orphan, "person", "observation_period"))
    unknown = only(report, "person_not_in_person")
    assert unknown and all(f.severity == "warning" for f in unknown)
    (period,) = only(report, "end_before_start", "observation_period")
    assert period.count >= 1


def test_drug_concept_in_a_condition_set(faulty: Faulty, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "concept_sets"
    shutil.copytree(Path(__file__).resolve().parents[2] / "concept_sets", folder)
    data = json.loads((folder / "t_all.json").read_text())
    data["items"].append(
        {
            "concept": {"CONCEPT_ID": v.CYTARABINE, "DOMAIN_ID": "Condition"},
            "isExcluded": False,
            "includeDescendants": False,
            "includeMapped": False,
        }
    )
    (folder / "t_all.json").write_text(json.dumps(data, indent=2))
    profile = faulty()
    (finding,) = only(run_checks(profile, concept_sets_dir=folder), "concept_set_domain")
    assert finding.severity == "warning"
    assert finding.example_ids == (v.CYTARABINE,)
    assert "t_all" in finding.message and f"{v.CYTARABINE} (Drug)" in finding.message


def test_check_cli_exit_codes_and_json(faulty: Faulty, tmp_path: Path, monkeypatch, capsys) -> None:
    profile = faulty(lambda con: con.execute("delete from cdm.concept_ancestor"))
    path = profile.settings.path  # type: ignore[union-attr]
    profiles = tmp_path / "profiles.yml"
    profiles.write_text(f"default: t\nprofiles:\n  t:\n    type: duckdb\n    path: {path}\n")
    monkeypatch.setenv("COHORT_ETL_PROFILES", str(profiles))
    with pytest.raises(SystemExit) as info:
        run_cli(["check"])
    assert info.value.code == 5
    err = capsys.readouterr().err
    assert "error: vocabulary table cdm.concept_ancestor is empty" in err
    out_json = tmp_path / "dq.json"
    run_cli(["check", "--accept-incomplete-vocabulary", "--json", str(out_json)])
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("ok: t:cdm: ")
    data = json.loads(out_json.read_text())
    assert data["errors"] == 0
    assert any(
        f["table"] == "concept_ancestor" and f["severity"] == "warning" for f in data["findings"]
    )


@pytest.mark.postgres
def test_postgres_finds_the_same(faulty: Faulty, pg_profile: NamedProfile) -> None:
    """The same CDM on PostgreSQL (generated from the same seed) gives the same findings."""
    from tests.quality.conftest import BASE

    from cohort_etl.synthetic.generator import generate

    generate(BASE, pg_profile, replace=True)
    duck = run_checks(faulty())
    pg = run_checks(pg_profile)
    assert [f.to_dict() for f in pg.findings] == [f.to_dict() for f in duck.findings]
    assert pg.cleaning == duck.cleaning


def test_build_runs_green_through_warnings(faulty: Faulty) -> None:
    """End before start and an empty concept_ancestor (accepted) used to stop the build at a
    dbt test or pass silently; now the build is green and lists both warnings."""

    def faults(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("delete from cdm.concept_ancestor")
        con.execute(
            "update cdm.drug_exposure set drug_exposure_end_date = drug_exposure_start_date - 3 "
            "where drug_exposure_id in (select drug_exposure_id from cdm.drug_exposure "
            "order by 1 limit 50)"
        )

    profile = faulty(faults, "drug_exposure")
    result = DbtBuild(profile, accept_incomplete_vocabulary=True).run()
    assert result.success
    assert result.quality is not None and result.quality.errors == []
    joined = "\n".join(result.warnings)
    assert "concept_ancestor: vocabulary_empty" in joined
    assert "drug_exposure.drug_exposure_end_date: end_before_start: 50 row(s)" in joined
