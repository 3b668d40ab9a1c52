"""Landmark analysis as METHODS.md defines it, and the landmark supermodel.

At a landmark day ``s`` the population is those still under follow-up, alive and (by
default) relapse-free at ``s``; exposure status is fixed at ``s`` (exposed = exposure on
or before ``s``), and the clock restarts at ``s``. The supermodel (van Houwelingen 2007)
stacks the landmark data sets of several days, follows each for the prediction window,
and fits one Cox model stratified by landmark with a person-clustered robust variance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cohort_etl.designs.target_trial import CloneData
from cohort_etl.errors import NotEstimable, SpecError
from cohort_etl.outcomes.cox import CoxPH


@dataclass(frozen=True)
class LandmarkResult:
    """Hazard ratio (exposed vs not at the landmark) with its robust 95% interval."""

    hr: float
    hr_lower: float
    hr_upper: float
    landmarks: list[float]
    n_persons: int
    n_exposed: int
    n_rows: int
    relapse_free: bool

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def landmark_rows(
    data: CloneData, landmark_day: float, *, relapse_free: bool = True, window: float | None = None
) -> pd.DataFrame:
    """Landmark data set at ``landmark_day`` (time since the landmark, exposure fixed)."""
    if not (landmark_day >= 0 and math.isfinite(landmark_day)):
        raise SpecError(f"landmark: landmark day must be finite and >= 0, got {landmark_day}")
    rel = np.where(np.isnan(data.relapse), np.inf, data.relapse)
    keep = data.time > landmark_day
    if relapse_free:
        keep &= rel > landmark_day
    time = data.time[keep] - landmark_day
    event = data.event[keep]
    if window is not None:
        event = event & (time <= window)
        time = np.minimum(time, window)
    expo = data.exposure[keep]
    return pd.DataFrame(
        {
            "id": data.person[keep],
            "time": time,
            "event": event.astype(np.int64),
            "exposed": (~np.isnan(expo) & (expo <= landmark_day)).astype(np.int64),
            "landmark": landmark_day,
        }
    )


def landmark_cox(
    data: CloneData,
    landmarks: Sequence[float],
    *,
    relapse_free: bool = True,
    window: float | None = None,
    conf_level: float = 0.95,
) -> LandmarkResult:
    """Cox HR of exposure at the landmark; several landmarks: the stratified supermodel."""
    if not landmarks:
        raise SpecError("landmark: at least one landmark day")
    stacked = pd.concat(
        [landmark_rows(data, s, relapse_free=relapse_free, window=window) for s in landmarks],
        ignore_index=True,
    )
    if stacked.empty or stacked["exposed"].nunique() < 2:
        raise NotEstimable("landmark: one exposure group is empty at the landmark")
    fit = CoxPH(robust=True).fit(
        stacked["time"],
        stacked["event"],
        stacked[["exposed"]],
        strata=stacked["landmark"] if len(landmarks) > 1 else None,
        cluster=stacked["id"],
    )
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + conf_level / 2)
    assert fit.robust_se_ is not None
    b, se = float(fit.coef_[0]), float(fit.robust_se_[0])
    first = stacked[stacked["landmark"] == landmarks[0]]
    return LandmarkResult(
        hr=math.exp(b),
        hr_lower=math.exp(b - z * se),
        hr_upper=math.exp(b + z * se),
        landmarks=[float(s) for s in landmarks],
        n_persons=int(stacked["id"].nunique()),
        n_exposed=int(first["exposed"].sum()),
        n_rows=len(stacked),
        relapse_free=relapse_free,
    )
