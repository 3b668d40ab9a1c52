"""Typed diagnostics results (sections of ``results.json``) and their builders.

:class:`DesignDiagnostics` is what one design's estimate gets: pass/fail verdicts, the
empirical calibration from its control outcomes, the E-value. The study engine attaches
one per design under ``results.diagnostics.designs``; another design (the target-trial
emulation) builds its own with :func:`design_diagnostics` and adds it beside.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cohort_etl.diagnostics.checks import (
    DiagnosticThresholds,
    EstimateDiagnostics,
    e_value_hr,
)
from cohort_etl.diagnostics.controls import DesignCalibration
from cohort_etl.errors import InputDataError

Num = float | None


def _num(v: Any) -> Num:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DiagnosticCheck(_Result):
    """One diagnostic: value, threshold, how they must compare to pass, verdict."""

    name: str
    value: Num
    threshold: Num
    comparison: str
    verdict: Literal["pass", "fail", "not evaluated"]
    detail: str = ""


class NullFit(_Result):
    """Empirical null N(mean, sd^2) of the log HR's systematic error."""

    mean: float
    sd: float
    log_likelihood: float
    n_controls: int
    method: str = "maximum likelihood (EmpiricalCalibration fitNull)"


class ErrorModelFit(_Result):
    """Systematic error model: estimate ~ N(a + b x, se^2 + (c + d |x|)^2)."""

    mean_intercept: float
    mean_slope: float
    sd_intercept: float
    sd_slope: float
    source: str


class ControlResult(_Result):
    """A control outcome's estimate under the design."""

    name: str
    kind: Literal["negative", "positive"]
    true_hr: float
    n_events: int
    log_rr: Num
    se_log_rr: Num
    hr: Num
    lower: Num
    upper: Num
    p: Num
    calibrated_p: Num
    note: str = ""


class CalibratedHR(_Result):
    """An estimate before and after empirical calibration."""

    name: str
    hr: float
    lower: float
    upper: float
    p: float
    calibrated_hr: Num
    calibrated_lower: Num
    calibrated_upper: Num
    calibrated_p: Num


class EValueResult(_Result):
    """E-value of the HR and of its confidence limit closest to 1 (VanderWeele-Ding)."""

    point: float
    limit: float
    rare_outcome: bool


class DesignDiagnostics(_Result):
    """Diagnostics of one design's estimate."""

    design: str
    outcome: str
    verdict: Literal["pass", "fail", "not evaluated"]
    failed: list[str] = Field(default_factory=list)
    checks: list[DiagnosticCheck] = Field(default_factory=list)
    negative_controls: int = 0
    negative_controls_estimable: int = 0
    positive_controls: int = 0
    positive_controls_estimable: int = 0
    null: NullFit | None = None
    error_model: ErrorModelFit | None = None
    ease: Num = None
    calibrated: list[CalibratedHR] = Field(default_factory=list)
    controls: list[ControlResult] = Field(default_factory=list)
    e_value: EValueResult | None = None
    #: how the controls' standard errors were computed (docs/diagnostics.md)
    control_variance: str | None = None
    #: SE of the primary log HR used for calibration, and how it was computed
    estimate_se: Num = None
    estimate_variance: str | None = None
    #: the primary log HR's SE under the controls' variance (to compare the two)
    estimate_se_control_variance: Num = None
    notes: list[str] = Field(default_factory=list)


class MatchingSensitivityRow(_Result):
    """The primary HR with matching rerun under one preset / seed / caliper."""

    preset: str
    seed: int
    caliper: Num
    n_treated: int | None = None
    n_control: int | None = None
    hr: Num = None
    lower: Num = None
    upper: Num = None
    reason: str | None = None


class MatchingSensitivity(_Result):
    """How much the primary HR moves with the matching seed, caliper and preset."""

    outcome: str
    rows: list[MatchingSensitivityRow] = Field(default_factory=list)
    hr_min: Num = None
    hr_max: Num = None


