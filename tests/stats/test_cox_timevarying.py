"""Time-varying exposure splitting, landmark data sets and the immortal-time simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.stats.r_oracle import run_r

from cohort_etl.errors import InputDataError
from cohort_etl.outcomes.cox import CoxPH
from cohort_etl.outcomes.timevarying import landmark, split_at_exposure, time_varying_cox


def _simulate_hsct(seed: int, n: int, true_hr: float) -> pd.DataFrame:
    """Death hazard 1/400 per day, multiplied by ``true_hr`` from HSCT onwards.

    60% of patients are scheduled for HSCT at an exponential time (mean 90 days); the
    transplant happens only if the patient is still alive and under follow-up then.
    Administrative censoring at 730 days. Exponential hazards make the post-HSCT residual
    time exponential with rate ``true_hr / 400``.
    """
    rng = np.random.default_rng(seed)
    base_rate = 1 / 400
    scheduled = np.where(rng.uniform(size=n) < 0.6, rng.exponential(90, n), np.inf)
    pre = rng.exponential(1 / base_rate, n)
    post = rng.exponential(1 / (base_rate * true_hr), n)
    death = np.where(pre < scheduled, pre, scheduled + post)
    censor = np.minimum(730.0, rng.uniform(200, 1500, n))
    time = np.minimum(death, censor)
    event = (death <= censor).astype(int)
    hsct_day = np.where(scheduled < time, scheduled, np.nan)
    return pd.DataFrame(
        {
            "person_id": np.arange(n),
            "time": np.round(time, 3) + 0.001,
            "event": event,
            "hsct_day": np.round(hsct_day, 3),
            "age": rng.integers(18, 70, n),
        }
    )


def test_immortal_time_bias_naive_vs_time_varying() -> None:
    """True HR 0.6. Naive 'ever transplanted' Cox is biased toward benefit (immortal time):
    its HR is below the truth and its CI excludes it; the time-varying Cox on (start, stop]
    rows recovers the truth within 2 SE."""
    true_hr = 0.6
    d = _simulate_hsct(seed=20261121, n=6000, true_hr=true_hr)
    ever = d[["hsct_day"]].notna().astype(float).rename(columns={"hsct_day": "ever_hsct"})
    naive = CoxPH().fit(d["time"], d["event"], ever)
    assert naive.hazard_ratios_[0] < true_hr
    assert naive.result_.ci_upper[0] < true_hr

    split = split_at_exposure(
        d, id_col="person_id", time_col="time", event_col="event", exposure_time_col="hsct_day"
    )
    tv = time_varying_cox(split, id_col="person_id")
    assert tv.robust_se_ is not None
    log_hr = float(tv.coef_[0])
    assert abs(log_hr - np.log(true_hr)) < 2 * float(tv.robust_se_[0])
    assert naive.coef_[0] < log_hr - 2 * float(tv.robust_se_[0])

    # Landmark at day 100: exposure status fixed at the landmark, clock restarted there.
    lm = landmark(d, 100, time_col="time", event_col="event", exposure_time_col="hsct_day")
    lm_fit = CoxPH().fit(lm["time"], lm["event"], lm[["exposed"]])
    # Those transplanted later count as unexposed: the landmark HR is diluted toward 1 but
    # has no immortal-time bias, so it is above the naive estimate.
    assert lm_fit.coef_[0] > naive.coef_[0]
    assert true_hr < lm_fit.hazard_ratios_[0] < 1.0


@pytest.mark.r_oracle
def test_split_matches_r_tmerge_and_cox() -> None:
    """R code::

    s <- tmerge(base[, c("person_id", "age")], base, id = person_id,
                death = event(time, event), exposed = tdc(hsct_day))
    f <- coxph(Surv(tstart, tstop, death) ~ exposed + age, data = s, cluster = person_id)
    """
    d = _simulate_hsct(seed=5, n=400, true_hr=0.6)
    d.loc[0, "hsct_day"] = 0.0  # transplanted at index: exposed throughout
    d.loc[1, "hsct_day"] = d.loc[1, "time"]  # on the last day: no exposed time
    r = run_r(
        r"""
library(survival)
base$hsct_day[is.na(base$hsct_day)] <- NA
s <- tmerge(base[, c("person_id", "age")], base, id = person_id,
            death = event(time, event), exposed = tdc(hsct_day))
