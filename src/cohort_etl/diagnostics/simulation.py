"""Does empirical calibration work? A simulation with known truth.

Each replicate draws a cohort (exposed at time zero with probability 1/2, follow-up
``min(Exp(0.25 / year), 5 years)``) and, with the synthetic generator's control-outcome
model (:mod:`cohort_etl.synthetic.controls`), the events of every negative and positive
control, with an injected per-outcome systematic error ``b_k ~ N(bias_mean, bias_sd^2)``.
Every control is estimated with the same Cox model (HR of exposure); the empirical null is
fitted to the negative controls and the positive controls' intervals are calibrated with
the null-implied systematic error model (CohortMethod's choice with fewer than five
positive controls per true effect). Coverage is the share of positive-control 95%
intervals that contain the true HR, before and after calibration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cohort_etl.diagnostics.calibration import fit_null
from cohort_etl.outcomes.cox import CoxPH
from cohort_etl.synthetic.controls import (
    CONTROL_OUTCOMES,
    DAYS_PER_YEAR,
    draw_biases,
    draw_control_events,
)

Z95 = 1.959963984540054


@dataclass(frozen=True)
class CoverageResult:
    """Coverage of the positive controls' true HR over all replicates."""

    replicates: int
    intervals: int
    coverage_uncalibrated: float
    coverage_calibrated: float
    mean_null_mean: float
    mean_null_sd: float
    median_width_ratio: float  # calibrated / uncalibrated CI width (log scale)
    mean_abs_shift: float  # mean |calibrated - uncalibrated point estimate| (log HR)


def _one_replicate(
    rng: np.random.Generator, n_persons: int, bias_mean: float, bias_sd: float
) -> tuple[list[tuple[float, float, float, float, float, float]], float, float]:
    exposed = rng.random(n_persons) < 0.5
    follow = np.minimum(rng.exponential(DAYS_PER_YEAR / 0.25, n_persons), 5 * DAYS_PER_YEAR)
    exposure_day = np.where(exposed, 0.0, np.inf)
    biases = draw_biases(rng, bias_mean, bias_sd)
    events = draw_control_events(rng, exposure_day, follow, biases)
    x = exposed.astype(float).reshape(-1, 1)
    est = {}
    for c in CONTROL_OUTCOMES:
        t = events[c.key]
        happened = ~np.isnan(t)
        fit = CoxPH().fit(np.where(happened, t, follow), happened.astype(float), x)
        est[c.key] = (float(fit.coef_[0]), float(fit.se_[0]))
    neg = [est[c.key] for c in CONTROL_OUTCOMES if c.kind == "negative"]
    null = fit_null([e[0] for e in neg], [e[1] for e in neg])
    model = null.to_error_model()
    rows = []
    for c in CONTROL_OUTCOMES:
        if c.kind != "positive":
            continue
        y, se = est[c.key]
        cal = model.calibrate_ci(y, se)
        rows.append((math.log(c.true_hr), y, se, cal.log_rr, cal.log_lower, cal.log_upper))
    return rows, null.mean, null.sd


def calibration_coverage(
    seed: int,
    replicates: int,
    *,
    n_persons: int = 1500,
    bias_mean: float = 0.0,
    bias_sd: float = 0.0,
) -> CoverageResult:
    """Run ``replicates`` simulated studies and measure positive-control CI coverage."""
    rng = np.random.default_rng([seed, 11])
    rows = []
    mus, taus = [], []
    for _ in range(replicates):
        r, mu, tau = _one_replicate(rng, n_persons, bias_mean, bias_sd)
        rows += r
        mus.append(mu)
        taus.append(tau)
    a = np.array(rows)
    truth, y, se, cy, clo, chi = (a[:, j] for j in range(6))
    uncal = (y - Z95 * se <= truth) & (truth <= y + Z95 * se)
    cal = (clo <= truth) & (truth <= chi)
    return CoverageResult(
        replicates=replicates,
        intervals=len(rows),
        coverage_uncalibrated=float(uncal.mean()),
        coverage_calibrated=float(cal.mean()),
        mean_null_mean=float(np.mean(mus)),
        mean_null_sd=float(np.mean(taus)),
        median_width_ratio=float(np.median((chi - clo) / (2 * Z95 * se))),
        mean_abs_shift=float(np.mean(np.abs(cy - y))),
    )
