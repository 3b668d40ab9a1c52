"""Per-estimate study diagnostics with pass/fail verdicts.

Thresholds default to OHDSI CohortMethod's ``createCmDiagnosticThresholds``
(``mdrrThreshold = 10``, ``easeThreshold = 0.25``, ``sdmThreshold = 0.1``,
``equipoiseThreshold = 0.2``); a study spec may override each. Two checks are this
project's own, with their defaults stated here: the proportional-hazards test (fail when
the global ``cox.zph`` p-value is below ``ph_alpha = 0.05``) and the share of treated
persons kept by matching (fail below ``min_share_treated_matched = 0.5``), plus the
immortal-time flag of a design that defines exposure after time zero.

MDRR (CohortMethod ``computeMdrrFromAggregateStats``, Cox model): with ``E`` persons with
the outcome and a share ``p`` of persons in the target arm,
``MDRR = exp(sqrt((z_{1-alpha/2} + z_{power})^2 / (E p (1 - p))))``; ``alpha = 0.05``,
``power = 0.8``, two-sided; no events gives an infinite MDRR.

E-value (VanderWeele and Ding, Ann Intern Med 2017), for a hazard ratio of a rare
outcome: with ``RR = max(HR, 1 / HR)``, ``E = RR + sqrt(RR (RR - 1))``; the E-value of the
confidence limit closest to 1 is 1 when the interval covers 1. For a common outcome
(> 15% by end of follow-up) ``HR`` is first turned into an approximate risk ratio
``(1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1 / HR))``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from cohort_etl.errors import InputDataError

Verdict = Literal["pass", "fail", "not evaluated"]


class DiagnosticThresholds(BaseModel):
    """Pass/fail thresholds (a study spec's ``diagnostics:`` block)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_sdm: float = Field(0.1, gt=0, description="max |SMD| after matching (CohortMethod 0.1)")
    min_equipoise: float = Field(
        0.2, ge=0, le=1, description="share with preference score in [0.3, 0.7] (CohortMethod 0.2)"
    )
    max_mdrr: float = Field(10.0, gt=1, description="minimum detectable relative risk (10)")
    max_ease: float = Field(0.25, gt=0, description="expected absolute systematic error (0.25)")
    ph_alpha: float = Field(0.05, gt=0, lt=1, description="PH global test p below this fails")
    min_share_treated_matched: float = Field(
        0.5, ge=0, le=1, description="share of treated persons kept by matching"
    )
    mdrr_alpha: float = Field(0.05, gt=0, lt=1)
    mdrr_power: float = Field(0.8, gt=0, lt=1)


@dataclass(frozen=True)
class Diagnostic:
    """One diagnostic of one estimate: value, threshold and verdict."""

    name: str
    value: float | None
    threshold: float | None
    comparison: str  # how the value must relate to the threshold to pass, e.g. "<", ">="
    verdict: Verdict
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(
    name: str,
    value: float | None,
    threshold: float,
    comparison: Literal["<", "<=", ">", ">="],
    detail: str = "",
) -> Diagnostic:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Diagnostic(name, None, threshold, comparison, "not evaluated", detail)
    ok = {
        "<": value < threshold,
        "<=": value <= threshold,
        ">": value > threshold,
        ">=": value >= threshold,
    }[comparison]
    return Diagnostic(name, float(value), threshold, comparison, "pass" if ok else "fail", detail)


def mdrr(
    n_target: int,
    n_comparator: int,
    n_events: int,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
) -> float:
    """Minimum detectable hazard ratio of a Cox model (CohortMethod's formula)."""
    for name, v in (("n_target", n_target), ("n_comparator", n_comparator), ("n_events", n_events)):
        if v < 0:
            raise InputDataError(f"mdrr: {name} must be >= 0, got {v!r}")
    total = n_target + n_comparator
    if n_events == 0 or n_target == 0 or n_comparator == 0:
        return math.inf
    p = n_target / total
    z_alpha = stats.norm.ppf(1 - alpha / 2) if two_sided else stats.norm.ppf(1 - alpha)
    z_beta = -stats.norm.ppf(1 - power)
    return float(math.exp(math.sqrt((z_beta + z_alpha) ** 2 / (n_events * p * (1 - p)))))


@dataclass(frozen=True)
class EValue:
    """E-value of a point estimate and of the confidence limit closest to the null."""

    point: float
    limit: float
    rare_outcome: bool


def _evalue_rr(rr: float) -> float:
    r = max(rr, 1.0 / rr)
    return r + math.sqrt(r * (r - 1.0))


def e_value_hr(hr: float, lower: float, upper: float, rare_outcome: bool = True) -> EValue:
    """E-value of a hazard ratio with its confidence interval."""
    for name, v in (("hr", hr), ("lower", lower), ("upper", upper)):
        if not (math.isfinite(v) and v > 0):
            raise InputDataError(f"e_value_hr: {name} must be a positive number, got {v!r}")
    if not lower <= hr <= upper:
        raise InputDataError(f"e_value_hr: need lower <= hr <= upper, got {lower}, {hr}, {upper}")

    def to_rr(h: float) -> float:
        if rare_outcome:
            return h
        return (1 - 0.5 ** math.sqrt(h)) / (1 - 0.5 ** math.sqrt(1 / h))

    point = _evalue_rr(to_rr(hr))
    # the limit closest to the null; an interval covering 1 has E-value 1
    limit = 1.0 if lower <= 1.0 <= upper else _evalue_rr(to_rr(lower if hr > 1 else upper))
    return EValue(point=point, limit=limit, rare_outcome=rare_outcome)


@dataclass(frozen=True)
class EstimateDiagnostics:
    """All diagnostics of one estimate; ``verdict`` is "fail" if any diagnostic fails."""

    estimate: str
    diagnostics: tuple[Diagnostic, ...]

    @property
    def verdict(self) -> Verdict:
        verdicts = [d.verdict for d in self.diagnostics]
        if "fail" in verdicts:
            return "fail"
        if verdicts and all(v == "not evaluated" for v in verdicts):
            return "not evaluated"
        return "pass"

    @property
    def failed(self) -> list[str]:
        return [d.name for d in self.diagnostics if d.verdict == "fail"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "verdict": self.verdict,
            "failed": self.failed,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }


def diagnose_estimate(
    estimate: str,
    *,
    thresholds: DiagnosticThresholds | None = None,
    max_abs_smd: float | None = None,
    equipoise: float | None = None,
    n_target: int | None = None,
    n_comparator: int | None = None,
    n_events: int | None = None,
    ease: float | None = None,
    ph_global_p: float | None = None,
    n_treated_before_matching: int | None = None,
    n_treated_matched: int | None = None,
    immortal_time: bool | None = None,
    not_applicable: dict[str, str] | None = None,
) -> EstimateDiagnostics:
    """Diagnostics of one effect estimate, each with value, threshold and verdict.

    Every input is optional: a diagnostic whose inputs are missing is "not evaluated"
    (e.g. balance for an unmatched design). This is the one entry point for every design:
    the published matched design, sensitivity reruns and the target-trial emulation
    (pass ``max_abs_smd`` of its weighted balance, ``n_target`` / ``n_comparator`` /
    ``n_events`` of its clones or persons, ``ease`` from its own negative controls,
    ``immortal_time=False``).

    Parameters
    ----------
    estimate
        Label of the estimate (e.g. ``"os_hr"``).
    thresholds
        Defaults: CohortMethod's.
    max_abs_smd
        Largest |standardized mean difference| over covariates after matching/weighting.
    equipoise
        Share of persons with preference score in [0.3, 0.7] (before matching).
    n_target, n_comparator, n_events
        Persons per arm and persons with the outcome in the analysed population (MDRR).
    ease
        Expected absolute systematic error from the negative controls of this design.
    ph_global_p
        Global p-value of the proportional-hazards test (``cox.zph``).
    n_treated_before_matching, n_treated_matched
        Treated persons eligible for and kept by matching.
    immortal_time
        True when exposure is defined by an event after time zero (the published design
        of study A): the design fails this check by construction.
    not_applicable
        Check name -> why the design has no value for it (e.g. equipoise of a design
        without a propensity score); shown as the detail of the "not evaluated" verdict.
    """
    th = thresholds or DiagnosticThresholds()
    out = [
        _check("balance_max_abs_smd", max_abs_smd, th.max_sdm, "<"),
        _check("equipoise", equipoise, th.min_equipoise, ">="),
    ]
    if n_target is not None and n_comparator is not None and n_events is not None:
        value = mdrr(n_target, n_comparator, n_events, th.mdrr_alpha, th.mdrr_power)
        out.append(_check("mdrr", value, th.max_mdrr, "<", f"{n_events} persons with the outcome"))
    else:
        out.append(_check("mdrr", None, th.max_mdrr, "<"))
    out.append(_check("ease", ease, th.max_ease, "<"))
    out.append(_check("ph_test_global_p", ph_global_p, th.ph_alpha, ">="))
    share = None
    if n_treated_before_matching and n_treated_matched is not None:
        share = n_treated_matched / n_treated_before_matching
    out.append(_check("share_treated_matched", share, th.min_share_treated_matched, ">="))
    if immortal_time is None:
        out.append(Diagnostic("immortal_time", None, None, "==", "not evaluated"))
    else:
        out.append(
            Diagnostic(
                "immortal_time",
                1.0 if immortal_time else 0.0,
                0.0,
                "==",
                "fail" if immortal_time else "pass",
                "exposure defined after time zero" if immortal_time else "",
            )
        )
    why = not_applicable or {}
    unknown = set(why) - {d.name for d in out}
    if unknown:
        raise InputDataError(f"diagnose_estimate: unknown check(s) {sorted(unknown)}")
    out = [
        replace(d, detail=why[d.name]) if d.name in why and d.verdict == "not evaluated" else d
        for d in out
    ]
    return EstimateDiagnostics(estimate, tuple(out))
