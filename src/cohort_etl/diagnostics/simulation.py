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
import pandas as pd

from cohort_etl.diagnostics.calibration import fit_null
from cohort_etl.errors import NotEstimable
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


@dataclass(frozen=True)
class TargetTrialCalibrationRow:
    """One simulated study-A cohort: the target trial's HR (robust CI) before and after
    calibration with its own negative controls, and the generator's truth."""

    seed: int
    n_persons: int
    truth_log_hr: float  # truth.strategy.os_hr_study_followup
    log_hr: float
    se: float
    calibrated_log_hr: float
    calibrated_lower: float
    calibrated_upper: float
    null_mean: float
    null_sd: float
    ease: float
    negative_controls: int
    failed: tuple[str, ...]

    @property
    def covered(self) -> bool:
        return abs(self.log_hr - self.truth_log_hr) <= Z95 * self.se

    @property
    def covered_calibrated(self) -> bool:
        return self.calibrated_lower <= self.truth_log_hr <= self.calibrated_upper

    @property
    def width_ratio(self) -> float:
        return (self.calibrated_upper - self.calibrated_lower) / (2 * Z95 * self.se)


def target_trial_calibration(
    seed: int, *, bias_mean: float = 0.0, bias_sd: float = 0.0, truth_n: int = 20_000
) -> TargetTrialCalibrationRow:
    """Draw study A from the generator (seed ``seed``) with its control outcomes (the
    generator's control model, an optional injected bias), run the target trial with the
    robust variance and its diagnostics, and return the HR before / after calibration
    beside the generator's strategy truth (study follow-up)."""
    from cohort_etl.designs.section import TargetTrialSpec, run_section
    from cohort_etl.designs.simulation import draw_study_a
    from cohort_etl.diagnostics.spec import DiagnosticsSpec
    from cohort_etl.diagnostics.target_trial import evaluate_target_trial
    from cohort_etl.synthetic.controls import NEGATIVE_CONTROLS, POSITIVE_CONTROLS
    from cohort_etl.synthetic.params import SynthParams

    draw = draw_study_a(SynthParams(seed=seed), truth_n=truth_n)
    assert draw.truth.strategy is not None
    data = add_control_dates(draw.data, seed, bias_mean, bias_sd)
    spec = TargetTrialSpec(
        exposure_date="hsct_date",
        exposure_any_date="allo_hsct_any_date",
        eligibility_end_date="relapse_date",
        event_date="death_date",
        censor_date="end_of_followup_date",
        covariates=list(TT_COVARIATES),
        ci="robust",
    )
    section, _, _ = run_section(spec, data)
    diag = DiagnosticsSpec(
        outcome="os",
        negative_controls=[c.key for c in NEGATIVE_CONTROLS],
        positive_controls={c.key: c.true_hr for c in POSITIVE_CONTROLS},
    )
    d = evaluate_target_trial(diag, spec, data, section)
    if not d.calibrated or d.null is None or d.ease is None:
        raise NotEstimable(f"seed {seed}: target trial not calibrated ({d.notes})")
    c = d.calibrated[0]
    assert c.calibrated_hr and c.calibrated_lower and c.calibrated_upper
    return TargetTrialCalibrationRow(
        seed=seed,
        n_persons=section.n_eligible,
        truth_log_hr=math.log(draw.truth.strategy.os_hr_study_followup),
        log_hr=math.log(c.hr),
        se=(math.log(c.upper) - math.log(c.lower)) / (2 * Z95),
        calibrated_log_hr=math.log(c.calibrated_hr),
        calibrated_lower=math.log(c.calibrated_lower),
        calibrated_upper=math.log(c.calibrated_upper),
        null_mean=d.null.mean,
        null_sd=d.null.sd,
        ease=d.ease,
        negative_controls=d.negative_controls_estimable,
        failed=tuple(d.failed),
    )


#: the censoring-model covariates of study A's target trial
TT_COVARIATES = (
    "age_at_index",
    "prior_lines",
    "ph_positive",
    "mrd_negative_after_cart",
    "cr_after_cart",
)


def add_control_dates(
    data: pd.DataFrame, seed: int, bias_mean: float = 0.0, bias_sd: float = 0.0
) -> pd.DataFrame:
    """``data`` (study A, one row per person) with a ``control__<name>`` date per control
    outcome, drawn with the generator's control-outcome model: exposure = any allogeneic
    HSCT, follow-up to ``end_of_followup_date``, own stream ``default_rng([seed, 7])``."""
    from cohort_etl.diagnostics.spec import control_column

    rng = np.random.default_rng([seed, 7])
    index = pd.to_datetime(data["index_date"])
    end = np.asarray((pd.to_datetime(data["end_of_followup_date"]) - index).dt.days, float)
    hsct = np.asarray((pd.to_datetime(data["allo_hsct_any_date"]) - index).dt.days, float)
    events = draw_control_events(
        rng, np.where(np.isnan(hsct), np.inf, hsct), end, draw_biases(rng, bias_mean, bias_sd)
    )
    out = data.copy()
    for c in CONTROL_OUTCOMES:
        day = np.ceil(events[c.key])  # recorded on a date: the day the drawn time falls in
        out[control_column(c.key)] = index + pd.to_timedelta(day, unit="D")
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m cohort_etl.diagnostics.simulation --seeds N [--bias-mean M --bias-sd S]``:
    the target trial's calibration on generator draws, one JSON line per seed."""
    import argparse
    import json
    from dataclasses import asdict

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--bias-mean", type=float, default=0.0)
    ap.add_argument("--bias-sd", type=float, default=0.0)
    ap.add_argument("--truth-n", type=int, default=20_000)
    args = ap.parse_args(argv)
    for seed in range(args.first, args.first + args.seeds):
        row = target_trial_calibration(
            seed, bias_mean=args.bias_mean, bias_sd=args.bias_sd, truth_n=args.truth_n
        )
        print(json.dumps(asdict(row)), flush=True)


if __name__ == "__main__":
    main()
