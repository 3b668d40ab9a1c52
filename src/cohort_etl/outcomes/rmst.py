"""Restricted mean survival time (RMST) per arm and the between-arm difference and ratio.

RMST up to ``tau`` is the area under the Kaplan-Meier curve from 0 to ``tau``, with the
standard error R reports for ``print(survfit(...), rmean = tau)`` (see
:meth:`~cohort_etl.outcomes.km.KaplanMeier.restricted_mean`). Between two independent
arms, as the ``survRM2`` package does (Uno et al.; Royston and Parmar 2013):

- difference ``RMST_1 - RMST_0`` with SE ``sqrt(se_1^2 + se_0^2)`` and a Wald interval;
- ratio ``RMST_1 / RMST_0`` with a Wald interval on the log scale, SE of the log ratio
  ``sqrt(se_1^2 / RMST_1^2 + se_0^2 / RMST_0^2)``.

``tau`` must not exceed the largest follow-up time of either arm (survRM2's rule), so
neither curve is extrapolated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from cohort_etl.errors import InputDataError
from cohort_etl.outcomes.km import ArrayLike, KaplanMeier, RestrictedMean, check_durations, z_value


@dataclass(frozen=True)
class RmstComparison:
    """RMST of two arms up to ``tau``, their difference and ratio (arm 1 vs arm 0)."""

    tau: float
    arm1: RestrictedMean
    arm0: RestrictedMean
    difference: float
    difference_se: float
    difference_lower: float
    difference_upper: float
    difference_p: float
    ratio: float
    ratio_lower: float
    ratio_upper: float
    ratio_p: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "tau": self.tau,
            "rmst_1": self.arm1.mean,
            "rmst_1_se": self.arm1.se,
            "rmst_0": self.arm0.mean,
            "rmst_0_se": self.arm0.se,
            "difference": self.difference,
            "difference_se": self.difference_se,
            "difference_lower": self.difference_lower,
            "difference_upper": self.difference_upper,
            "difference_p": self.difference_p,
            "ratio": self.ratio,
            "ratio_lower": self.ratio_lower,
            "ratio_upper": self.ratio_upper,
            "ratio_p": self.ratio_p,
        }


def rmst_compare(
    durations: ArrayLike,
    events: ArrayLike,
    arm: ArrayLike,
    tau: float,
    conf_level: float = 0.95,
) -> RmstComparison:
    """Compare RMST up to ``tau`` between ``arm == 1`` and ``arm == 0``.

    Parameters
    ----------
    durations, events
        Follow-up time and 0/1 event indicator per person.
    arm
        1 for the arm of interest, 0 for the reference arm.
    tau
        Horizon (> 0, at most the shorter arm's largest follow-up time).
    """
    t = check_durations(durations)
    g = np.asarray(arm, dtype=float)
    if g.shape != t.shape or not np.isin(g, (0.0, 1.0)).all():
        raise InputDataError("arm: must be 0/1, one value per duration")
    e = np.asarray(events, dtype=float)
    if not math.isfinite(tau) or tau <= 0:
        raise InputDataError(f"tau: must be a positive number, got {tau!r}")
    fits = {}
    for level in (1.0, 0.0):
        m = g == level
        if not m.any():
            raise InputDataError(f"arm: no person in arm {int(level)}")
        if tau > float(t[m].max()):
            raise InputDataError(
                f"tau: {tau:g} exceeds the largest follow-up time of arm {int(level)} "
                f"({float(t[m].max()):g}); choose tau <= the shorter arm's follow-up"
            )
        fits[level] = KaplanMeier().fit(t[m], e[m]).restricted_mean(tau)
    r1, r0 = fits[1.0], fits[0.0]
    z = z_value(conf_level)
    diff = r1.mean - r0.mean
    se = math.sqrt(r1.se**2 + r0.se**2)
    log_ratio = math.log(r1.mean / r0.mean)
    se_log = math.sqrt((r1.se / r1.mean) ** 2 + (r0.se / r0.mean) ** 2)
    return RmstComparison(
        tau=float(tau),
        arm1=r1,
        arm0=r0,
        difference=diff,
        difference_se=se,
        difference_lower=diff - z * se,
        difference_upper=diff + z * se,
        difference_p=float(2 * stats.norm.sf(abs(diff / se))) if se > 0 else math.nan,
        ratio=math.exp(log_ratio),
        ratio_lower=math.exp(log_ratio - z * se_log),
        ratio_upper=math.exp(log_ratio + z * se_log),
        ratio_p=float(2 * stats.norm.sf(abs(log_ratio / se_log))) if se_log > 0 else math.nan,
    )
