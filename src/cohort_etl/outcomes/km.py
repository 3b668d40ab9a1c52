"""Kaplan-Meier survival curves with the semantics of R's ``survival`` package.

The estimator reproduces ``survival::survfit(Surv(time, status) ~ 1)``: the same
survival table (every distinct time, events and censorings), the same standard error
(``std.err`` of the object is the Greenwood standard error of the cumulative hazard,
``summary()`` multiplies it by the survival), the same confidence intervals for each
``conf.type``, the same ``summary(fit, times=)`` step-function look-up, the same
quantiles (``quantile.survfit``) and median (``print.survfit``), and the same restricted
mean. Beside them it offers the SPSS symmetric median interval and reverse-KM median
follow-up.

Examples
--------
>>> km = KaplanMeier().fit([5, 8, 8, 12, 20], [1, 1, 0, 1, 0])
>>> float(km.survival_[0])
0.8
>>> km.median().time
12.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cohort_etl.errors import InputDataError, NotEstimable
from cohort_etl.outcomes.checks import (
    ArrayLike,
    FloatArray,
    as_float_array,
    check_durations,
    check_entry,
    check_events,
    check_length,
    check_weights,
    z_value,
)

__all__ = [  # the input checks are shared by every estimator (cohort_etl.outcomes.checks)
    "ArrayLike",
    "KaplanMeier",
    "QuantileEstimate",
    "RestrictedMean",
    "SPSSMedian",
    "as_float_array",
    "check_durations",
    "check_entry",
    "check_events",
    "check_length",
    "check_weights",
    "fit_by_group",
    "median_follow_up",
    "z_value",
]

ConfType = Literal["log", "log-log", "plain", "logit", "arcsin"]
CONF_TYPES: tuple[str, ...] = ("log", "log-log", "plain", "logit", "arcsin")

# R's quantile.survfit and print.survfit use sqrt(.Machine$double.eps) as tolerance.
_TOL = math.sqrt(np.finfo(float).eps)


def confidence_band(
    surv: FloatArray, sigma: FloatArray, conf_type: str, z: float
) -> tuple[FloatArray, FloatArray]:
    """Pointwise band around ``surv`` from ``sigma``, the SE of the cumulative hazard.

    Mirrors R ``survfit``: the log band is ``exp(log S -/+ z sigma)`` capped at 1; the
    log-log band is ``S ** exp(+/- z sigma / log S)`` and undefined (NaN) where S is 0 or
    1; the plain band is ``S -/+ z S sigma`` clipped to [0, 1]. Bands where ``S == 0``
    are NaN.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            half = z * sigma * surv
            lower = np.maximum(surv - half, 0.0)
            upper = np.minimum(surv + half, 1.0)
            undefined = ~np.isfinite(sigma)
            lower = np.where(undefined, np.nan, lower)
            upper = np.where(undefined, np.nan, upper)
        elif conf_type == "log":
            s = np.where(surv == 0, np.nan, surv)
            lower = np.exp(np.log(s) - z * sigma)
            upper = np.minimum(np.exp(np.log(s) + z * sigma), 1.0)
        elif conf_type == "log-log":
            s = np.where((surv == 0) | (surv == 1), np.nan, surv)
            half = z * sigma / np.log(s)
            lower = np.exp(-np.exp(np.log(-np.log(s)) - half))
            upper = np.exp(-np.exp(np.log(-np.log(s)) + half))
        elif conf_type == "logit":
            s = np.where(surv == 0, np.nan, surv)
            half = z * sigma * (1.0 + s / (1.0 - s))
            logit = np.log(surv / (1.0 - surv))
            lower = 1.0 - 1.0 / (1.0 + np.exp(logit - half))
            upper = 1.0 - 1.0 / (1.0 + np.exp(logit + half))
        elif conf_type == "arcsin":
            s = np.where(surv == 0, np.nan, surv)
            half = 0.5 * z * sigma * np.sqrt(s / (1.0 - s))
            lower = np.sin(np.maximum(0.0, np.arcsin(np.sqrt(s)) - half)) ** 2
            upper = np.sin(np.minimum(np.pi / 2, np.arcsin(np.sqrt(s)) + half)) ** 2
        else:
            raise InputDataError(f"conf_type: must be one of {CONF_TYPES}, got {conf_type!r}")
    return np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)


