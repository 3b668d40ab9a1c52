"""The ``target_trial`` section of a study spec and of results.json.

A study spec may carry::

    target_trial:
      exposure_date: hsct_date            # exposure that counts within the grace period
      exposure_any_date: allo_hsct_any_date  # any exposure (ends the "never" strategy)
      eligibility_end_date: relapse_date  # exposure no longer possible from this date
      event_date: death_date
      censor_date: end_of_followup_date
      grace_days: 180
      covariates: [age_at_index, prior_lines, ph_positive, mrd_negative_after_cart]
      horizons_days: [365, 1826]
      bootstrap: 500
      seed: 20251130

:func:`run_section` runs the emulation (:mod:`cohort_etl.designs.target_trial`), the
immortal-time diagnostic of both the emulation and the published design (arm defined by
the exposure date), and the landmark analysis (alive and relapse-free at each landmark;
several landmarks: the supermodel), and returns :class:`TargetTrialSection` (the
results.json section) plus the strategy curves for the report.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cohort_etl.designs.immortal_time import immortal_time_check
from cohort_etl.designs.landmark import landmark_cox
from cohort_etl.designs.target_trial import (
    NEVER,
    WITHIN_GRACE,
    CloneData,
    TargetTrial,
    TargetTrialOptions,
    clone_data_from_frame,
    number_at_risk,
    run_target_trial,
)
from cohort_etl.errors import CohortEtlError


class TargetTrialSpec(BaseModel):
    """Protocol of the emulated trial (see docs/target_trial.md)."""

    model_config = ConfigDict(extra="forbid")

    start: str = "index_date"
    exposure_date: str
    exposure_any_date: str | None = None
    eligibility_end_date: str | None = None
    event_date: str
    censor_date: str
    #: only persons with this 0/1 column = 1 are eligible at time zero (e.g. in response)
    require: str | None = None
    grace_days: int = Field(180, gt=0)
    interval_days: int = Field(14, gt=0)
    covariates: list[str] = Field(default_factory=list)
    stabilized: bool = False
    truncate_percentile: float | None = Field(None, ge=50, le=100)
    time_model: Literal["quadratic", "interval"] = "quadratic"
    horizons_days: list[int] = Field(default_factory=lambda: [365, 1826])
    risk_times_days: list[int] = Field(default_factory=list)
    ci: Literal["bootstrap", "robust"] = "bootstrap"
    bootstrap: int = Field(500, ge=20)
    seed: int = 0
    conf_level: float = Field(0.95, gt=0, lt=1)
    #: landmark days (alive and, with ``landmark_relapse_free``, relapse-free then)
    landmark_days: list[int] = Field(default_factory=lambda: [100])
    landmark_relapse_free: bool = True
    #: landmarks of the supermodel (stacked, stratified by landmark); empty: none
    supermodel_days: list[int] = Field(default_factory=list)
    label_within: str = "transplant within the grace period"
    label_never: str = "no transplant"

    @model_validator(mode="after")
    def _check(self) -> TargetTrialSpec:
        if not self.horizons_days or any(h <= 0 for h in self.horizons_days):
            raise ValueError("horizons_days: positive days")
        if any(d < 0 for d in [*self.landmark_days, *self.supermodel_days]):
            raise ValueError("landmark days must be >= 0")
        return self

    def columns(self) -> list[str]:
        cols = [
            self.start,
            self.exposure_date,
            self.exposure_any_date,
            self.eligibility_end_date,
            self.event_date,
            self.censor_date,
            self.require,
            *self.covariates,
        ]
        return [c for c in dict.fromkeys(cols) if c]

    def options(self) -> TargetTrialOptions:
        return TargetTrialOptions(
            grace_days=float(self.grace_days),
            interval_days=float(self.interval_days),
            stabilized=self.stabilized,
            truncate_percentile=self.truncate_percentile,
            horizons=tuple(float(h) for h in self.horizons_days),
            n_boot=self.bootstrap,
            seed=self.seed,
            ci=self.ci,
            conf_level=self.conf_level,
            time_model=self.time_model,
        )


class StrategyAtHorizon(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int
    survival: dict[str, float | None]
    survival_lower: dict[str, float | None]
    survival_upper: dict[str, float | None]
    difference: float | None
    difference_lower: float | None
    difference_upper: float | None
    risk_ratio: float | None
    risk_ratio_lower: float | None
    risk_ratio_upper: float | None


class ImmortalTimeFlag(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flagged: bool
    exposure_after_start: bool
    no_event_before_exposure: bool
    n_exposed_after_start: int
    earliest_exposure_day: float | None
    message: str


class LandmarkEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    landmarks: list[float]
    relapse_free: bool
    hr: float | None
    hr_lower: float | None
    hr_upper: float | None
    n: int
    n_exposed: int


class TargetTrialSection(BaseModel):
    """results.json ``target_trial``: the strategy contrast and its diagnostics."""

    model_config = ConfigDict(extra="forbid")

    strategies: dict[str, str]
    grace_days: int
    n_eligible: int
    n_excluded_require: int
    hr: float | None
    hr_lower: float | None
    hr_upper: float | None
    ci_method: str
    #: SE of the log HR: bootstrap SD (``ci: bootstrap``) or person-clustered robust SE
    log_hr_se: float | None = None
    bootstrap_replicates: int
    seed: int
    horizons: list[StrategyAtHorizon]
    rmst_days: float
    rmst: dict[str, float | None]
    rmst_difference: float | None
    rmst_difference_lower: float | None
    rmst_difference_upper: float | None
    counts: dict[str, int]
    weights: dict[str, float | None]
    censoring_model: str
    covariates: list[str]
    immortal_time: dict[str, ImmortalTimeFlag]
    landmark: list[LandmarkEstimate] = Field(default_factory=list)
    not_estimable: list[str] = Field(default_factory=list)


def _check(flag: object) -> ImmortalTimeFlag:
    d = flag.as_dict()  # type: ignore[attr-defined]
    return ImmortalTimeFlag(
        **{k: d[k] for k in ImmortalTimeFlag.model_fields}  # type: ignore[arg-type]
    )


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def eligible(spec: TargetTrialSpec, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The persons eligible at time zero (``require``) and the number excluded."""
    if not spec.require:
        return frame.reset_index(drop=True), 0
    keep = pd.to_numeric(frame[spec.require], errors="coerce") == 1
    return frame[keep].reset_index(drop=True), int((~keep).sum())


