"""Fixed-effect and DerSimonian-Laird random-effects meta-analysis of log-scale estimates.

Each site contributes an estimate ``y_i`` (e.g. a log hazard ratio) with standard error
``s_i``; ``v_i = s_i^2``. As ``metafor::rma(yi, sei = , method = "FE" | "DL")``:

fixed effect (inverse variance)::

    w_i = 1 / v_i      mu = sum w y / sum w      SE(mu) = 1 / sqrt(sum w)
    Q = sum w (y - mu)^2 on k - 1 df

DerSimonian-Laird::

    C = sum w - sum w^2 / sum w      tau^2 = max(0, (Q - (k - 1)) / C)
    w*_i = 1 / (v_i + tau^2)         mu* = sum w* y / sum w*     SE = 1 / sqrt(sum w*)

``I^2 = max(0, (Q - (k - 1)) / Q)`` (for DL equal to ``tau^2 / (tau^2 + (k - 1) / C)``);
Wald CI and two-sided normal p-value. Weights are returned normalised to sum to 1
(metafor's ``weights()`` gives percent).

Examples
--------
>>> r = meta_analysis([0.1, 0.3], [0.1, 0.2], method="FE")
>>> round(r.estimate, 4)
0.14
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from cohort_etl.errors import InputDataError, NotEstimable

METHODS = ("FE", "DL")


@dataclass(frozen=True)
class MetaResult:
    """Pooled estimate on the log scale with heterogeneity statistics.

    Attributes
    ----------
    method : str
        ``"FE"`` (inverse variance) or ``"DL"`` (DerSimonian-Laird).
    k : int
        Number of estimates pooled.
    estimate, se, lower, upper, z, p_value : float
        Pooled log-scale estimate, its SE, Wald CI, z statistic and two-sided p-value.
    q, q_df, q_p_value : float | None
        Cochran's Q (with the fixed-effect weights), its degrees of freedom and p-value;
        None with ``reason`` when ``k = 1``.
    i_squared : float | None
        Share of variation due to heterogeneity, in [0, 1] (metafor ``I2 / 100``).
    tau_squared : float | None
        Between-site variance (0 for FE; DL moment estimate truncated at 0).
    weights : tuple of float
        Normalised weights of the estimates (sum 1), in input order.
    labels : tuple of str
        Labels of the estimates, in input order.
    level : float
        Confidence level of the interval.
    reason : str | None
        Why heterogeneity is not estimable (``k = 1``), else None.
    """

    method: str
    k: int
    estimate: float
    se: float
    lower: float
    upper: float
    z: float
    p_value: float
    q: float | None
    q_df: int
    q_p_value: float | None
    i_squared: float | None
    tau_squared: float | None
    weights: tuple[float, ...]
    labels: tuple[str, ...]
    level: float = 0.95
    reason: str | None = None

    @property
    def hr(self) -> float:
        """``exp(estimate)``: the pooled ratio (hazard ratio for log HRs)."""
        return math.exp(self.estimate)

    @property
    def hr_lower(self) -> float:
        return math.exp(self.lower)

    @property
    def hr_upper(self) -> float:
        return math.exp(self.upper)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (as written to pooled.json), with the ratio-scale values."""
        return {
            "method": self.method,
            "k": self.k,
            "estimate": self.estimate,
            "se": self.se,
            "lower": self.lower,
            "upper": self.upper,
            "z": self.z,
            "p_value": self.p_value,
            "hr": self.hr,
            "hr_lower": self.hr_lower,
            "hr_upper": self.hr_upper,
            "q": self.q,
            "q_df": self.q_df,
            "q_p_value": self.q_p_value,
            "i_squared": self.i_squared,
            "tau_squared": self.tau_squared,
            "weights": dict(zip(self.labels, self.weights, strict=True)),
            "level": self.level,
            "reason": self.reason,
        }


