"""Diagnostics of the target-trial (clone-censor-weight) estimate.

The same checks, controls and calibration as the published design get
(:func:`~cohort_etl.diagnostics.diagnose_estimate`,
:func:`~cohort_etl.diagnostics.controls.calibrate_design`), computed for the emulation:

* **Controls.** Every negative and positive control outcome of the spec is run through
  the whole emulation (same eligible persons, clones, grace period, censoring models and
  weights refitted on that outcome's follow-up; only the event differs: the control's
  first occurrence, censored at the end of follow-up, death included). Variance: the
  person-clustered robust (sandwich) SE of the weighted Cox model, weights treated as
  known (:func:`cohort_etl.designs.target_trial.log_hr_robust`); a bootstrap per control
  would cost 36 x 500 refits. The headline keeps its own (bootstrap) SE, which is the one
  calibrated.
* **Calibration.** Empirical null from the negative controls; the systematic error model
  from the null alone: the positive controls' true HR is the hazard ratio in transplanted
  person-time, not the strategy contrast the emulation estimates.
* **Checks.** Balance: max |SMD| of the censoring-model covariates between the
  strategies' weighted pseudo-populations the day after the grace period ends (every
  artificial censoring done; deaths before it included; :func:`weighted_balance`). Equipoise and share matched: not applicable (no propensity score, no
  matching: every eligible person enters both strategies). MDRR: persons per strategy
  and clone events. EASE from the controls. PH: ``cox.zph`` of the weighted Cox model.
  Immortal time: the emulation's own flag.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Literal

import numpy as np
import pandas as pd

from cohort_etl.designs.section import TargetTrialSection, TargetTrialSpec, clone_data, eligible
from cohort_etl.designs.target_trial import (
    CloneData,
    FloatArray,
    TargetTrial,
    TargetTrialOptions,
    log_hr_robust,
    robust_cox_fit,
)
from cohort_etl.diagnostics.checks import diagnose_estimate
from cohort_etl.diagnostics.controls import ControlEstimate, calibrate_design
from cohort_etl.diagnostics.design import ph_test
from cohort_etl.diagnostics.results import DesignDiagnostics, design_diagnostics
from cohort_etl.diagnostics.spec import DiagnosticsSpec, control_column
from cohort_etl.errors import CohortEtlError, InputDataError, NotEstimable

DESIGN = "target trial (clone-censor-weight)"

CONTROL_VARIANCE = (
    "person-clustered robust (sandwich) SE of the weighted Cox model, weights treated as "
    "known (coxph(..., weights, cluster = id)); censoring models refitted per control"
)


def weighted_balance(tt: TargetTrial, w: FloatArray, day: float) -> dict[str, float]:
    """|SMD| of each censoring-model covariate between the strategies' weighted
    pseudo-populations on ``day``.

    Each strategy keeps every clone not artificially censored before ``day`` (the
    *never* clone censored at an exposure, the *within-grace* clone censored at the end
    of the grace period), with its weight on ``day`` or, when it died or left follow-up
    earlier, at its last row. Deaths stay in: selecting survivors would compare the
    strategies' effects, not the weighting. If the censoring models are right, both
    pseudo-populations reproduce the eligible cohort and the SMDs are near 0 (at time
    zero they are 0: the clones are identical). SMD: ``(m1 - m0) / sqrt((v1 + v0) / 2)``
    with weighted means and variances.
    """
    r, d = tt.rows, tt.data
    art0 = np.isfinite(tt.e_any) & (tt.e_any <= d.time) & (tt.e_any < day)
    art1 = tt.censored1 & (tt.opt.grace_days < day)
    moments: list[tuple[FloatArray, FloatArray]] = []
    for arm, censored in ((0, art0), (1, art1)):
        idx = np.flatnonzero((r.arm == arm) & (r.start < day))
        person = r.person[idx]
        last = idx[np.r_[person[1:] != person[:-1], True]]  # rows run per person, in time
        keep = last[~censored[r.person[last]]]
        ww = w[keep]
        if ww.sum() <= 0:
            return {}
        x = d.covariates[r.person[keep]]
        mu = (ww @ x) / ww.sum()
        moments.append((mu, (ww @ (x - mu) ** 2) / ww.sum()))
    (m0, v0), (m1, v1) = moments
    sd = np.sqrt((v0 + v1) / 2)
    smd = np.where(sd > 0, np.abs(m1 - m0) / np.where(sd > 0, sd, 1.0), 0.0)
    return {name: float(v) for name, v in zip(d.covariate_names, smd, strict=True)}


def control_estimates(
    spec: TargetTrialSpec,
    data: pd.DataFrame,
    controls: dict[str, tuple[Literal["negative", "positive"], float]],
    options: TargetTrialOptions,
) -> list[ControlEstimate]:
    """Each control outcome through the emulation, with the robust SE."""
    out = []
    for name, (kind, true_hr) in controls.items():
        col = control_column(name)
        if col not in data.columns:
            out.append(ControlEstimate(name, kind, true_hr, math.nan, math.nan, 0, "no data"))
            continue
        try:
            clones = clone_data(spec, data, event_date=col)
        except InputDataError as exc:
            out.append(ControlEstimate(name, kind, true_hr, math.nan, math.nan, 0, str(exc)))
            continue
        n_events = int(clones.event.sum())
        if n_events == 0:
            out.append(ControlEstimate(name, kind, true_hr, math.nan, math.nan, 0, "no events"))
            continue
        try:
            b, se, _ = log_hr_robust(clones, options)
            out.append(ControlEstimate(name, kind, true_hr, b, se, n_events))
        except (CohortEtlError, np.linalg.LinAlgError) as exc:
            out.append(ControlEstimate(name, kind, true_hr, math.nan, math.nan, n_events, str(exc)))
    return out


def evaluate_target_trial(
    diag: DiagnosticsSpec,
    spec: TargetTrialSpec,
    frame: pd.DataFrame,
    section: TargetTrialSection,
) -> DesignDiagnostics:
    """Diagnostics of the emulation's hazard ratio (``section``: its results, computed by
    :func:`cohort_etl.designs.section.run_section` on the same ``frame``)."""
    outcome = diag.outcome or "os"
    data, _ = eligible(spec, frame)
    options = replace(spec.options(), ci="robust")
    clones: CloneData = clone_data(spec, data)
    tt = TargetTrial(clones, options)
    w = tt.weights(coefs=tt.model_coefficients(np.ones(clones.n)))
    notes: list[str] = []
    try:
        fit = robust_cox_fit(tt, w)
    except np.linalg.LinAlgError as exc:
        raise NotEstimable(f"target trial diagnostics: weighted Cox model: {exc}") from exc
    assert fit.robust_se_ is not None
    robust_se = float(fit.robust_se_[0])
    ph_p = None
    try:
        ph_p = ph_test(fit).global_p
    except (CohortEtlError, np.linalg.LinAlgError) as exc:
        notes.append(f"PH test: {exc}")
    balance_day = float(spec.grace_days) + 1.0
    smd = weighted_balance(tt, w, balance_day)
    controls: dict[str, tuple[Literal["negative", "positive"], float]] = {
        **{n: ("negative", 1.0) for n in diag.negative_controls},
        **{n: ("positive", hr) for n, hr in diag.positive_controls.items()},
    }
    estimates = control_estimates(spec, data, controls, options)
    primary: dict[str, tuple[float, float]] = {}
    hr = None
    se = section.log_hr_se
    if section.hr is not None and se is not None and se > 0:
        primary[outcome] = (math.log(section.hr), se)
        if section.bootstrap_replicates:
            notes.append(
                "calibrated on the normal scale: log HR and its bootstrap SE (the headline "
                "interval is the bootstrap percentile interval)"
            )
    if section.hr is not None and section.hr_lower is not None and section.hr_upper is not None:
        hr = (section.hr, section.hr_lower, section.hr_upper)
    calibration = (
        calibrate_design(estimates, primary, spec.conf_level, positive_in_error_model=False)
        if controls
        else None
    )
    counts = section.counts
    n_events = counts.get("events_never", 0) + counts.get("events_within_grace", 0)
    checks = diagnose_estimate(
        f"{DESIGN}: {outcome}",
        thresholds=diag.thresholds,
        max_abs_smd=max(smd.values()) if smd else None,
        n_target=clones.n,
        n_comparator=clones.n,
        n_events=n_events,
        ease=None if calibration is None else calibration.ease,
        ph_global_p=ph_p,
        immortal_time=section.immortal_time["target_trial"].flagged,
        not_applicable={
            "equipoise": "no propensity score: both strategies are assigned to every "
            "eligible person (clones)",
            "share_treated_matched": "no matching: every eligible person enters both strategies",
        },
    )
    out = design_diagnostics(DESIGN, outcome, checks, calibration, hr)
    for c in out.checks:
        if c.name == "balance_max_abs_smd" and smd:
            worst = max(smd, key=lambda k: smd[k])
            c.detail = (
                f"weighted pseudo-populations of the strategies on day {balance_day:g} "
                f"(after the grace period, deaths included); largest: {worst}"
            )
        elif c.name == "mdrr":
            c.detail = f"{clones.n} persons per strategy, {n_events} clone events"
    out.control_variance = CONTROL_VARIANCE
    out.estimate_se = se
    out.estimate_variance = section.ci_method
    out.estimate_se_control_variance = robust_se
    out.notes = notes + out.notes
    return out