f <- coxph(Surv(tstart, tstop, death) ~ exposed + age, data = s, cluster = person_id)
result <- list(s = s[order(s$person_id, s$tstart), ], coef = unname(coef(f)),
               se = unname(sqrt(diag(f$naive.var))), rse = unname(sqrt(diag(f$var))),
               loglik = f$loglik)
""",
        {"base": d},
    )
    split = split_at_exposure(
        d,
        id_col="person_id",
        time_col="time",
        event_col="event",
        exposure_time_col="hsct_day",
        keep=["age"],
    )
    s = r["s"].reset_index(drop=True)
    assert len(split) == len(s)
    np.testing.assert_array_equal(split["person_id"], s["person_id"])
    np.testing.assert_allclose(split["start"], s["tstart"], rtol=1e-12)
    np.testing.assert_allclose(split["stop"], s["tstop"], rtol=1e-12)
    np.testing.assert_array_equal(split["event"], s["death"])
    np.testing.assert_array_equal(split["exposed"], s["exposed"])
    fit = time_varying_cox(split, id_col="person_id", covariates=["exposed", "age"])
    np.testing.assert_allclose(fit.coef_, r["coef"], rtol=1e-6)
    np.testing.assert_allclose(fit.se_, r["se"], rtol=1e-6)
    assert fit.robust_se_ is not None
    np.testing.assert_allclose(fit.robust_se_, r["rse"], rtol=1e-6)
    np.testing.assert_allclose([fit.loglik_null_, fit.loglik_], r["loglik"], rtol=1e-6)


def test_split_rows_by_hand() -> None:
    d = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e"],
            "t": [300.0, 50.0, 80.0, 120.0, 60.0],
            "dead": [1, 1, 0, 1, 0],
            "hsct": [90.0, None, 0.0, 120.0, 200.0],
        }
    )
    out = split_at_exposure(
        d, id_col="id", time_col="t", event_col="dead", exposure_time_col="hsct"
    )
    expected = pd.DataFrame(
        {
            "id": ["a", "a", "b", "c", "d", "e"],
            "start": [0.0, 90.0, 0.0, 0.0, 0.0, 0.0],
            "stop": [90.0, 300.0, 50.0, 80.0, 120.0, 60.0],
            "dead": [0, 1, 1, 0, 1, 0],
            "exposed": [0, 1, 0, 1, 0, 0],
        }
    )
    pd.testing.assert_frame_equal(out, expected, check_dtype=False)


def test_landmark_by_hand() -> None:
    d = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "t": [300.0, 100.0, 150.0, 99.0, 400.0],
            "dead": [1, 1, 0, 0, 1],
            "hsct": [90.0, 50.0, 120.0, None, 100.0],
        }
    )
    out = landmark(d, 100, time_col="t", event_col="dead", exposure_time_col="hsct")
    assert out["id"].tolist() == [1, 3, 5]  # 2 died at the landmark, 4 censored before it
    assert out["t"].tolist() == [200.0, 50.0, 300.0]
    assert out["t_from_index"].tolist() == [300.0, 150.0, 400.0]
    assert out["exposed"].tolist() == [1, 0, 1]  # HSCT at day 120 is after the landmark


def test_helper_errors() -> None:
    d = pd.DataFrame({"id": [1, 1], "t": [5.0, 6.0], "e": [1, 0], "h": [1.0, None]})
    with pytest.raises(InputDataError, match="'id' value 1 appears more than once"):
        split_at_exposure(d, id_col="id", time_col="t", event_col="e", exposure_time_col="h")
    d["id"] = [1, 2]
    with pytest.raises(InputDataError, match="column 'hsct' is missing"):
        split_at_exposure(d, id_col="id", time_col="t", event_col="e", exposure_time_col="hsct")
    d.loc[0, "t"] = 0.0
    with pytest.raises(InputDataError, match="'t' must be > 0"):
        split_at_exposure(d, id_col="id", time_col="t", event_col="e", exposure_time_col="h")
    d.loc[0, "t"] = -1.0
    with pytest.raises(InputDataError, match="'t' has negative values"):
        landmark(d, 10, time_col="t", event_col="e", exposure_time_col="h")
    d.loc[0, "t"] = 3.0
    d.loc[0, "e"] = 3
    with pytest.raises(InputDataError, match="'e' must be 0/1"):
        landmark(d, 10, time_col="t", event_col="e", exposure_time_col="h")