class DiagnosticsResult(_Result):
    """``results.diagnostics``: thresholds used, one entry per design, sensitivity."""

    thresholds: dict[str, float]
    designs: dict[str, DesignDiagnostics] = Field(default_factory=dict)
    matching_sensitivity: MatchingSensitivity | None = None


class RmstResult(_Result):
    """RMST per arm up to ``tau`` and the difference / ratio (treated vs control)."""

    tau: float
    arm_1: str
    arm_0: str
    rmst_1: float
    rmst_1_se: float
    rmst_0: float
    rmst_0_se: float
    difference: float
    difference_lower: float
    difference_upper: float
    difference_p: Num
    ratio: float
    ratio_lower: float
    ratio_upper: float
    reason: str | None = None


class PhTerm(_Result):
    term: str
    chisq: float
    df: int
    p: float


class PhTest(_Result):
    """Proportional-hazards test of the arm Cox model (survival 3.x ``cox.zph``)."""

    transform: str
    terms: list[PhTerm]
    global_p: float


class FineGrayResult(_Result):
    """Fine-Gray subdistribution HR of the arm for the event with the competing event
    (``cmprsk::crr``), beside the cause-specific HR of the Cox model."""

    shr: float
    lower: float
    upper: float
    p: float
    coef: float
    se: float
    n_events: int
    n_competing: int


# -- builders --------------------------------------------------------------------------
def design_diagnostics(
    design: str,
    outcome: str,
    checks: EstimateDiagnostics,
    calibration: DesignCalibration | None = None,
    hr: tuple[float, float, float] | None = None,
) -> DesignDiagnostics:
    """Assemble one design's diagnostics section.

    This is the function another design (e.g. the target-trial emulation) calls to get the
    same diagnostics as the published design: pass ``checks`` from
    :func:`cohort_etl.diagnostics.diagnose_estimate`, ``calibration`` from
    :func:`cohort_etl.diagnostics.controls.calibrate_design` on its own control estimates
    (:func:`~cohort_etl.diagnostics.controls.estimate_controls` for a Cox design), and
    ``hr = (hr, lower, upper)`` for the E-value; then put the result in
    ``results.diagnostics.designs[design]``.
    """
    out = DesignDiagnostics(
        design=design,
        outcome=outcome,
        verdict=checks.verdict,
        failed=checks.failed,
        checks=[
            DiagnosticCheck(
                name=d.name,
                value=_num(d.value),
                threshold=_num(d.threshold),
                comparison=d.comparison,
                verdict=d.verdict,
                detail=d.detail,
            )
            for d in checks.diagnostics
        ],
    )
    if hr is not None and all(math.isfinite(v) and v > 0 for v in hr):
        try:
            ev = e_value_hr(hr[0], hr[1], hr[2])
            out.e_value = EValueResult(point=ev.point, limit=ev.limit, rare_outcome=True)
        except InputDataError as exc:
            out.notes.append(f"E-value: {exc}")
    if calibration is None:
        return out
    summary = calibration.to_dict()
    out.negative_controls = summary["negative_controls"]
    out.negative_controls_estimable = summary["negative_controls_estimable"]
    out.positive_controls = summary["positive_controls"]
    out.positive_controls_estimable = summary["positive_controls_estimable"]
    if calibration.null is not None:
        n = calibration.null
        out.null = NullFit(
            mean=n.mean, sd=n.sd, log_likelihood=n.log_likelihood, n_controls=n.n_controls
        )
    if calibration.error_model is not None:
        m = calibration.error_model
        out.error_model = ErrorModelFit(
            mean_intercept=m.mean_intercept,
            mean_slope=m.mean_slope,
            sd_intercept=m.sd_intercept,
            sd_slope=m.sd_slope,
            source=m.source,
        )
    out.ease = _num(calibration.ease)
    out.calibrated = [CalibratedHR.model_validate(c) for c in summary["calibrated"]]
    out.controls = [ControlResult.model_validate(c) for c in summary["controls"]]
    out.notes += list(calibration.notes)
    return out


def thresholds_dict(th: DiagnosticThresholds) -> dict[str, float]:
    return {k: float(v) for k, v in th.model_dump().items()}
