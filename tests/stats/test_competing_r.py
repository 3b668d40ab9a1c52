"""Aalen-Johansen cumulative incidence against R survival 3.5 (multi-state ``survfit``).

cmprsk is not installed here, so the oracle is ``survfit(Surv(time, factor(status)) ~ 1)``
whose standard errors for multi-state curves are the infinitesimal-jackknife ones.
Data: survival::mgus2, progression to plasma-cell malignancy (PCM) with death before
progression as the competing event (the survival package vignette's example).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tests.stats.r_oracle import run_r

from cohort_etl.errors import InputDataError
from cohort_etl.outcomes.competing import AalenJohansen

RTOL = 1e-9

R_MGUS = r"""
library(survival)
etime <- with(mgus2, ifelse(pstat == 0, futime, ptime))
event <- with(mgus2, ifelse(pstat == 0, 2 * death, 1))
ev <- factor(event, 0:2, labels = c("censor", "pcm", "death"))
f <- survfit(Surv(etime, ev) ~ 1)
s <- summary(f, times = c(12, 60, 120, 240, 400))
result <- list(d = data.frame(etime = etime, event = event), states = f$states,
  time = f$time, n.risk = f$n.risk[, 1], pstate = f$pstate, std.err = f$std.err,
  lower = f$lower, upper = f$upper,
  s = list(time = s$time, n.risk = s$n.risk[, 1], pstate = s$pstate, std.err = s$std.err,
           lower = s$lower, upper = s$upper))
"""


@pytest.fixture(scope="module")
def mgus_r() -> dict[str, Any]:
    """Competing risks on mgus2.

    R code::

        library(survival)
        etime <- with(mgus2, ifelse(pstat == 0, futime, ptime))
        event <- with(mgus2, ifelse(pstat == 0, 2 * death, 1))
        ev <- factor(event, 0:2, labels = c("censor", "pcm", "death"))
        f <- survfit(Surv(etime, ev) ~ 1)      # states "(s0)", "pcm", "death"
        s <- summary(f, times = c(12, 60, 120, 240, 400))
        # f$time, f$n.risk[, 1], f$pstate, f$std.err, f$lower, f$upper; the same from s
    """
    return run_r(R_MGUS)


def col(matrix_rows: list[list[Any]], j: int) -> np.ndarray:
    return np.array([np.nan if row[j] is None else row[j] for row in matrix_rows], dtype=float)


def close(ours: Any, theirs: Any, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(
        np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float), rtol=rtol, atol=1e-15,
        equal_nan=True,
    )  # fmt: skip


@pytest.mark.r_oracle
def test_mgus2_curves(mgus_r: dict[str, Any]) -> None:
    """Every time point: numbers at risk, event-free probability and the cumulative
    incidence of PCM and of death, with IJ standard errors and log-scale limits."""
    assert mgus_r["states"] == ["(s0)", "pcm", "death"]
    d = mgus_r["d"]
    aj = AalenJohansen().fit(d["etime"], d["event"])
    assert aj.causes_ == [1, 2]
    close(aj.timeline_, mgus_r["time"])
    close(aj.n_risk_, mgus_r["n.risk"])
    close(aj.event_free_, col(mgus_r["pstate"], 0))
    close(aj.event_free_std_err_, col(mgus_r["std.err"], 0))
    for j, cause in ((1, 1), (2, 2)):
        close(aj.cif_[cause], col(mgus_r["pstate"], j))
        close(aj.std_err_[cause], col(mgus_r["std.err"], j))
        close(aj.lower_[cause], col(mgus_r["lower"], j))
        close(aj.upper_[cause], col(mgus_r["upper"], j))


@pytest.mark.r_oracle
def test_mgus2_horizons(mgus_r: dict[str, Any]) -> None:
    """summary(f, times = c(12, 60, 120, 240, 400)): incidence, SE, limits, n.risk; the
    naive proportion beside it is a plain count over all 1384 patients (checked by
    counting here) and 1 - KM (other cause censored) exceeds the Aalen-Johansen value."""
    d = mgus_r["d"]
    s = mgus_r["s"]
    aj = AalenJohansen().fit(d["etime"], d["event"])
    horizons = [12, 60, 120, 240, 400]
    for j, cause in ((1, 1), (2, 2)):
        res = aj.incidence_at(horizons, cause=cause)
        close([r.cif for r in res], col(s["pstate"], j))
        close([r.std_err for r in res], col(s["std.err"], j))
        close([r.lower for r in res], col(s["lower"], j))
        close([r.upper for r in res], col(s["upper"], j))
        close([r.n_risk for r in res], s["n.risk"])
        counted = [((d["event"] == cause) & (d["etime"] <= h)).sum() / len(d) for h in horizons]
        close([r.naive_proportion for r in res], counted)
        assert all(r.one_minus_km >= r.cif for r in res)
    # at 400 months the naive PCM share (ignores censoring) is below the AJ estimate
    pcm = aj.incidence_at([400], cause=1)[0]
    assert pcm.naive_proportion < pcm.cif < pcm.one_minus_km


def test_bad_inputs() -> None:
    """Event codes must be 0 or positive whole numbers; lengths must match; unknown cause."""
    with pytest.raises(InputDataError, match="events: must be 0"):
        AalenJohansen().fit([1, 2, 3], [0, 1, -1])
    with pytest.raises(InputDataError, match="events: must be 0"):
        AalenJohansen().fit([1, 2, 3], [0, 1.5, 1])
    with pytest.raises(InputDataError, match="events: has 2 values"):
        AalenJohansen().fit([1, 2, 3], [0, 1])
    with pytest.raises(InputDataError, match="durations: 1 negative"):
        AalenJohansen().fit([1, -2, 3], [0, 1, 2])
    aj = AalenJohansen().fit([1, 2, 3, 4], [1, 0, 2, 1])
    with pytest.raises(InputDataError, match="cause: 3 not among"):
        aj.incidence_at([2], cause=3)
    before = aj.incidence_at([0.5], cause=1)[0]
    assert before.cif == 0.0 and before.lower is None
