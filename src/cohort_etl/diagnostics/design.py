"""Diagnostics of a Cox-HR design and the per-outcome extras, from plain frames.

The study engine calls :func:`evaluate_cox_design` for its primary estimate and
:func:`outcome_extras` for every time-to-event outcome; neither knows where the frame
came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd

from cohort_etl.diagnostics.checks import diagnose_estimate
from cohort_etl.diagnostics.controls import calibrate_design, estimate_controls
from cohort_etl.diagnostics.results import (
    DesignDiagnostics,
    FineGrayResult,
    MatchingSensitivity,
    MatchingSensitivityRow,
    PhTerm,
    PhTest,
    RmstResult,
    design_diagnostics,
)
from cohort_etl.diagnostics.spec import DiagnosticsSpec, control_column
from cohort_etl.errors import CohortEtlError
from cohort_etl.outcomes.competing import FineGray
from cohort_etl.outcomes.cox import CoxPH, cox_zph
from cohort_etl.outcomes.rmst import rmst_compare


def ph_test(fit: CoxPH) -> PhTest:
    """``cox.zph`` (KM transform) of a fitted Cox model: per term and global."""
    z = cox_zph(fit)
    terms = [
        PhTerm(term=str(t), chisq=float(r.chisq), df=int(r.df), p=float(r.p))
        for t, r in z.table.iterrows()
        if t != "GLOBAL"
    ]
    global_p = float(z.table["p"].to_numpy()[list(z.table.index).index("GLOBAL")])
    return PhTest(transform=z.transform, terms=terms, global_p=global_p)


def outcome_extras(
    time: np.ndarray,
    event: np.ndarray,
    code: np.ndarray | None,
    treat: np.ndarray,
    *,
    horizon: float | None,
    labels: tuple[str, str],
    cox_fit: CoxPH | None,
) -> tuple[RmstResult | None, PhTest | None, FineGrayResult | None, list[str]]:
    """RMST difference at the horizon, the PH test of the arm Cox model, and (with a
    competing event coded 2 in ``code``) the Fine-Gray subdistribution HR of the arm.
    Returns the three (None when not computable) and the reasons for those left out."""
    reasons: list[str] = []
    rmst = None
    if horizon is not None:
        tau = min(horizon, *(float(time[treat == v].max()) for v in (1, 0)))
        try:
            r = rmst_compare(time, event, treat, tau)
            rmst = RmstResult(
                tau=r.tau,
                arm_1=labels[0],
                arm_0=labels[1],
                rmst_1=r.arm1.mean,
                rmst_1_se=r.arm1.se,
                rmst_0=r.arm0.mean,
                rmst_0_se=r.arm0.se,
                difference=r.difference,
                difference_lower=r.difference_lower,
                difference_upper=r.difference_upper,
                difference_p=None if math.isnan(r.difference_p) else r.difference_p,
                ratio=r.ratio,
                ratio_lower=r.ratio_lower,
                ratio_upper=r.ratio_upper,
                reason=None
                if tau == horizon
                else f"horizon {horizon:g} beyond the shorter arm's follow-up: tau {tau:g}",
            )
        except CohortEtlError as exc:
            reasons.append(f"RMST: {exc}")
    ph = None
    if cox_fit is not None:
        try:
            ph = ph_test(cox_fit)
        except (CohortEtlError, np.linalg.LinAlgError) as exc:
            reasons.append(f"PH test: {exc}")
    fg = None
    if code is not None and (code == 2).any():
        try:
            fit = FineGray(cause=1).fit(time, code, treat.reshape(-1, 1).astype(float))
            res = fit.results_[0]
            fg = FineGrayResult(
                shr=res.shr,
                lower=res.lower,
                upper=res.upper,
                p=res.p,
                coef=res.coef,
                se=res.se,
                n_events=fit.n_events_,
                n_competing=fit.n_competing_,
            )
        except (CohortEtlError, np.linalg.LinAlgError) as exc:
            reasons.append(f"Fine-Gray: {exc}")
    return rmst, ph, fg, reasons


def evaluate_cox_design(
    spec: DiagnosticsSpec,
    *,
    design: str,
    outcome: str,
    frame: pd.DataFrame,
    treat: str,
    start: pd.Series,
    end: pd.Series,
    cox_fit: CoxPH | None,
    n_events: int | None,
    max_abs_smd: float | None,
    equipoise: float | None,
    n_treated_before: int | None,
    n_treated_after: int | None,
    immortal_time: bool | None = None,
) -> DesignDiagnostics:
    """Diagnostics of a design whose estimate is the Cox HR of ``treat`` on ``frame``.

    Every control outcome the spec lists is estimated with the same rows, time zero
    (``start``) and end of follow-up (``end``) as the primary estimate; the empirical
    null, error model and EASE come from them; then every check gets its verdict.
    """
    controls: dict[str, tuple[Literal["negative", "positive"], float]] = {
        **{n: ("negative", 1.0) for n in spec.negative_controls},
        **{n: ("positive", hr) for n, hr in spec.positive_controls.items()},
    }
    estimates = estimate_controls(
        frame.reset_index(drop=True),
        treat=treat,
        start=start.reset_index(drop=True),
        end=end.reset_index(drop=True),
        controls=controls,
        columns={n: control_column(n) for n in controls},
    )
    primary: dict[str, tuple[float, float]] = {}
    hr = None
    ph_p = None
    if cox_fit is not None:
        coef, se = float(cox_fit.coef_[0]), float(cox_fit.se_[0])
        primary[outcome] = (coef, se)
        z = 1.959963984540054
        hr = (math.exp(coef), math.exp(coef - z * se), math.exp(coef + z * se))
        try:
            ph_p = ph_test(cox_fit).global_p
        except (CohortEtlError, np.linalg.LinAlgError):
            ph_p = None
    calibration = calibrate_design(estimates, primary) if controls else None
    t = frame[treat].to_numpy()
    checks = diagnose_estimate(
        f"{design}: {outcome}",
        thresholds=spec.thresholds,
        max_abs_smd=max_abs_smd,
        equipoise=equipoise,
        n_target=int((t == 1).sum()),
        n_comparator=int((t == 0).sum()),
        n_events=n_events,
        ease=None if calibration is None else calibration.ease,
        ph_global_p=ph_p,
        n_treated_before_matching=n_treated_before,
        n_treated_matched=n_treated_after,
        immortal_time=spec.immortal_time if immortal_time is None else immortal_time,
    )
    out = design_diagnostics(design, outcome, checks, calibration, hr)
    out.control_variance = "model-based Cox SE (as the primary estimate)"
    out.estimate_variance = "model-based Cox SE"
    out.estimate_se = primary[outcome][1] if outcome in primary else None
    return out


def matching_sensitivity(
    outcome: str,
    grid: list[tuple[str, int, float | None]],
    run: Callable[[str, int, float | None], tuple[pd.DataFrame, CoxPH]],
    treat: str,
) -> MatchingSensitivity:
    """The primary HR under every (preset, seed, caliper) of ``grid``.

    ``run(preset, seed, caliper)`` rematches and refits, returning the matched rows and
    the Cox fit of the primary outcome (or raises a :class:`CohortEtlError`, recorded as
    the row's reason). The range of the estimable HRs is reported beside the rows.
    """
    rows = []
    for preset, seed, caliper in grid:
        try:
            matched, fit = run(preset, seed, caliper)
            res = fit.result_
            t = matched[treat].to_numpy()
            rows.append(
                MatchingSensitivityRow(
                    preset=preset,
                    seed=seed,
                    caliper=caliper,
                    n_treated=int((t == 1).sum()),
                    n_control=int((t == 0).sum()),
                    hr=float(res.hazard_ratio[0]),
                    lower=float(res.ci_lower[0]),
                    upper=float(res.ci_upper[0]),
                )
            )
        except (CohortEtlError, np.linalg.LinAlgError) as exc:
            rows.append(
                MatchingSensitivityRow(preset=preset, seed=seed, caliper=caliper, reason=str(exc))
            )
    hrs = [r.hr for r in rows if r.hr is not None]
    return MatchingSensitivity(
        outcome=outcome,
        rows=rows,
        hr_min=min(hrs) if hrs else None,
        hr_max=max(hrs) if hrs else None,
    )
