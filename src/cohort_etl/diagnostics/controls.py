"""Negative / positive control estimates of one design, and the calibration they give.

The engine estimates every control outcome with the same design as the primary estimate
(same persons, arms, matching, time zero and censoring; only the event differs), collects
them as :class:`ControlEstimate` rows and calls :func:`calibrate_design`. The result holds
the empirical null, EASE, the calibrated HR / CI / p of the design's primary estimate(s)
and every control's estimate, ready for ``results.json``.

With fewer than :data:`~cohort_etl.diagnostics.calibration.MIN_NEGATIVE_CONTROLS`
usable negative controls nothing is calibrated (as CohortMethod). The systematic error
model comes from negative and positive controls together when at least five positive
controls are usable (``fitSystematicErrorModel``), otherwise from the null alone
(``convertNullToErrorModel``), which is CohortMethod's rule.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from cohort_etl.diagnostics.calibration import (
    MIN_NEGATIVE_CONTROLS,
    EmpiricalNull,
    ErrorModel,
    fit_error_model,
    fit_null,
    traditional_p,
)
from cohort_etl.errors import InputDataError, NotEstimable


@dataclass(frozen=True)
class ControlEstimate:
    """One control outcome's estimate under a design (NaN when not estimable)."""

    name: str
    kind: Literal["negative", "positive"]
    true_hr: float
    log_rr: float
    se_log_rr: float
    n_events: int
    note: str = ""

    @property
    def usable(self) -> bool:
        return math.isfinite(self.log_rr) and math.isfinite(self.se_log_rr) and self.se_log_rr > 0


@dataclass(frozen=True)
class CalibratedResult:
    """An estimate before and after calibration."""

    name: str
    hr: float
    lower: float
    upper: float
    p: float
    calibrated_hr: float
    calibrated_lower: float
    calibrated_upper: float
    calibrated_p: float


@dataclass(frozen=True)
class DesignCalibration:
    """Empirical calibration of one design."""

    null: EmpiricalNull | None
    error_model: ErrorModel | None
    ease: float | None
    controls: tuple[ControlEstimate, ...]
    calibrated: tuple[CalibratedResult, ...]
    notes: tuple[str, ...] = field(default=())

    def control_frame(self) -> pd.DataFrame:
        """One row per control: estimate, CI, traditional and calibrated p."""
        rows = []
        for c in self.controls:
            ok = c.usable
            hr = math.exp(c.log_rr) if ok else math.nan
            lo = math.exp(c.log_rr - 1.959963984540054 * c.se_log_rr) if ok else math.nan
            hi = math.exp(c.log_rr + 1.959963984540054 * c.se_log_rr) if ok else math.nan
            p = float(traditional_p([c.log_rr], [c.se_log_rr])[0]) if ok else math.nan
            cal_p = (
                float(self.null.calibrate_p([c.log_rr], [c.se_log_rr])[0])
                if ok and self.null is not None
                else math.nan
            )
            rows.append(
                {
                    "name": c.name,
                    "kind": c.kind,
                    "true_hr": c.true_hr,
                    "n_events": c.n_events,
                    "log_rr": c.log_rr,
                    "se_log_rr": c.se_log_rr,
                    "hr": hr,
                    "lower": lo,
                    "upper": hi,
                    "p": p,
                    "calibrated_p": cal_p,
                    "note": c.note,
                }
            )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN as None)."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        neg = [c for c in self.controls if c.kind == "negative"]
        pos = [c for c in self.controls if c.kind == "positive"]
        return {
            "negative_controls": len(neg),
            "negative_controls_estimable": sum(c.usable for c in neg),
            "positive_controls": len(pos),
            "positive_controls_estimable": sum(c.usable for c in pos),
            "null": None
            if self.null is None
            else {
                "mean": self.null.mean,
                "sd": self.null.sd,
                "log_likelihood": self.null.log_likelihood,
                "n_controls": self.null.n_controls,
                "method": "maximum likelihood (EmpiricalCalibration fitNull)",
            },
            "error_model": None if self.error_model is None else asdict(self.error_model),
            "ease": self.ease,
            "calibrated": [{k: clean(v) for k, v in asdict(r).items()} for r in self.calibrated],
            "controls": [
                {k: clean(v) for k, v in row.items()}
                for row in self.control_frame().to_dict(orient="records")
            ],
            "notes": list(self.notes),
        }


def control_outcome_times(
    start: pd.Series,
    end: pd.Series,
    first_date: pd.Series,
) -> tuple[np.ndarray, np.ndarray]:
    """Days from ``start`` to a control's first occurrence (event) or to ``end`` (censored).

    ``first_date`` is NaT for persons without the outcome; occurrences after ``end`` (end
    of follow-up) are censored at ``end``.
    """
    s = pd.to_datetime(start)
    e = pd.to_datetime(end)
    f = pd.to_datetime(first_date)
    if s.isna().any() or e.isna().any():
        raise InputDataError("control outcomes: start and end dates must be present")
    if (e < s).any():
        raise InputDataError("control outcomes: end of follow-up before the start date")
    event = f.notna() & (f <= e)
    stop = np.where(event, (f - s).dt.days, (e - s).dt.days).astype(float)
    return stop, event.to_numpy(dtype=float)