# --------------------------------------------------------------------------------------
# quantile helpers (R quantile.survfit / print.survfit)
# --------------------------------------------------------------------------------------
def _dedup_first(y: FloatArray) -> NDArray[np.bool_]:
    """Mask keeping the first occurrence of each value (NaN equal to NaN), as R duplicated()."""
    keep = np.ones(y.size, dtype=bool)
    seen: set[float] = set()
    seen_nan = False
    for i, v in enumerate(y.tolist()):
        if math.isnan(v):
            if seen_nan:
                keep[i] = False
            seen_nan = True
        elif v in seen:
            keep[i] = False
        else:
            seen.add(v)
    return keep


def _approx_right(v: FloatArray, idx: NDArray[np.int64], p: float) -> int | None:
    """R ``approx(v, idx, p, method="constant", f=1)`` (``rule = 1``): index or None."""
    ok = ~np.isnan(v)
    v, idx = v[ok], idx[ok]
    if v.size < 2 or p < v.min() or p > v.max():
        return None
    candidates = v >= p
    best = int(np.argmin(np.where(candidates, v, np.inf)))
    return int(idx[best])


def _findq(x: FloatArray, y: FloatArray, p: float, tol: float = _TOL) -> float:
    """The time at which the curve ``1 - y`` crosses ``1 - p`` (R survival:::findq).

    ``x`` starts with the curve's start time and ``y`` with 0 (= 1 - S(start)). Where the
    curve equals ``1 - p`` over an interval the midpoint of that interval is returned; at
    the last point the interval runs to the last time of the curve.
    """
    if np.all(np.isnan(y)) or np.nanmax(y) < p:
        return math.nan
    xmax = float(x[-1])
    keep = _dedup_first(y)
    x, y = x[keep], y[keep]
    n = y.size
    positions = np.arange(n, dtype=np.int64)
    i1 = _approx_right(y + tol, positions, p)
    i2 = _approx_right(y - tol, positions, p)
    if p == 0:
        return float(x[0])
    if i1 is None:
        return math.nan
    if not math.isnan(y[n - 1]) and abs(p - y[n - 1]) < tol:
        return (float(x[i1]) + xmax) / 2.0
    if i2 is None:
        return math.nan
    return (float(x[i1]) + float(x[i2])) / 2.0


def _minmin(y: FloatArray, x: FloatArray, tol: float = _TOL) -> float:
    """First time with ``y < 0.5`` (midpoint of a flat 0.5 stretch), as print.survfit."""
    keep = ~np.isnan(y) & (y < 0.5 + tol)
    if not keep.any():
        return math.nan
    xs, ys = x[keep], y[keep]
    if abs(ys[0] - 0.5) < tol and np.any(ys < ys[0]):
        return (float(xs[0]) + float(xs[int(np.flatnonzero(ys < ys[0])[0])])) / 2.0
    return float(xs[0])


# --------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuantileEstimate:
    """A survival-time quantile with its confidence interval.

    ``time``, ``lower`` and ``upper`` are None when not reached; ``reason`` then says why.
    """

    prob: float
    time: float | None
    lower: float | None
    upper: float | None
    conf_type: str
    conf_level: float
    reason: str | None = None

    @property
    def reached(self) -> bool:
        """True when the curve fell to ``1 - prob`` within follow-up."""
        return self.time is not None


@dataclass(frozen=True)
class SPSSMedian:
    """Median with SPSS's symmetric interval ``median -/+ z * SE(median)``.

    ``se`` is ``SE[S(median)] / f`` with the density ``f`` estimated between the last time
    with S >= 0.55 and the first time with S <= 0.45 (``t_upper_s`` / ``t_lower_s``).
    """

    median: float | None
    se: float | None
    lower: float | None
    upper: float | None
    se_surv_at_median: float | None
    density: float | None
    t_s_ge_055: float | None
    t_s_le_045: float | None
    reason: str | None = None


@dataclass(frozen=True)
class RestrictedMean:
    """Restricted mean survival time up to ``tau`` and its standard error (as R survmean)."""

    tau: float
    mean: float
    se: float


