"""The control outcomes' cheap variance for the target-trial design, against R: the
person-clustered robust (sandwich) SE of the weighted Cox model on the clone rows
(``coxph(..., weights = w, cluster = id)``), its ``cox.zph`` PH test, and the weighted
balance after the grace period, on fixed inputs (a generator draw of study A with the
generator's control outcomes)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.stats.r_oracle import run_r

from cohort_etl.designs.section import TargetTrialSpec, clone_data
from cohort_etl.designs.simulation import draw_study_a
from cohort_etl.designs.target_trial import (
    TargetTrial,
    TargetTrialOptions,
    log_hr_robust,
    robust_cox_fit,
    run_target_trial,
)
from cohort_etl.diagnostics.design import ph_test
from cohort_etl.diagnostics.simulation import TT_COVARIATES, add_control_dates
from cohort_etl.diagnostics.spec import control_column
from cohort_etl.diagnostics.target_trial import weighted_balance
from cohort_etl.synthetic.params import SynthParams

pytestmark = pytest.mark.r_oracle

SPEC = TargetTrialSpec(
    exposure_date="hsct_date",
    exposure_any_date="allo_hsct_any_date",
    eligibility_end_date="relapse_date",
    event_date="death_date",
    censor_date="end_of_followup_date",
    covariates=list(TT_COVARIATES),
)


@pytest.fixture(scope="module")
def data():
    return add_control_dates(draw_study_a(SynthParams(seed=5), truth_n=1000).data, 5)


@pytest.mark.parametrize("event", ["nc_ingrowing_nail", "pc_dental_caries_hr2", None])
def test_robust_variance_ph_test_and_balance_match_r(data, event: str | None) -> None:
    clones = clone_data(SPEC, data, control_column(event) if event else None)
    opt = TargetTrialOptions(ci="robust")
    tt = TargetTrial(clones, opt)
    w = tt.weights(coefs=tt.model_coefficients(np.ones(clones.n)))
    frame = tt.rows.frame(clones.person)
    frame["weight"] = w
    for j, name in enumerate(clones.covariate_names):
        frame[name] = clones.covariates[tt.rows.person, j]
    # artificially censored before day 181 (from the person's dates, per strategy)
    e_any = np.where(np.isnan(clones.exposure_any), np.inf, clones.exposure_any)
    e_in = np.where(np.isnan(clones.exposure) | (clones.exposure > 180), np.inf, clones.exposure)
    relapse = np.where(np.isnan(clones.relapse), np.inf, clones.relapse)
    art = np.where(
        frame["arm"] == 0,
        ((e_any <= clones.time) & (e_any < 181))[tt.rows.person],
        (np.isinf(e_in) & (clones.time > 180) & (relapse > 180))[tt.rows.person],
    )
    frame["art"] = art.astype(int)
    rows = frame[frame["weight"] > 0]
    covs = ", ".join(f'"{c}"' for c in TT_COVARIATES)
    out = run_r(
        f"""
        library(survival)
        fit <- coxph(Surv(start, stop, event) ~ arm, data = d, weights = weight,
                     cluster = id, ties = "efron")
        z <- cox.zph(fit, transform = "km")
        # each strategy's clones not artificially censored before day 181, with the
        # weight of their last row starting before it (deaths included)
        at <- a[a$start < 181, ]
        at <- at[order(at$arm, at$id, at$start), ]
        at <- at[!duplicated(at[, c("arm", "id")], fromLast = TRUE) & at$art == 0, ]
        smd <- sapply(c({covs}), function(v) {{
          m <- sapply(0:1, function(a) weighted.mean(at[at$arm == a, v], at$weight[at$arm == a]))
          s <- sapply(0:1, function(a) {{
            x <- at[at$arm == a, v]; ww <- at$weight[at$arm == a]
            sum(ww * (x - m[a + 1])^2) / sum(ww)
          }})
          abs(m[2] - m[1]) / sqrt(mean(s))
        }})
        result <- list(coef = unname(coef(fit)), robust_se = unname(sqrt(diag(vcov(fit)))),
                       naive_se = unname(sqrt(diag(fit$naive.var))),
                       zph_p = unname(z$table["GLOBAL", "p"]), smd = as.list(smd))
        """,
        {"d": rows, "a": frame},
    )
    b, se, _ = log_hr_robust(clones, opt)
    assert b == pytest.approx(out["coef"], abs=1e-6)
    assert se == pytest.approx(out["robust_se"], abs=1e-6)
    fit = robust_cox_fit(tt, w)
    assert float(fit.se_[0]) == pytest.approx(out["naive_se"], abs=1e-6)
    assert ph_test(fit).global_p == pytest.approx(out["zph_p"], abs=1e-6)
    if event is None:
        # rows whose strategy weight reached 0 are left out (R refuses them); the
        # emulation's own robust option gives the same numbers
        assert (frame["weight"] == 0).any()
        res = run_target_trial(clones, opt)
        assert np.log(res.hr) == pytest.approx(out["coef"], abs=1e-6)
        assert res.log_hr_se == pytest.approx(out["robust_se"], abs=1e-6)
    smd = weighted_balance(tt, w, 181.0)
    for name in TT_COVARIATES:
        assert smd[name] == pytest.approx(out["smd"][name], abs=1e-6)