def clone_data(
    spec: TargetTrialSpec, data: pd.DataFrame, event_date: str | None = None
) -> CloneData:
    """The emulation's input from the eligible persons; ``event_date`` replaces the
    spec's outcome (a control outcome run through the same design)."""
    return clone_data_from_frame(
        data,
        start_col=spec.start,
        exposure_col=spec.exposure_date,
        exposure_any_col=spec.exposure_any_date,
        relapse_col=spec.eligibility_end_date,
        event_col=event_date or spec.event_date,
        end_col=spec.censor_date,
        covariates=spec.covariates,
        what=f"target_trial ({event_date})" if event_date else "target_trial",
    )


def run_section(
    spec: TargetTrialSpec, frame: pd.DataFrame
) -> tuple[TargetTrialSection, dict[str, dict[str, list[float]]], dict[str, list[int]]]:
    """Run the emulation on ``frame`` (one row per eligible person, the study's columns).

    Returns the results section, the weighted survival curves per strategy (time,
    survival, unweighted clones at risk) and the numbers at risk at the risk times.
    """
    data, excluded = eligible(spec, frame)
    clones = clone_data(spec, data)
    opt = spec.options()
    res = run_target_trial(clones, opt)
    tt = TargetTrial(clones, opt)
    risk_times = spec.risk_times_days or [0, *spec.horizons_days]
    at_risk = number_at_risk(tt, [float(t) for t in risk_times])
    horizons = []
    for j, h in enumerate(spec.horizons_days):
        horizons.append(
            StrategyAtHorizon(
                days=h,
                survival={k: _num(v[j]) for k, v in res.survival.items()},
                survival_lower={k: _num(v[j]) for k, v in res.survival_lower.items()},
                survival_upper={k: _num(v[j]) for k, v in res.survival_upper.items()},
                difference=_num(res.survival_difference[j]),
                difference_lower=_num(res.survival_difference_lower[j]),
                difference_upper=_num(res.survival_difference_upper[j]),
                risk_ratio=_num(res.risk_ratio[j]),
                risk_ratio_lower=_num(res.risk_ratio_lower[j]),
                risk_ratio_upper=_num(res.risk_ratio_upper[j]),
            )
        )
    n = clones.n
    # the published design: exposed arm = exposure within the window, defined on its date
    exposed = ~np.isnan(clones.exposure)
    published = immortal_time_check(
        exposed, np.where(exposed, clones.exposure, 0.0), clones.time, clones.event
    )
    emulation = immortal_time_check(
        np.r_[np.zeros(n), np.ones(n)],
        np.zeros(2 * n),
        np.r_[clones.time, clones.time],
        np.r_[clones.event, clones.event],
    )
    landmarks: list[LandmarkEstimate] = []
    problems: list[str] = []
    sets = [[float(d)] for d in spec.landmark_days]
    if spec.supermodel_days:
        sets.append([float(d) for d in spec.supermodel_days])
    for days in sets:
        try:
            lm = landmark_cox(
                clones,
                days,
                relapse_free=spec.landmark_relapse_free,
                window=float(max(spec.horizons_days)) if len(days) > 1 else None,
            )
            landmarks.append(
                LandmarkEstimate(
                    landmarks=lm.landmarks,
                    relapse_free=lm.relapse_free,
                    hr=lm.hr,
                    hr_lower=lm.hr_lower,
                    hr_upper=lm.hr_upper,
                    n=lm.n_persons,
                    n_exposed=lm.n_exposed,
                )
            )
        except CohortEtlError as exc:
            problems.append(f"landmark {days}: {exc}")
    section = TargetTrialSection(
        strategies={WITHIN_GRACE: spec.label_within, NEVER: spec.label_never},
        grace_days=spec.grace_days,
        n_eligible=n,
        n_excluded_require=excluded,
        hr=_num(res.hr),
        hr_lower=_num(res.hr_lower),
        hr_upper=_num(res.hr_upper),
        ci_method=(
            f"percentile bootstrap over persons, {res.n_boot} replicates"
            if res.ci_method == "bootstrap"
            else "person-clustered robust variance (weights treated as known)"
        ),
        log_hr_se=_num(res.log_hr_se),
        bootstrap_replicates=res.n_boot,
        seed=res.seed,
        horizons=horizons,
        rmst_days=res.rmst_horizon,
        rmst={k: _num(v) for k, v in res.rmst.items()},
        rmst_difference=_num(res.rmst_difference),
        rmst_difference_lower=_num(res.rmst_difference_lower),
        rmst_difference_upper=_num(res.rmst_difference_upper),
        counts=res.counts,
        weights={k: _num(v) for k, v in res.weights.items()},
        censoring_model=str(res.options["censoring_model"]),
        covariates=list(spec.covariates),
        immortal_time={"target_trial": _check(emulation), "published_design": _check(published)},
        landmark=landmarks,
        not_estimable=problems,
    )
    return section, res.curves, at_risk