def _check(
    estimates: Sequence[float], ses: Sequence[float], labels: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    y = np.asarray(estimates, dtype=float).ravel()
    s = np.asarray(ses, dtype=float).ravel()
    if y.size != s.size:
        raise InputDataError(f"meta-analysis: {y.size} estimates but {s.size} standard errors")
    names = (
        tuple(str(x) for x in labels)
        if labels is not None
        else tuple(str(i) for i in range(y.size))
    )
    if len(names) != y.size:
        raise InputDataError(f"meta-analysis: {len(names)} labels for {y.size} estimates")
    if y.size == 0:
        raise NotEstimable("meta-analysis: no estimates to pool (k = 0)")
    for i in range(y.size):
        if not math.isfinite(y[i]):
            raise InputDataError(f"meta-analysis: estimate of {names[i]!r} is not finite")
        if not math.isfinite(s[i]) or s[i] <= 0:
            raise InputDataError(
                f"meta-analysis: standard error of {names[i]!r} must be finite and > 0, "
                f"got {s[i]!r}"
            )
    return y, s, names


def meta_analysis(
    estimates: Sequence[float],
    ses: Sequence[float],
    method: str = "DL",
    labels: Sequence[str] | None = None,
    level: float = 0.95,
) -> MetaResult:
    """Pool log-scale estimates by inverse variance (``"FE"``) or DerSimonian-Laird
    (``"DL"``).

    Parameters
    ----------
    estimates, ses
        Per-site estimates on the log scale and their standard errors (> 0).
    method
        ``"FE"`` or ``"DL"``.
    labels
        Site labels (for weights and error messages); default positions.
    level
        Confidence level of the Wald interval.

    Raises
    ------
    NotEstimable
        With no estimates (k = 0).
    InputDataError
        Non-finite estimate, SE <= 0, lengths that differ, unknown method.

    With one estimate (k = 1) the pooled estimate is that estimate; Q, I^2 and tau^2 are
    None and ``reason`` says heterogeneity is not estimable.
    """
    if method not in METHODS:
        raise InputDataError(f"meta-analysis: method must be one of {METHODS}, got {method!r}")
    if not 0 < level < 1:
        raise InputDataError(f"meta-analysis: level must be in (0, 1), got {level!r}")
    y, s, names = _check(estimates, ses, labels)
    k = int(y.size)
    v = s**2
    w = 1.0 / v
    sw = float(w.sum())
    mu_fe = float((w * y).sum() / sw)
    reason: str | None = None
    if k > 1:
        qv = float((w * (y - mu_fe) ** 2).sum())
        q_df = k - 1
        q: float | None = qv
        q_p: float | None = float(stats.chi2.sf(qv, q_df))
        i2: float | None = max(0.0, (qv - q_df) / qv) if qv > 0 else 0.0
    else:
        q, q_df, q_p, i2 = None, 0, None, None
        reason = "heterogeneity not estimable: only one estimate (k = 1)"
    tau2: float | None
    if method == "FE":
        tau2 = 0.0 if k > 1 else None
        ww = w
    else:
        if k > 1:
            assert q is not None
            c = sw - float((w**2).sum()) / sw
            tau2 = max(0.0, (q - (k - 1)) / c)
            ww = 1.0 / (v + tau2)
        else:
            tau2 = None
            ww = w
    sww = float(ww.sum())
    est = float((ww * y).sum() / sww)
    se = 1.0 / math.sqrt(sww)
    crit = float(stats.norm.ppf(0.5 + level / 2))
    z = est / se
    return MetaResult(
        method=method,
        k=k,
        estimate=est,
        se=se,
        lower=est - crit * se,
        upper=est + crit * se,
        z=z,
        p_value=float(2 * stats.norm.sf(abs(z))),
        q=q,
        q_df=q_df,
        q_p_value=q_p,
        i_squared=i2,
        tau_squared=tau2,
        weights=tuple(float(x) for x in ww / sww),
        labels=names,
        level=level,
        reason=reason,
    )