def calibrate_design(
    controls: list[ControlEstimate],
    primary: dict[str, tuple[float, float]],
    conf_level: float = 0.95,
    positive_in_error_model: bool = True,
) -> DesignCalibration:
    """Fit the empirical null (and error model) to a design's controls and calibrate its
    primary estimate(s).

    Parameters
    ----------
    controls
        Every control outcome estimated with the design (non-estimable ones with NaN).
    primary
        Estimate name -> ``(log HR, SE)`` of the estimates to calibrate.
    positive_in_error_model
        False when the positive controls' true HR is not the design's estimand (the
        target-trial strategy contrast: their effect is injected into transplanted
        person-time only); the error model then comes from the null alone.
    """
    notes: list[str] = []
    neg = [c for c in controls if c.kind == "negative" and c.usable]
    pos = [c for c in controls if c.kind == "positive" and c.usable]
    dropped = [c.name for c in controls if not c.usable]
    if dropped:
        notes.append(f"{len(dropped)} control(s) not estimable: {', '.join(dropped)}")
    if len(neg) < MIN_NEGATIVE_CONTROLS:
        notes.append(
            f"{len(neg)} estimable negative control(s), need {MIN_NEGATIVE_CONTROLS}: "
            "no empirical calibration"
        )
        return DesignCalibration(None, None, None, tuple(controls), (), tuple(notes))
    try:
        null = fit_null([c.log_rr for c in neg], [c.se_log_rr for c in neg])
    except NotEstimable as exc:
        notes.append(str(exc))
        return DesignCalibration(None, None, None, tuple(controls), (), tuple(notes))
    notes += list(null.notes)
    model = null.to_error_model()
    if pos and not positive_in_error_model:
        notes.append(
            f"{len(pos)} positive control(s) estimated but not used for the systematic error "
            "model: their true HR applies to exposed person-time, not to this design's "
            "estimand; error model from the empirical null"
        )
    elif len(pos) >= MIN_NEGATIVE_CONTROLS:
        both = neg + pos
        try:
            model, _ = fit_error_model(
                [c.log_rr for c in both],
                [c.se_log_rr for c in both],
                [math.log(c.true_hr) for c in both],
            )
        except NotEstimable as exc:
            notes.append(f"systematic error model from the null only: {exc}")
    z = 1.959963984540054
    calibrated = []
    for name, (y, se) in primary.items():
        if not (math.isfinite(y) and math.isfinite(se) and se > 0):
            continue
        cal = model.calibrate_ci(y, se, conf_level)
        calibrated.append(
            CalibratedResult(
                name=name,
                hr=math.exp(y),
                lower=math.exp(y - z * se),
                upper=math.exp(y + z * se),
                p=float(traditional_p([y], [se])[0]),
                calibrated_hr=cal.hr,
                calibrated_lower=cal.lower,
                calibrated_upper=cal.upper,
                calibrated_p=float(null.calibrate_p([y], [se])[0]),
            )
        )
    return DesignCalibration(
        null, model, null.ease(), tuple(controls), tuple(calibrated), tuple(notes)
    )


def estimate_controls(
    frame: pd.DataFrame,
    *,
    treat: str,
    start: pd.Series,
    end: pd.Series,
    controls: dict[str, tuple[Literal["negative", "positive"], float]],
    columns: dict[str, str],
) -> list[ControlEstimate]:
    """Estimate every control outcome with the primary estimate's design: a Cox model of
    ``treat`` on the same rows, time zero ``start`` and censoring at ``end``.

    Parameters
    ----------
    frame
        The analysed rows (after matching), with the 0/1 ``treat`` column and one date
        column per control (``columns[name]``; NaT without an occurrence).
    start, end
        Time zero and end of follow-up of each row (aligned with ``frame``).
    controls
        Name -> (kind, true HR).
    """
    from cohort_etl.outcomes.cox import CoxPH

    out = []
    x = frame[[treat]].astype(float).reset_index(drop=True)
    for name, (kind, true_hr) in controls.items():
        col = columns[name]
        if col not in frame.columns:
            out.append(ControlEstimate(name, kind, true_hr, math.nan, math.nan, 0, "no data"))
            continue
        t, e = control_outcome_times(start, end, frame[col])
        n_events = int(e.sum())
        if n_events == 0:
            out.append(
                ControlEstimate(name, kind, true_hr, math.nan, math.nan, n_events, "no events")
            )
            continue
        try:
            fit = CoxPH().fit(np.maximum(t, 0.0), e, x)
            se = float(fit.se_[0])
            out.append(ControlEstimate(name, kind, true_hr, float(fit.coef_[0]), se, n_events))
        except (NotEstimable, InputDataError) as exc:
            out.append(ControlEstimate(name, kind, true_hr, math.nan, math.nan, n_events, str(exc)))
    return out
