"""``cohort-etl analyze`` (the file door of the engine) on a user's dataset with ready
time / event columns: matched dataset + results.json, checked against R."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from scipy.special import expit
from tests.stats.r_oracle import run_r

from cohort_etl.cli import main
from cohort_etl.engine import Study
from cohort_etl.engine.results import StudyResults
from cohort_etl.errors import InputDataError, SpecError
from cohort_etl.studies.spec import StudySpec, load_spec


def _dataset(n: int = 1500, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(50, 12, n)
    sex = rng.choice(["F", "M"], n)
    mrd = rng.binomial(1, 0.4, n)
    p = expit(-1.0 + 0.04 * (age - 50) + 0.8 * mrd)
    arm = np.where(rng.random(n) < p, "hsct", "none")
    arm[:20] = "other"  # neither arm: left out
    hazard = 0.002 * np.exp(0.03 * (age - 50) - 0.5 * (arm == "hsct") - 0.3 * mrd)
    t_event = rng.exponential(1 / hazard)
    t_cens = rng.uniform(200, 1500, n)
    return pd.DataFrame(
        {
            "arm": arm,
            "age": age,
            "sex": sex,
            "mrd": mrd,
            "os_days": np.minimum(t_event, t_cens).round(1),
            "death": (t_event <= t_cens).astype(int),
            "cr": rng.binomial(1, np.where(arm == "hsct", 0.7, 0.5)),
        }
    )


SPEC = {
    "name": "hsct_vs_none",
    "title": "HSCT vs none",
    "arms": {"column": "arm", "treated": "hsct", "control": "none"},
    "covariates": ["age", "sex", "mrd"],
    "matching": {"preset": "trinetx", "seed": 11},
    "outcomes": [
        {"name": "os", "type": "time_to_event", "time": "os_days", "event": "death",
         "horizons_days": [365, 730, 5000]},
        {"name": "cr", "type": "binary", "column": "cr"},
    ],
    "comparisons": [{"name": "cr_by_sex", "outcome": "cr", "by": "sex"},
                    {"name": "os_by_sex", "outcome": "os", "by": "sex"}],
    "sensitivity": [{"kind": "unmatched", "outcome": "os"}],
}  # fmt: skip


def _run(spec: dict, data: pd.DataFrame) -> StudyResults:
    return Study(StudySpec.model_validate(spec)).run(data).results


def _write(tmp_path: Path, spec: dict, data: pd.DataFrame) -> tuple[Path, Path]:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    data_path = tmp_path / "data.csv"
    data.to_csv(data_path, index=False)
    return spec_path, data_path


@pytest.mark.r_oracle
def test_analyze_cli_end_to_end_against_r(tmp_path: Path) -> None:
    data = _dataset()
    spec_path, data_path = _write(tmp_path, SPEC, data)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["analyze", "--data", str(data_path), "--spec", str(spec_path), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text())
    StudyResults.read(out / "results.json")  # validates
    matched = pd.read_csv(out / "matched_data.csv")
    assert res["schema_version"] == 2
    assert res["provenance"]["door"] == "analyze"
    before = res["matching"]["n_before"]
    assert before["treated"] + before["control"] == len(data) - 20  # 20 rows in neither arm
    after = res["matching"]["n_after"]
    assert after["treated"] == after["control"] == len(matched) // 2
    sets = matched.groupby("set_id")["arm"].agg(lambda s: "+".join(sorted(s)))
    assert (sets == "hsct+none").all()
    assert res["matching"]["max_abs_smd_after"] < 0.1 < res["matching"]["max_abs_smd_before"]
    balance = pd.read_csv(out / "tables" / "table1_balance.csv")
    assert set(balance["covariate"]) >= {"age", "sexF", "sexM", "mrd"}
    os_m = res["outcomes"]["os"]
    # R on the written matched dataset (independent of our code):
    r = run_r(
        """
        library(survival)
        m$tr <- as.integer(m$arm == "hsct")
        f <- coxph(Surv(os_days, death) ~ tr, data = m, ties = "efron")
        fs <- coxph(Surv(os_days, death) ~ tr + strata(set_id), data = m)
        fr <- coxph(Surv(os_days, death) ~ tr, data = m, cluster = set_id)
        lr <- survdiff(Surv(os_days, death) ~ tr, data = m)
        km <- summary(survfit(Surv(os_days, death) ~ tr, data = m), times = c(365, 730))
        tab <- table(m$tr, m$cr)
        result <- list(hr = unname(exp(coef(f))), se = unname(sqrt(vcov(f)[1, 1])),
                       hr_strat = unname(exp(coef(fs))),
                       robust_se = unname(sqrt(diag(fr$var))),
                       chisq = unname(lr$chisq), surv = unname(km$surv),
                       strata = as.character(km$strata),
                       chisq_cr = unname(chisq.test(tab, correct = TRUE)$statistic))
        """,
        {"m": matched},
    )
    assert os_m["cox"]["hr"] == pytest.approx(r["hr"], rel=1e-6)
    assert os_m["cox"]["se"] == pytest.approx(r["se"], rel=1e-6)
    assert os_m["cox_stratified_sets"]["hr"] == pytest.approx(r["hr_strat"], rel=1e-6)
    assert os_m["cox_robust_sets"]["robust_se"] == pytest.approx(r["robust_se"], rel=1e-6)
    assert os_m["logrank"]["chi_square"] == pytest.approx(r["chisq"], rel=1e-6)
    # R orders strata tr=0 then tr=1, each at 365 and 730
    ours = [s["surv"] for arm in ("none", "hsct") for s in os_m["per_arm"][arm]["at_horizons"][:2]]
    np.testing.assert_allclose(ours, r["surv"], rtol=1e-9)
    beyond = os_m["per_arm"]["hsct"]["at_horizons"][2]
    assert beyond["beyond_follow_up"] and beyond["n_risk"] == 0
    cr = res["outcomes"]["cr"]
    assert cr["per_arm"]["hsct"]["n"] == after["treated"]
    assert res["sensitivity"]["unmatched_os"]["cox"]["n"] == before["treated"] + before["control"]
    assert res["comparisons"]["cr_by_sex"]["levels"] == ["F", "M"]
    assert (out / "report.html").stat().st_size > 1000


def test_analyze_not_estimable_is_reported_not_raised() -> None:
    data = _dataset(400)
    data["arm"] = np.where(data["arm"] == "none", "none", "other")  # no treated at all
    results = _run(SPEC, data)
    assert "os" not in results.outcomes
    reasons = " ".join(x.reason for x in results.not_estimable)
    assert "no patients in arm hsct" in reasons
    # perfect separation in the PS model: recorded as not estimable, outcomes skipped
    sep = _dataset(400)
    sep["flag"] = (sep["arm"] == "hsct").astype(int)
    results = _run({**SPEC, "covariates": ["age", "flag"]}, sep)
    assert "os" not in results.outcomes
    assert any("separation" in x.reason for x in results.not_estimable)


def test_analyze_bad_input_is_one_line_error(tmp_path: Path) -> None:
    data = _dataset(300)
    bad = data.assign(os_days=data["os_days"].where(data.index != 5, -1.0))
    spec_path, data_path = _write(tmp_path, SPEC, bad)
    result = CliRunner().invoke(
        main,
        ["analyze", "--data", str(data_path), "--spec", str(spec_path), "--out", str(tmp_path)],
    )
    assert isinstance(result.exception, InputDataError)
    assert "'os_days' has 1 negative value" in str(result.exception)
    with pytest.raises(InputDataError, match="'death' must be coded 0/1"):
        _run(SPEC, data.assign(death=data["death"] * 2))
    with pytest.raises(InputDataError, match="'age' has 2 missing"):
        _run(SPEC, data.assign(age=data["age"].where(~data.index.isin([100, 101]))))
    with pytest.raises(SpecError, match=r"lacks column\(s\) named in the spec: mrd"):
        _run(SPEC, data.drop(columns="mrd"))
    spec_path.write_text(yaml.safe_dump({**SPEC, "matching": {"preset": "nearest"}}))
    with pytest.raises(SpecError, match="matching.preset"):
        load_spec(spec_path)
    both = {**SPEC, "outcomes": [{**SPEC["outcomes"][0], "start": "index_date"}]}
    spec_path.write_text(yaml.safe_dump(both))
    with pytest.raises(SpecError, match=r"give either dates .* or ready columns \(time, event\)"):
        load_spec(spec_path)
