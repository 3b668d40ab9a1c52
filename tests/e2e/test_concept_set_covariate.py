"""Issue 15: an ATLAS concept set export dropped into concept_sets/ is usable as a
covariate and an outcome of a study spec without editing registry.csv by hand or writing
SQL, end to end on the demo CDM.

A temporary copy of the project (concept_sets/, dbt_project/, profiles.yml; never the real
folder) and of the demo run's DuckDB file: the export is dropped in, ``concept-sets
validate`` gives it a draft row, ``cohort-etl run`` builds and runs a spec naming it. The
columns are checked person by person against pandas over the CDM tables: the export's
concept ids plus their valid descendants in concept_ancestor, drug_exposure rows in an
observation period and not more than 30 days after death (the staging rules), the window
applied to the dates. Nothing of the project's code computes the expected values."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from tests.e2e.conftest import DemoRun, run_cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ROOT / "tests" / "concept_sets" / "fixtures" / "atlas_tki_export.json"
CUTOFF = "2025-06-30"
DEATH_GRACE_DAYS = 30  # dbt var death_grace_days
SPEC = f"""
name: tki_concept_set
title: "A concept set from an ATLAS export as covariate and outcome"
cohort: cart_index
mart: analysis_hsct_after_cart
arms: {{column: arm, treated: hsct_plus, control: hsct_minus}}
covariates: [age_at_index, female]
concept_set_covariates:
  - {{concept_set: all_bcr_abl1_tki_atlas_export, name: prior_tki}}
  - {{concept_set: all_bcr_abl1_tki_atlas_export, name: recent_tki, window_days: [-30, 0]}}
concept_set_outcomes:
  - {{name: tki_after_date, concept_set: all_bcr_abl1_tki_atlas_export}}
matching: {{preset: trinetx, seed: 7}}
outcomes:
  - {{name: tki_after, type: time_to_event, start: index_date, event_date: tki_after_date,
     censor_date: end_of_followup_date}}
