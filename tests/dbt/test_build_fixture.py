"""A dbt build on a small hand-written CDM: cleaning rules, person-level results the
scenario fixes by construction, warnings (absent concept, zero-person cohorts), the CDM left
untouched, and the `cohort-etl build` command."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import duckdb_profile_at
from tests.dbt.cdm_fixture import CdmBuilder
from tests.dbt.conftest import cdm_checksums

from cohort_etl.cli import run_cli
from cohort_etl.concept_sets.registry import default_folder
from cohort_etl.config import NamedProfile
from cohort_etl.db import connected
from cohort_etl.dbt_runner import BuildResult, DbtBuild, dbt_project_dir
from cohort_etl.quality import QualityReport
from cohort_etl.synthetic import vocabulary as v

pytestmark = pytest.mark.slow


def scenario() -> CdmBuilder:
    b = CdmBuilder()
    # 1: B-ALL, two lines, relapse coded by ICD-10-CM only (concept_id 0), lymphodepletion,
    #    CAR-T drug + procedure two days apart, conditioning, allo-HSCT on day 87: hsct_plus.
    b.person(1, year_of_birth=1990)
    b.condition(1, "2018-01-10", 0, v.ICD10CM_C91_00)
    b.drug(1, "2018-01-15", v.VINCRISTINE, 1).drug(1, "2018-01-15", v.DAUNORUBICIN, 3)
    b.drug(1, "2018-01-15", v.DAUNORUBICIN, 3)  # exact duplicate row: dropped
    b.condition(1, "2019-03-01", 0, v.ICD10CM_C91_02)
    b.drug(1, "2019-03-05", v.BLINATUMOMAB, 28)
    b.drug(1, "2019-06-01", v.FLUDARABINE, 3).drug(1, "2019-06-01", v.CYCLOPHOSPHAMIDE, 3)
    b.drug(1, "2019-06-06", v.KYMRIAH_600M).procedure(1, "2019-06-08", v.PCS_XW033C3)
    b.drug(1, "2019-08-25", v.FLUDARABINE, 2).procedure(1, "2019-09-01", v.ALLO_PBSCT)
    # 2: a CAR-T record outside the observation period only: never infused.
    b.person(2, start="2015-01-01", end="2019-12-31")
    b.condition(2, "2018-01-10", v.B_ALL).condition(2, "2019-02-01", v.ALL_RELAPSE)
    b.drug(2, "2020-06-06", v.KYMRIAH_600M)
    # 3: R/R B-ALL, CAR-T, allo-HSCT on day 50, relapse code on day 100 (CNS, CD19-),
    #    blinatumomab salvage, remission, death. Nobody is hsct_minus: an empty cohort.
    b.person(3, year_of_birth=1980, gender=v.MALE)
    b.condition(3, "2019-01-10", v.B_ALL).condition(3, "2020-01-05", v.ALL_REFRACTORY)
    b.drug(3, "2020-02-01", v.TISAGENLECLEUCEL)
    b.procedure(3, "2020-03-22", v.CPT_38240_ALLO)
    b.condition(3, "2020-05-11", v.ALL_RELAPSE).condition(3, "2020-05-11", v.MENINGEAL_LEUKEMIA)
    b.measurement(3, "2020-05-11", v.CD19_CELLS_SPECIMEN, v.NEGATIVE, 1.0)
    b.drug(3, "2020-05-20", v.BLINATUMOMAB, 28)
    b.condition(3, "2020-06-25", v.ALL_REMISSION)
    b.death(3, "2020-12-01")
    b.drug(3, "2021-02-01", v.TISAGENLECLEUCEL)  # 62 days after death: dropped
    # 4: T-ALL given CAR-T: excluded by the T-ALL rule.
    b.person(4).condition(4, "2019-01-10", v.T_ALL).condition(4, "2019-06-01", v.ALL_RELAPSE)
    b.drug(4, "2019-07-01", v.TISAGENLECLEUCEL)
    return b


@pytest.fixture(scope="module")
def fixture_build(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[NamedProfile, BuildResult, dict]]:
    root = tmp_path_factory.mktemp("fixture")
    profile = duckdb_profile_at(root / "cdm.duckdb", "fixture")
    with connected(profile) as db:
        scenario().write(db)
        before = cdm_checksums(db, "cdm")
    # concept sets with one item naming a concept the vocabulary does not have
    folder = root / "concept_sets"
    shutil.copytree(default_folder(), folder)
    data = json.loads((folder / "mrd.json").read_text())
    data["items"].append({"concept": {"CONCEPT_ID": 999999999}, "isExcluded": False})
    (folder / "mrd.json").write_text(json.dumps(data))
    result = DbtBuild(profile, threads=4, concept_sets_dir=folder).run()
    yield profile, result, before


def _table(profile: NamedProfile, name: str) -> pd.DataFrame:
    with connected(profile) as db:
        return db.query_df(f"select * from {db.schema_ref('results')}.{name}")


def test_build_runs_models_data_and_unit_tests(fixture_build: tuple) -> None:
    _, result, _ = fixture_build
    assert result.count("model") >= 30
    assert result.count("test") >= 80
    assert result.count("unit_test") >= 8
    assert result.count("unit_test", "pass") == result.count("unit_test")
    assert result.model_execution_seconds > 0


def test_warnings_for_absent_concept_and_zero_person_cohorts(fixture_build: tuple) -> None:
    profile, result, _ = fixture_build
    # one line per concept set with a count; an empty cohort names the rule that emptied it
    assert "concept set mrd: 1 item(s) absent from the vocabulary (999999999)" in result.warnings
    steps = _table(profile, "cohort_attrition").query("cohort_definition_name == 'hsct_minus'")
    first = steps[steps["persons_remaining"] == 0].sort_values("rule_number").iloc[0]
    assert (
        f"EMPTY COHORT: hsct_minus has 0 persons after rule {first['rule_number']} "
        f"({first['rule_name']})"
    ) in result.warnings
    absent = _table(profile, "concept_set_absent_items")
    assert absent[["concept_set_name", "concept_id"]].values.tolist() == [["mrd", 999999999]]
    assert _table(profile, "cohort").query("cohort_definition_id == 3").empty


def test_cdm_is_unchanged_by_the_build(fixture_build: tuple) -> None:
    profile, _, before = fixture_build
    with connected(profile) as db:
        assert cdm_checksums(db, "cdm") == before


def test_cleaning_rules(fixture_build: tuple) -> None:
    profile, _, _ = fixture_build
    diagnoses = _table(profile, "int__all_diagnoses").set_index("person_id")
    assert str(diagnoses.loc[1, "first_all_date"])[:10] == "2018-01-10"  # source code only
    exposures = _table(profile, "int__antineoplastic_exposures")
    assert (
        len(exposures[(exposures.person_id == 1) & (exposures.agent_concept_id == v.DAUNORUBICIN)])
        == 1
    )
    infusions = _table(profile, "int__cart_infusions")
    assert sorted(infusions["person_id"]) == [
        1,
        3,
        4,
    ]  # 2: outside observation; 3: one, not after death
    assert infusions.set_index("person_id").loc[1, "n_records"] == 2


def test_person_level_results(fixture_build: tuple) -> None:
    profile, _, _ = fixture_build
    a = _table(profile, "analysis_hsct_after_cart").set_index("person_id")
    assert sorted(a.index) == [1, 3]
    p1 = a.loc[1]
    assert (str(p1.index_date)[:10], p1.arm, str(p1.hsct_date)[:10]) == (
        "2019-06-06",
        "hsct_plus",
        "2019-09-01",
    )
    assert (p1.prior_lines, p1.cart_product, p1.age_at_index) == (2, "tisagenlecleucel", 29)
    assert pd.isna(p1.relapse_date)
    p3 = a.loc[3]
    assert (p3.arm, str(p3.hsct_date)[:10], str(p3.relapse_date)[:10]) == (
        "hsct_plus",
        "2020-03-22",
        "2020-05-11",
    )
    assert str(p3.death_date)[:10] == "2020-12-01"
    b = _table(profile, "analysis_salvage_after_relapse").set_index("person_id")
    assert list(b.index) == [3]
    s = b.loc[3]
    assert (s.salvage_modality, str(s.salvage_start_date)[:10], s.cr, str(s.cr_date)[:10]) == (
        "monoclonal_antibody",
        "2020-05-20",
        1,
        "2020-06-25",
    )
    assert (s.relapse_site, s.extramedullary_site, s.cd19_status, s.age_at_relapse, s.sex) == (
        "isolated_cns",
        "cns",
        "negative",
        40,
        "male",
    )
    assert (s.prior_hsct, str(s.consolidation_hsct_date)[:10]) == (1, "2020-03-22")
    lines = (
        _table(profile, "int__lines_of_therapy").query("person_id == 1").sort_values("line_number")
    )
    assert list(lines["modality"]) == ["chemotherapy", "monoclonal_antibody", "cart"]
    exposures = _table(profile, "int__antineoplastic_exposures").query("person_id == 1")
    assert sorted(exposures["absorbed_into"].dropna()) == [
        "cart_lymphodepletion",
        "cart_lymphodepletion",
        "hsct_conditioning",
    ]


def test_attrition_and_omop_tables(fixture_build: tuple) -> None:
    profile, _, _ = fixture_build
    attrition = _table(profile, "cohort_attrition").query("cohort_definition_id == 1")
    assert attrition.sort_values("rule_number")[
        ["rule_name", "persons_remaining", "persons_removed"]
    ].values.tolist() == [
        ["persons in the CDM", 4, 0],
        ["all_diagnosis", 4, 0],
        ["cart_after_all_diagnosis", 3, 1],
        ["not_t_all", 2, 1],
        ["relapsed_refractory_before_cart", 2, 0],
    ]
    episodes = _table(profile, "episode").query("person_id == 1").sort_values("episode_id")
    assert episodes["episode_concept_id"].tolist() == [32528, 32531, 32531, 32531]
    assert episodes["episode_number"].dropna().tolist() == [1, 2, 3]
    assert set(episodes["episode_parent_id"].dropna()) == {1000}


def test_hsct_placed_in_the_line_it_consolidates(fixture_build: tuple) -> None:
    """Person 1: the allo-HSCT (2019-09-01) after the CAR-T line (line 3) with no relapse
    therapy between is not a new line; it and its conditioning (fludarabine, 2019-08-25)
    belong to line 3's episode, which ends on the transplant day. Person 3: the HSCT after
    CAR-T (line 1) consolidates line 1; the later blinatumomab salvage is line 2."""
    profile, _, _ = fixture_build
    placement = _table(profile, "int__hsct_placement").set_index("person_id")
    assert placement.loc[1, "line_number"] == 3
    assert placement.loc[3, "line_number"] == 1
    lines = _table(profile, "int__lines_of_therapy")
    assert len(lines.query("person_id == 1")) == 3
    assert list(lines.query("person_id == 3").sort_values("line_number")["modality"]) == [
        "cart",
        "monoclonal_antibody",
    ]
    with connected(profile) as db:
        cdm = db.schema_ref("cdm")
        hsct_ids = db.query_df(
            f"select person_id, procedure_occurrence_id from {cdm}.procedure_occurrence "
            f"where procedure_concept_id in ({v.ALLO_PBSCT}, {v.CPT_38240_ALLO}) "
            f"or procedure_source_concept_id in ({v.ALLO_PBSCT}, {v.CPT_38240_ALLO})"
        ).set_index("person_id")["procedure_occurrence_id"]
        conditioning = db.query_df(
            f"select drug_exposure_id from {cdm}.drug_exposure "
            f"where person_id = 1 and drug_exposure_start_date = date '2019-08-25'"
        )["drug_exposure_id"]
        cart_procedure = db.query_df(
            f"select procedure_occurrence_id from {cdm}.procedure_occurrence "
            f"where person_id = 1 and procedure_concept_id = {v.PCS_XW033C3}"
        )["procedure_occurrence_id"]
    events = _table(profile, "episode_event")
    procedures = events[events.episode_event_field_concept_id == 1147082]
    hsct = procedures[procedures.event_id.isin(hsct_ids.astype(int).tolist())]
    assert sorted(map(tuple, hsct[["episode_id", "event_id"]].values.tolist())) == sorted(
        [(1003, int(hsct_ids.loc[1])), (3001, int(hsct_ids.loc[3]))]
    )
    # the CAR-T administration procedure (two days after the drug record) is line 3's too
    cart = procedures[procedures.event_id == int(cart_procedure.iloc[0])]
    assert cart["episode_id"].tolist() == [1003]
    drugs = events[events.episode_event_field_concept_id == 1147094]
    assert drugs[drugs.event_id == int(conditioning.iloc[0])]["episode_id"].tolist() == [1003]
    episodes = _table(profile, "episode").set_index("episode_id")
    assert str(episodes.loc[1003, "episode_end_date"])[:10] == "2019-09-01"


def test_relapse_and_remission_episodes(fixture_build: tuple) -> None:
    """Person 3 (no remission code between the CAR-T infusion and the relapse code of
    2020-05-11): a Disease Progression episode from the relapse to the salvage CR
    (remission code 2020-06-25 after blinatumomab), then a Disease Remission episode to the
    end of follow-up (death 2020-12-01); each links the condition record of its code. Person
    1 has no status code after CAR-T: no such episode."""
    profile, _, _ = fixture_build
    episodes = _table(profile, "episode").set_index("episode_id")
    assert sorted(episodes.query("person_id == 1")["episode_concept_id"]) == [
        32528,
        32531,
        32531,
        32531,
    ]
    three = episodes.query("person_id == 3")
    assert sorted(three.index) == [3000, 3001, 3002, 3801, 3901]
    got = [
        (
            int(three.loc[i, "episode_concept_id"]),
            str(three.loc[i, "episode_start_date"])[:10],
            str(three.loc[i, "episode_end_date"])[:10],
            int(three.loc[i, "episode_parent_id"]),
        )
        for i in (3801, 3901)
    ]
    assert got == [
        (32677, "2020-05-11", "2020-06-25", 3000),
        (32530, "2020-06-25", "2020-12-01", 3000),
    ]
    with connected(profile) as db:
        codes = db.query_df(
            f"select condition_concept_id, condition_occurrence_id "
            f"from {db.schema_ref('cdm')}.condition_occurrence where person_id = 3 "
            f"and condition_concept_id in ({v.ALL_RELAPSE}, {v.ALL_REMISSION}) "
            f"and condition_start_date >= date '2020-05-01'"
        ).set_index("condition_concept_id")["condition_occurrence_id"]
    events = _table(profile, "episode_event")
    status = events[events.episode_id.isin([3801, 3901])]
    assert sorted(map(tuple, status.values.tolist())) == sorted(
        [
            (3801, int(codes.loc[v.ALL_RELAPSE]), 1147127),
            (3901, int(codes.loc[v.ALL_REMISSION]), 1147127),
        ]
    )


def test_index_cohort_as_one_statement_or_script_equals_the_build(fixture_build: tuple) -> None:
    """bench_dbt times the index-cohort models inlined into one SQL statement and as a
    script of temp-table statements; both must give exactly the built index (persons 1,
    3, 4; T-ALL is excluded only later, by cohort 1's rules)."""
    from bench.bench_dbt import index_cohort_script, index_cohort_sql

    profile, _, _ = fixture_build
    target = dbt_project_dir() / "target" / profile.name
    course = _table(profile, "int__cart_course").sort_values("person_id")
    expected_dates = [str(x)[:10] for x in course["cart_date"]]
    with connected(profile) as db:
        inline = db.query_df(index_cohort_sql(target)).sort_values("subject_id")
        for statement in index_cohort_script(target):
            db.execute(statement)
        script = db.query_df("select * from index_cohort").sort_values("subject_id")
    assert course["person_id"].tolist() == [1, 3, 4]
    for result in (inline, script):
        assert result["subject_id"].tolist() == [1, 3, 4]
        assert [str(x)[:10] for x in result["cohort_start_date"]] == expected_dates


def _profiles_file(tmp_path: Path, profile: NamedProfile) -> Path:
    """A profiles.yml naming the fixture's profile (same name and path: dbt reuses its
    partial parse instead of parsing the project again)."""
    path = tmp_path / "profiles.yml"
    settings = profile.settings
    path.write_text(
        f"default: {profile.name}\nprofiles:\n  {profile.name}:\n"
        f"    type: duckdb\n    path: {settings.path}\n"  # type: ignore[union-attr]
    )
    return path


def test_build_command(
    fixture_build: tuple,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    profile, _, _ = fixture_build
    monkeypatch.setenv("COHORT_ETL_PROFILES", str(_profiles_file(tmp_path, profile)))
    run_cli(["build", "--select", "int__cart_infusions"])
    out = capsys.readouterr().out
    assert out.startswith("built 1 models, 3 data tests, 1 unit tests into results")


def test_failing_data_test_is_a_build_error_naming_it(
    fixture_build: tuple,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Runs last in this module: it duplicates a person in the fixture CDM."""
    profile, _, _ = fixture_build
    with connected(profile) as db:
        cdm = db.schema_ref("cdm")
        db.execute(f"insert into {cdm}.person select * from {cdm}.person where person_id = 4")
    monkeypatch.setenv("COHORT_ETL_PROFILES", str(_profiles_file(tmp_path, profile)))
    # a duplicate person is a source-data fault: the data-quality stage stops the build
    # before dbt, naming the key and the id (exit 5)
    with pytest.raises(SystemExit) as info:
        run_cli(["build", "--select", "int__person_followup"])
    assert info.value.code == 5
    err = capsys.readouterr().err
    assert err.startswith(
        "error: 1 value(s) of primary key cdm.person.person_id occur more than once (e.g. 4)"
    )
    # a fault that stage does not catch still fails dbt's own test, named, with exit 7
    monkeypatch.setattr("cohort_etl.dbt_runner.check_cdm", lambda *args: QualityReport("cdm"))
    with pytest.raises(SystemExit) as info:
        run_cli(["build", "--select", "int__person_followup"])
    assert info.value.code == 7
    # (progress lines of the build come first on stderr; the error is the last line)
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("error: dbt test unique_int__person_followup_person_id failed")
