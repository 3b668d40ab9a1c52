"""The weighted Kaplan-Meier and weighted Cox of the target-trial emulation against R.

Same clone rows ``(start, stop]``, same inverse-probability weights: R ``survfit`` gives
the per-strategy survival curves and ``coxph(..., cluster = id)`` the hazard ratio and its
person-clustered robust variance.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.designs.conftest import COVARIATES
from tests.stats.r_oracle import run_r

from cohort_etl.designs.simulation import StudyADraw
from cohort_etl.designs.target_trial import (
    TargetTrial,
    TargetTrialOptions,
    clone_data_from_frame,
    run_target_trial,
)
from cohort_etl.outcomes.cox import CoxPH

pytestmark = pytest.mark.r_oracle


@pytest.mark.parametrize("stabilized", [False, True])
def test_weighted_km_and_cox_match_r(draw7: StudyADraw, stabilized: bool) -> None:
    data = clone_data_from_frame(draw7.data, covariates=COVARIATES)
    opt = TargetTrialOptions(stabilized=stabilized, ci="robust")
    tt = TargetTrial(data, opt)
    point, coefs = tt.estimate()
    w = tt.weights(coefs=coefs)
    frame = tt.rows.frame(data.person)
    frame["weight"] = w
    frame = frame[frame["weight"] > 0]
    out = run_r(
        """
        library(survival)
        fit <- coxph(Surv(start, stop, event) ~ arm, data = d, weights = weight,
                     cluster = id, ties = "efron")
        km0 <- survfit(Surv(start, stop, event) ~ 1, data = d[d$arm == 0, ],
                       weights = weight)
        km1 <- survfit(Surv(start, stop, event) ~ 1, data = d[d$arm == 1, ],
                       weights = weight)
        h <- c(365, 1826)
        result <- list(
          coef = unname(coef(fit)), robust_se = unname(sqrt(diag(vcov(fit)))),
          s0 = summary(km0, times = h)$surv, s1 = summary(km1, times = h)$surv,
          t0 = km0$time, surv0 = km0$surv, t1 = km1$time, surv1 = km1$surv,
          rmst0 = unname(summary(km0, rmean = 1826)$table["rmean"]),
          rmst1 = unname(summary(km1, rmean = 1826)$table["rmean"]))
        """,
        {"d": frame},
    )
    assert point.log_hr == pytest.approx(out["coef"], abs=1e-8)
    np.testing.assert_allclose(point.survival[0], out["s0"], atol=1e-8)
    np.testing.assert_allclose(point.survival[1], out["s1"], atol=1e-8)
    assert point.rmst[0] == pytest.approx(out["rmst0"], abs=1e-6)
    assert point.rmst[1] == pytest.approx(out["rmst1"], abs=1e-6)
    # whole curves: our step function at R's times
    from cohort_etl.designs.target_trial import _curves, step_at

    curves = _curves(tt, w)
    for a, key in ((0, "never"), (1, "within_grace")):
        t = np.asarray(out[f"t{a}"], dtype=float)
        s = np.asarray(out[f"surv{a}"], dtype=float)
        c = curves[key]
        np.testing.assert_allclose(
            step_at(np.asarray(c["time"]), np.asarray(c["survival"]), t), s, atol=1e-8
        )
    # robust variance option: person-clustered sandwich of the weighted Cox
    res = run_target_trial(data, opt)
    assert np.log(res.hr) == pytest.approx(out["coef"], abs=1e-8)
    assert res.log_hr_se == pytest.approx(out["robust_se"], abs=1e-8)


def test_fast_efron_cox_equals_the_general_cox(draw7: StudyADraw) -> None:
    """The bootstrap's aggregated Efron Cox = CoxPH on the rows (itself checked against R)."""
    data = clone_data_from_frame(draw7.data, covariates=COVARIATES)
    tt = TargetTrial(data, TargetTrialOptions(truncate_percentile=95))
    rng = np.random.default_rng(1)
    f = rng.multinomial(data.n, np.full(data.n, 1 / data.n)).astype(float)
    rep, coefs = tt.estimate(f)
    w = tt.weights(f, coefs) * f[tt.rows.person]
    frame = tt.rows.frame()
    keep = w > 0
    # a frequency weight f equals f copies of the row (Efron counts each copy)
    reps = np.rint(f[tt.rows.person][keep]).astype(int)
    rows = frame[keep].loc[np.repeat(frame.index[keep], reps)]
    wr = np.repeat(w[keep] / f[tt.rows.person][keep], reps)
    fit = CoxPH(robust=False).fit(
        rows["stop"], rows["event"], rows[["arm"]], weights=wr, entry=rows["start"]
    )
    assert rep.log_hr == pytest.approx(float(fit.coef_[0]), abs=1e-9)