def _opt(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


# --------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------
class KaplanMeier:
    """Kaplan-Meier estimator matching ``survival::survfit``.

    Parameters
    ----------
    conf_type : {"log", "log-log", "plain", "logit", "arcsin"}
        Confidence band transform; R's default is "log".
    conf_level : float
        Confidence level of the bands and of quantile intervals.
    reverse : bool
        Estimate the censoring distribution (``Surv(time, 1 - status)``): its median is
        the reverse-KM median follow-up.

    Attributes
    ----------
    timeline_ : ndarray
        Every distinct duration (event or censoring), ascending, as ``fit$time``.
    n_risk_, n_event_, n_censor_ : ndarray
        Weighted numbers at risk, with an event and censored at each time.
    survival_ : ndarray
        Kaplan-Meier estimate just after each time.
    std_err_log_ : ndarray
        Greenwood SE of the cumulative hazard (R ``fit$std.err``); inf where S reaches 0.
    std_err_ : ndarray
        SE of the survival itself (R ``summary(fit)$std.err`` = std_err_log_ * S).
    lower_, upper_ : ndarray
        Pointwise confidence band.
    n_ : int
        Number of records; ``n_events_`` the weighted number of events.
    """

    def __init__(
        self, conf_type: ConfType = "log", conf_level: float = 0.95, reverse: bool = False
    ) -> None:
        self.conf_type = conf_type
        self.conf_level = conf_level
        self.reverse = reverse

    # -- fitting --------------------------------------------------------------------
    def fit(
        self,
        durations: ArrayLike,
        events: ArrayLike | None = None,
        weights: ArrayLike | None = None,
        entry: ArrayLike | None = None,
        label: str | None = None,
    ) -> KaplanMeier:
        """Fit the curve.

        Parameters
        ----------
        durations : array-like
            Follow-up times (>= 0).
        events : array-like, optional
            1 for the event, 0 for censoring; default all events.
        weights : array-like, optional
            Non-negative case weights (integer weights equal replicated rows). The
            variance is always Greenwood's with weighted counts, i.e. R's
            ``survfit(..., robust = FALSE)``; for non-integer weights R's default is an
            infinitesimal-jackknife variance instead, which this class does not offer.
        entry : array-like, optional
            Delayed-entry (left-truncation) times, each < its duration: a subject is at
            risk on (entry, duration], as ``Surv(entry, time, status)``.
        label : str, optional
            Name of the curve (e.g. the arm), kept as ``label_``.

        Returns
        -------
        KaplanMeier
            ``self``.
        """
        if self.conf_type not in CONF_TYPES:
            raise InputDataError(f"conf_type: must be one of {CONF_TYPES}, got {self.conf_type!r}")
        z = z_value(self.conf_level)
        t = check_durations(durations)
        n = t.size
        e = check_events(events, n)
        w = check_weights(weights, n)
        en = check_entry(entry, t)
        if self.reverse:
            e = 1.0 - e
        if float(w.sum()) <= 0:
            raise InputDataError("weights: all weights are zero")

        times, n_risk, n_event, n_censor = risk_table(t, e, w, en)
        with np.errstate(divide="ignore", invalid="ignore"):
            hazard = np.where(n_risk > 0, n_event / n_risk, 0.0)
            surv = np.asarray(np.cumprod(1.0 - hazard), dtype=float)
            gw = np.where(
                n_event > 0,
                np.where(n_risk > n_event, n_event / (n_risk * (n_risk - n_event)), np.inf),
                0.0,
            )
        sigma = np.asarray(np.sqrt(np.cumsum(gw)), dtype=float)
        lower, upper = confidence_band(surv, sigma, self.conf_type, z)

        self.label_ = label
        self.n_ = int(n)
        self.n_events_ = float((w * e).sum())
        self.timeline_ = times
        self.n_risk_ = n_risk
        self.n_event_ = n_event
        self.n_censor_ = n_censor
        self.survival_ = surv
        self.std_err_log_ = sigma
        with np.errstate(invalid="ignore"):
            self.std_err_ = sigma * surv
        self.lower_ = lower
        self.upper_ = upper
        self._z = z
        self._start = min(0.0, float(times[0]))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "survival_"):
            raise NotEstimable("KaplanMeier: call fit() first")

    # -- tables ---------------------------------------------------------------------
    def survival_table(self) -> pd.DataFrame:
        """One row per distinct time, as ``survfit`` (columns named after R's)."""
        self._check_fitted()
        return pd.DataFrame(
            {
                "time": self.timeline_,
                "n_risk": self.n_risk_,
                "n_event": self.n_event_,
                "n_censor": self.n_censor_,
                "surv": self.survival_,
                "std_err": self.std_err_,
                "std_err_log": self.std_err_log_,
                "lower": self.lower_,
                "upper": self.upper_,
            }
        )

    def survival_at(self, times: ArrayLike, extend: bool = False) -> pd.DataFrame:
        """Survival at chosen horizons, as ``summary(fit, times = times, extend = extend)``.

        The curve is a right-continuous step function starting at (0, 1). ``n_risk`` is the
        number at risk at the first curve time >= t (0 past the end); ``n_event`` and
        ``n_censor`` count what happened since the previous requested time. Horizons past
        the last follow-up time are dropped unless ``extend`` (then the last value is
        carried forward with ``n_risk = 0``). Times are sorted, as in R.
        """
        self._check_fitted()
        req = as_float_array(times, "times")
        if np.isnan(req).any():
            raise InputDataError("times: missing (NaN) horizon")
        req = np.sort(req[np.isfinite(req)])
        if not extend:
            req = req[req <= self.timeline_[-1]]
        if req.size == 0:
            raise NotEstimable(
                "times: no horizon within follow-up (last time "
                f"{self.timeline_[-1]:g}); use extend=True"
            )
        time0 = np.concatenate([[self._start], self.timeline_])
        surv0 = np.concatenate([[1.0], self.survival_])
        se0 = np.concatenate([[0.0], self.std_err_log_])
        low0 = np.concatenate([[1.0], self.lower_])
        up0 = np.concatenate([[1.0], self.upper_])
        risk0 = np.concatenate([[self.n_risk_[0]], self.n_risk_, [0.0]])
        cum_ev = np.concatenate([[0.0, 0.0], np.cumsum(self.n_event_)])
        cum_ce = np.concatenate([[0.0, 0.0], np.cumsum(self.n_censor_)])
        idx1 = np.searchsorted(time0, req, side="right")  # rows with time <= t
        idx2 = np.searchsorted(time0, req, side="left")  # first row with time >= t
        row = np.maximum(idx1, 1) - 1
        ev = np.diff(np.concatenate([[0.0], cum_ev[idx1]]))
        ce = np.diff(np.concatenate([[0.0], cum_ce[idx1]]))
        with np.errstate(invalid="ignore"):
            se_s = se0[row] * surv0[row]
        return pd.DataFrame(
            {
                "time": req,
                "n_risk": risk0[idx2],
                "n_event": ev,
                "n_censor": ce,
                "surv": surv0[row],
                "std_err": se_s,
                "lower": low0[row],
                "upper": up0[row],
            }
        )

    def number_at_risk(self, times: ArrayLike) -> pd.DataFrame:
        """Numbers at risk at ``times`` (for a risk table under a KM plot).

        ``n_risk`` counts subjects still followed at t (duration >= t); ``cum_events`` and
        ``cum_censored`` count what happened up to and including t.
        """
        self._check_fitted()
        req = as_float_array(times, "times")
        if np.isnan(req).any():
            raise InputDataError("times: missing (NaN) time")
        risk = np.concatenate([self.n_risk_, [0.0]])
        idx2 = np.searchsorted(self.timeline_, req, side="left")
        idx1 = np.searchsorted(self.timeline_, req, side="right")
        cum_ev = np.concatenate([[0.0], np.cumsum(self.n_event_)])
        cum_ce = np.concatenate([[0.0], np.cumsum(self.n_censor_)])
        return pd.DataFrame(
            {
                "time": req,
                "n_risk": risk[idx2],
                "cum_events": cum_ev[idx1],
                "cum_censored": cum_ce[idx1],
            }
        )

    # -- quantiles ------------------------------------------------------------------
    def quantile(
        self, probs: float | Sequence[float] = (0.25, 0.5, 0.75)
    ) -> list[QuantileEstimate]:
        """Quantiles of the survival time with CI, as ``quantile.survfit``.

        The ``p`` quantile is where the curve reaches ``1 - p``; its interval is where the
        lower and upper bands reach it (Brookmeyer-Crowley style). Where the curve equals
        ``1 - p`` over an interval the midpoint is returned. Not reached -> ``time`` None.
        """
        self._check_fitted()
        plist = [float(probs)] if isinstance(probs, int | float) else [float(p) for p in probs]
        out = []
        x = np.concatenate([[self._start], self.timeline_])
        for p in plist:
            if not 0.0 <= p <= 1.0 or math.isnan(p):
                raise InputDataError(f"probs: must lie in [0, 1], got {p!r}")
            q = _findq(x, np.concatenate([[0.0], 1.0 - self.survival_]), p)
            lo = _findq(x, np.concatenate([[0.0], 1.0 - self.lower_]), p)
            hi = _findq(x, np.concatenate([[0.0], 1.0 - self.upper_]), p)
            out.append(self._quantile_result(p, q, lo, hi))
        return out

    def median(self) -> QuantileEstimate:
        """Median survival and CI as ``print.survfit`` (first time with S < 0.5, or the
        midpoint of a stretch where S equals 0.5 exactly)."""
        self._check_fitted()
        x = self.timeline_
        q = _minmin(self.survival_, x)
        lo = _minmin(self.lower_, x)
        hi = _minmin(self.upper_, x)
        return self._quantile_result(0.5, q, lo, hi)

    def _quantile_result(self, p: float, q: float, lo: float, hi: float) -> QuantileEstimate:
        reason = None
        if math.isnan(q):
            reason = (
                f"not reached: survival never fell to {1 - p:g} "
                f"(lowest {float(np.nanmin(self.survival_)):.4g}, {self.n_events_:g} events)"
            )
        elif math.isnan(hi):
            reason = f"upper confidence limit not reached: the upper band stays above {1 - p:g}"
        return QuantileEstimate(
            prob=p,
            time=_opt(q),
            lower=_opt(lo),
            upper=_opt(hi),
            conf_type=self.conf_type,
            conf_level=self.conf_level,
            reason=reason,
        )

    def median_spss(self, conf_level: float | None = None) -> SPSSMedian:
        """Median with SPSS's symmetric interval (see METHODS.md).

        median = first event time with S(t) <= 0.5; SE(median) = SE[S(median)] / f with
        f = (S(u) - S(l)) / (l - u), u the last event time with S(u) >= 0.55 (0 when
        none) and l the first event time with S(l) <= 0.45; CI = median -/+ z * SE.
        """
        self._check_fitted()
        z = self._z if conf_level is None else z_value(conf_level)
        ev = self.n_event_ > 0
        t, s, se = self.timeline_[ev], self.survival_[ev], self.std_err_[ev]
        hit = np.flatnonzero(s <= 0.5)
        if hit.size == 0:
            return SPSSMedian(
                None, None, None, None, None, None, None, None,
                reason="not reached: survival never fell to 0.5",
            )  # fmt: skip
        med = float(t[hit[0]])
        se_s = float(se[hit[0]])
        up = np.flatnonzero(s >= 0.55)
        t_u, s_u = (float(t[up[-1]]), float(s[up[-1]])) if up.size else (self._start, 1.0)
        lo = np.flatnonzero(s <= 0.45)
        if lo.size == 0:
            return SPSSMedian(
                med, None, None, None, se_s, None, t_u, None,
                reason="SE not estimable: survival never fell to 0.45",
            )  # fmt: skip
        t_l, s_l = float(t[lo[0]]), float(s[lo[0]])
        f = (s_u - s_l) / (t_l - t_u)
        se_med = se_s / f
        return SPSSMedian(
            median=med,
            se=se_med,
            lower=med - z * se_med,
            upper=med + z * se_med,
            se_surv_at_median=se_s,
            density=f,
            t_s_ge_055=t_u,
            t_s_le_045=t_l,
        )

    def restricted_mean(self, tau: float | None = None) -> RestrictedMean:
        """Restricted mean survival up to ``tau`` (default: last time) and its SE,
        as ``print(fit, rmean = tau)``."""
        self._check_fitted()
        end = float(self.timeline_[-1]) if tau is None else float(tau)
        if math.isnan(end) or end <= self._start:
            raise InputDataError(f"tau: must be > {self._start:g}, got {tau!r}")
        n, d = self.n_risk_, self.n_event_
        with np.errstate(divide="ignore", invalid="ignore"):
            hh = np.where(n - d == 0, 0.0, d / (n * (n - d)))
        keep = self.timeline_ <= end
        if not keep.any():
            return RestrictedMean(tau=end, mean=end, se=0.0)
        tt = np.concatenate([self.timeline_[keep], [end]])
        ss = np.concatenate([self.survival_[keep], [self.survival_[keep][-1]]])
        hk = np.concatenate([hh[keep], [0.0]])
        delta = np.diff(np.concatenate([[self._start], tt]))
        rect = delta * np.concatenate([[1.0], ss[:-1]])
        tail = np.cumsum(rect[::-1])[::-1]  # tail[j] = sum(rect[j:])
        area_after = tail[1:]  # area from tt[j] to end, j = 0 .. m-2
        var = float(np.sum(area_after**2 * hk[:-1]))
        return RestrictedMean(tau=end, mean=float(rect.sum()) + self._start, se=math.sqrt(var))

    def summary(self) -> pd.DataFrame:
        """Records, events, median with CI: the line ``print.survfit`` shows, as a one-row
        table (every estimator's ``summary()`` is a table)."""
        med = self.median()
        return pd.DataFrame(
            [
                {
                    "label": self.label_,
                    "n": self.n_,
                    "events": self.n_events_,
                    "median": med.time,
                    "lower": med.lower,
                    "upper": med.upper,
                    "conf_type": self.conf_type,
                    "conf_level": self.conf_level,
                    "reason": med.reason,
                }
            ]
        )