data_cutoff: {CUTOFF}
"""


def _project_copy(home: Path) -> None:
    home.mkdir()
    shutil.copytree(ROOT / "concept_sets", home / "concept_sets")
    shutil.copytree(
        ROOT / "dbt_project",
        home / "dbt_project",
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "generated"),
    )
    shutil.copy(ROOT / "profiles.yml", home / "profiles.yml")


def _independent_records(db: Path, export: dict) -> pd.DataFrame:
    """(person_id, start) of every drug_exposure row in the export's concepts, after the
    staging rules that can drop a row of this set (observation period, death + grace)."""
    with duckdb.connect(str(db), read_only=True) as con:
        concept = con.sql("select concept_id, invalid_reason from cdm.concept").df()
        ancestry = con.sql(
            "select ancestor_concept_id, descendant_concept_id from cdm.concept_ancestor"
        ).df()
        drugs = con.sql(
            "select person_id, drug_concept_id, drug_exposure_start_date as start "
            "from cdm.drug_exposure"
        ).df()
        periods = con.sql(
            "select person_id, observation_period_start_date as op_start, "
            "observation_period_end_date as op_end from cdm.observation_period"
        ).df()
        death = con.sql("select person_id, min(death_date) as death from cdm.death group by 1").df()
    items = export["expression"]["items"]
    assert all(i["includeDescendants"] and not i["isExcluded"] for i in items)
    ids = {i["concept"]["CONCEPT_ID"] for i in items}
    ids |= set(ancestry.loc[ancestry["ancestor_concept_id"].isin(ids), "descendant_concept_id"])
    ids &= set(concept.loc[concept["invalid_reason"].isna(), "concept_id"])
    rows = drugs[drugs["drug_concept_id"].isin(ids)].copy()
    rows["start"] = pd.to_datetime(rows["start"])
    in_period = rows.merge(periods, on="person_id")
    in_period = in_period[
        (in_period["start"] >= pd.to_datetime(in_period["op_start"]))
        & (in_period["start"] <= pd.to_datetime(in_period["op_end"]))
    ]
    kept = in_period.merge(death, on="person_id", how="left")
    limit = pd.to_datetime(kept["death"]) + pd.Timedelta(days=DEATH_GRACE_DAYS)
    kept = kept[kept["death"].isna() | (kept["start"] <= limit)]
    return kept[["person_id", "start"]].drop_duplicates()


def test_dropped_atlas_export_is_a_covariate_and_outcome(demo_run: DemoRun, tmp_path: Path) -> None:
    real_registry = (ROOT / "concept_sets" / "registry.csv").read_bytes()
    home = tmp_path / "project"
    _project_copy(home)
    db = tmp_path / "site.duckdb"
    shutil.copy(demo_run.duckdb_path, db)
    export = json.loads(EXPORT.read_text())
    shutil.copy(EXPORT, home / "concept_sets" / "tki_export.json")
    env = {"COHORT_ETL_HOME": str(home), "COHORT_ETL_DUCKDB": str(db)}

    # no hand edit of registry.csv: validate registers the export as a draft, and says so
    proc = run_cli(["concept-sets", "validate"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "added draft registry row" in proc.stdout
    assert "all_bcr_abl1_tki_atlas_export,tki_export.json,status=draft,domain=Drug" in proc.stdout

    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "tki.yaml").write_text(SPEC)
    out = tmp_path / "out"
    proc = run_cli(["run", "--specs", str(specs), "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "draft (not reviewed) concept set(s): all_bcr_abl1_tki_atlas_export" in proc.stderr
    folder = out / "tki_concept_set"
    data = pd.read_csv(
        folder / "analysis_dataset.csv", parse_dates=["index_date", "tki_after_date"]
    )

    records = _independent_records(db, export)
    pairs = data[["person_id", "index_date"]].merge(records, on="person_id")
    pairs["days"] = (pairs["start"] - pairs["index_date"]).dt.days
    for column, (lo, hi) in (("prior_tki", (-365, 0)), ("recent_tki", (-30, 0))):
        hit = set(pairs.loc[(pairs["days"] >= lo) & (pairs["days"] <= hi), "person_id"])
        expected = data["person_id"].isin(hit).astype(float)
        wrong = data.loc[expected != data[column], "person_id"].tolist()
        assert not wrong, f"{column}: persons differ: {wrong[:10]}"
        assert 0 < expected.sum() < len(data), f"{column}: both values occur"
    assert data["recent_tki"].sum() < data["prior_tki"].sum()
    first = pairs[pairs["days"] > 0].groupby("person_id")["start"].min()
    expected_first = pd.to_datetime(data["person_id"].map(first))
    same = (expected_first == data["tki_after_date"]) | (
        expected_first.isna() & data["tki_after_date"].isna()
    )
    assert same.all(), data.loc[~same, "person_id"].tolist()[:10]
    assert expected_first.notna().sum() > 0

    # results.json: the columns with their definition, counts over the compared persons,
    # SMDs; the set's registry row (draft) in the provenance; the outcome computed
    results = json.loads((folder / "results.json").read_text())
    compared = data[
        data["arm"].isin(["hsct_plus", "hsct_minus"]) & (data["index_date"] <= pd.Timestamp(CUTOFF))
    ]
    columns = {c["column"]: c for c in results["concept_set_columns"]}
    assert columns["prior_tki"]["persons"] == len(compared)
    assert columns["prior_tki"]["persons_with_record"] == int(compared["prior_tki"].sum())
    assert columns["prior_tki"]["smd_before"] is not None
    assert columns["tki_after_date"]["kind"] == "outcome_date"
    assert results["provenance"]["concept_sets"][0]["status"] == "draft"
    tte = results["outcomes"]["tki_after"]
    assert sum(a["events"] for a in tte["per_arm"].values()) > 0
    balance = pd.read_csv(folder / "tables" / "table1_balance.csv")
    assert {"prior_tki", "recent_tki"} <= set(balance["covariate"])
    report = (folder / "report.html").read_text()
    assert "all_bcr_abl1_tki_atlas_export: any record in [-30, 0] days of index_date" in report
    assert "Draft concept set(s) not yet reviewed" in report

    # the file door on the run's dataset gives the same concept-set section
    proc = run_cli(
        ["analyze", "--data", str(folder / "analysis_dataset.csv"),
         "--spec", str(specs / "tki.yaml"), "--out", str(tmp_path / "analyzed")],
        {},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    analyzed = json.loads((tmp_path / "analyzed" / "results.json").read_text())
    assert analyzed["concept_set_columns"] == results["concept_set_columns"]

    # rerunning validate changes nothing; the real project's registry was never touched
    registry = (home / "concept_sets" / "registry.csv").read_bytes()
    assert run_cli(["concept-sets", "validate"], env).returncode == 0
    assert (home / "concept_sets" / "registry.csv").read_bytes() == registry
    assert (ROOT / "concept_sets" / "registry.csv").read_bytes() == real_registry
