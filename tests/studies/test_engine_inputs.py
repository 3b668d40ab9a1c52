"""Study specs and the engine on bad input: clear messages, never a traceback (issue 3)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cohort_etl.engine import Study
from cohort_etl.engine.results import TimeToEventResult
from cohort_etl.errors import SpecError
from cohort_etl.report.study import write_outputs
from cohort_etl.studies.spec import StudySpec, load_spec

ROOT = Path(__file__).resolve().parents[2]


def cohort(n: int = 200, seed: int = 3) -> pd.DataFrame:
    """A small person-level dataset shaped like analysis_hsct_after_cart."""
    rng = np.random.default_rng(seed)
    index = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    age = rng.integers(5, 70, n)
    treated = rng.random(n) < 1 / (1 + np.exp(-(1.0 - 0.03 * (age - 30))))
    death_days = rng.exponential(np.where(treated, 1500, 800))
    followup_days = rng.uniform(200, 1800, n)
    death = np.where(death_days < followup_days, death_days, np.nan)
    return pd.DataFrame(
        {
            "person_id": np.arange(1, n + 1),
            "index_date": index,
            "arm": np.where(treated, "hsct_plus", "hsct_minus"),
            "age_at_index": age,
            "female": rng.integers(0, 2, n),
            "hsct_date": index + pd.to_timedelta(np.where(treated, 60, np.nan), unit="D"),
            "death_date": index + pd.to_timedelta(death, unit="D"),
            "relapse_date": pd.NaT,
            "end_of_followup_date": index + pd.to_timedelta(followup_days.round(), unit="D"),
        }
    )


def spec(**changes: object) -> StudySpec:
    base: dict[str, object] = {
        "name": "toy",
        "title": "Toy study",
        "mart": "toy_mart",
        "arms": {"column": "arm", "treated": "hsct_plus", "control": "hsct_minus"},
        "covariates": ["age_at_index", "female"],
        "matching": {"preset": "trinetx", "seed": 1},
        "outcomes": [
            {
                "name": "os",
                "type": "time_to_event",
                "label": "OS",
                "start": "index_date",
                "event_date": "death_date",
                "censor_date": "end_of_followup_date",
                "horizons_days": [365],
            },
        ],
        "data_cutoff": "2025-06-30",
    }
    base.update(changes)
    return StudySpec.model_validate(base)


def test_spec_error_names_file_field_and_allowed_values(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "studies" / "hsct_after_cart.yaml").read_text())
    raw["matching"]["preset"] = "fastest"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert str(path) in message and "matching.preset" in message
    assert "'cohortmethod'" in message and "'trinetx'" in message


def test_both_shipped_specs_validate() -> None:
    for path in sorted((ROOT / "studies").glob("*.yaml")):
        assert load_spec(path).name == path.stem


def test_column_missing_from_mart_is_named() -> None:
    data = cohort().drop(columns=["female"])
    with pytest.raises(SpecError, match=r"lacks column\(s\) named in the spec: female; available"):
        Study(spec(), source="mart toy_mart").run(data)


def test_arm_without_patients_is_explained_in_results_and_report(tmp_path: Path) -> None:
    data = cohort()
    data["arm"] = "hsct_minus"
    result = Study(spec()).run(data)
    reasons = [r.reason for r in result.results.not_estimable]
    assert any("no patients in arm hsct_plus" in r for r in reasons), reasons
    paths = write_outputs(spec(), result, tmp_path, {"profile": "test"})
    html = paths["report"].read_text()
    assert "Not shown: no patients in arm hsct_plus" in html


def test_arm_below_min_cell_count_is_not_analysed() -> None:
    data = cohort(n=200)
    treated_rows = data.index[data["arm"] == "hsct_plus"][:3]
    data = data[(data["arm"] == "hsct_minus") | data.index.isin(treated_rows)]
    result = Study(spec(min_cell_count=5)).run(data)
    flags = result.results.not_estimable
    assert any("fewer than the minimum cell count" in r.reason for r in flags)
    assert any(r.section == "matching" for r in flags)


def test_horizon_beyond_follow_up_is_flagged_and_not_in_the_headline(tmp_path: Path) -> None:
    s = spec(
        outcomes=[
            {
                "name": "os",
                "type": "time_to_event",
                "label": "OS",
                "start": "index_date",
                "event_date": "death_date",
                "censor_date": "end_of_followup_date",
                "horizons_days": [365, 20_000],
            }
        ]
    )
    result = Study(s).run(cohort())
    out = result.results.outcomes["os"]
    assert isinstance(out, TimeToEventResult)
    for arm in out.per_arm.values():
        near, far = arm.at_horizons
        assert not near.beyond_follow_up and near.n_risk > 0
        assert far.beyond_follow_up and far.n_risk == 0 and far.surv is not None
        assert far.follow_up_ends < 20_000
    assert any("beyond follow-up" in r.reason for r in result.results.not_estimable)
    write_outputs(s, result, tmp_path, {})
    day_20000 = next(r for r in result.results.headline if r.result.startswith("day-20000"))
    assert day_20000.estimate.count("not estimable: follow-up ends at day") == 2
    assert "%" not in day_20000.estimate


def test_constant_and_missing_covariates_are_dropped_with_a_warning(tmp_path: Path) -> None:
    data = cohort().assign(constant=1, nothing=np.nan)
    s = spec(covariates=["age_at_index", "female", "constant", "nothing"])
    result = Study(s).run(data)
    assert result.results.matching is not None
    assert result.results.matching.covariates_dropped == ["constant", "nothing"]
    reasons = [w.reason for w in result.results.warnings]
    assert any("'constant' is constant (1)" in r for r in reasons), reasons
    assert any("'nothing' is missing for every patient" in r for r in reasons), reasons
    paths = write_outputs(s, result, tmp_path, {})
    saved = json.loads(paths["results"].read_text())["warnings"]
    assert [w["section"] for w in saved] == ["matching", "matching"]
    assert "is missing for every patient: left out" in paths["report"].read_text()


def test_data_cutoff_censors_and_excludes() -> None:
    data = cohort()
    late = Study(spec(data_cutoff=dt.date(2030, 1, 1))).run(data).results.cohort
    early = Study(spec(data_cutoff=dt.date(2021, 1, 1))).run(data).results.cohort
    assert early is not None and late is not None
    assert early.n_after_cutoff < late.n_after_cutoff
    assert early.excluded_index_after_cutoff > 0


def test_results_are_json_and_identical_on_rerun(tmp_path: Path) -> None:
    a = write_outputs(spec(), Study(spec()).run(cohort()), tmp_path / "a", {})
    b = write_outputs(spec(), Study(spec()).run(cohort()), tmp_path / "b", {})
    assert a["results"].read_bytes() == b["results"].read_bytes()
    assert json.loads(a["results"].read_text())["outcomes"]["os"]["cox"]["estimable"]


def test_run_command_reports_spec_errors_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cohort_etl.cli import run_cli

    monkeypatch.setenv("COHORT_ETL_DUCKDB", str(tmp_path / "none.duckdb"))
    with pytest.raises(SystemExit) as exit_info:
        run_cli(["run", "--study", "no_such_study", "--skip-build", "--no-demo"])
    assert exit_info.value.code == SpecError.exit_code


def test_adjusted_sensitivity_analyses_fit_exposure_plus_covariates() -> None:
    """Landmark and time-varying Cox with baseline adjustment: the exposure term is first
    and the model has one more coefficient per adjustment column; keys say 'adjusted'."""
    s = spec(
        sensitivity=[
            {"kind": "landmark", "outcome": "os", "landmark_day": 90, "exposure_date": "hsct_date"},
            {
                "kind": "landmark",
                "outcome": "os",
                "landmark_day": 90,
                "exposure_date": "hsct_date",
                "adjust_for": ["age_at_index", "female"],
            },
            {
                "kind": "time_varying",
                "outcome": "os",
                "exposure_date": "hsct_date",
                "adjust_for": ["age_at_index"],
            },
        ]
    )
    sens = Study(s).run(cohort(n=400)).results.sensitivity
    plain, adjusted = sens["landmark_os_day90"], sens["landmark_os_day90_adjusted"]
    assert adjusted.adjusted_for == ["age_at_index", "female"]
    assert plain.cox is not None and adjusted.cox is not None
    assert plain.cox.estimable and adjusted.cox.estimable
    assert plain.cox.hr != adjusted.cox.hr
    assert plain.n == adjusted.n
    tv = sens["time_varying_os_adjusted"].cox
    assert tv is not None and tv.estimable