def risk_table(
    t: FloatArray, e: FloatArray, w: FloatArray, entry: FloatArray | None = None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Distinct times with weighted numbers at risk, events and censorings.

    A subject is at risk at time s when ``entry < s <= t`` (entry -inf by default).
    """
    times, inv = np.unique(t, return_inverse=True)
    n_event = np.bincount(inv, weights=w * e, minlength=times.size)
    n_total = np.bincount(inv, weights=w, minlength=times.size)
    n_censor = n_total - n_event
    # at risk: duration >= s, minus those whose entry is >= s
    n_risk = np.cumsum(n_total[::-1])[::-1]
    if entry is not None and np.isfinite(entry).any():
        fin = np.isfinite(entry)
        order = np.argsort(entry[fin], kind="stable")
        ent_sorted = entry[fin][order]
        w_sorted = w[fin][order]
        cum_w = np.concatenate([[0.0], np.cumsum(w_sorted)])
        # weight of subjects with entry >= s
        pos = np.searchsorted(ent_sorted, times, side="left")
        n_risk = n_risk - (cum_w[-1] - cum_w[pos])
    f = np.float64
    return times.astype(f), n_risk.astype(f), n_event.astype(f), n_censor.astype(f)


def fit_by_group(
    durations: ArrayLike,
    events: ArrayLike | None,
    groups: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    conf_type: ConfType = "log",
    conf_level: float = 0.95,
    reverse: bool = False,
) -> dict[Any, KaplanMeier]:
    """Fit one Kaplan-Meier curve per group (sorted group labels), as ``survfit(~ group)``."""
    t = check_durations(durations)
    g = np.asarray(groups, dtype=object)
    check_length(g, t.size, "groups")
    if pd.isna(pd.Series(g)).any():
        raise InputDataError("groups: missing group label")
    e = check_events(events, t.size)
    w = check_weights(weights, t.size)
    out: dict[Any, KaplanMeier] = {}
    for level in sorted(set(g.tolist())):
        m = g == level
        out[level] = KaplanMeier(conf_type=conf_type, conf_level=conf_level, reverse=reverse).fit(
            t[m], e[m], weights=w[m], label=str(level)
        )
    return out


def median_follow_up(
    durations: ArrayLike, events: ArrayLike, conf_level: float = 0.95
) -> QuantileEstimate:
    """Reverse Kaplan-Meier median follow-up (censoring treated as the event)."""
    return KaplanMeier(reverse=True, conf_level=conf_level).fit(durations, events).median()
