"""Cumulative incidence with competing risks (Aalen-Johansen), as R ``survfit`` with a
multi-state factor status (``survfit(Surv(time, factor(status)) ~ 1)``).

With event-free survival ``S`` (Kaplan-Meier for any event) and cause-specific hazard
increments ``d_k(t) / n(t)``, the cumulative incidence of cause ``k`` is::

    F_k(t) = sum_{s <= t} S(s-) d_k(s) / n(s)

Its standard error is the infinitesimal-jackknife (IJ) one that ``survfit`` reports for
multi-state curves: the square root of the sum over subjects of the squared derivative
of ``F_k(t)`` with respect to the subject's case weight. Confidence limits use R's
``conf.type = "log"`` on the probability scale: ``exp(log F -/+ z se / F)``, capped at 1.

Beside it, the naive proportion (events of cause ``k`` observed by ``t`` over all
subjects, which ignores censoring) and ``1 - KM`` treating the competing event as
censoring (which overstates the incidence) show how far the simple answers are off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cohort_etl.errors import InputDataError, NotEstimable
from cohort_etl.outcomes.km import (
    ArrayLike,
    FloatArray,
    as_float_array,
    check_durations,
    check_length,
    z_value,
)


@dataclass(frozen=True)
class IncidenceAt:
    """Cumulative incidence of one cause at one horizon."""

    time: float
    cause: int
    cif: float
    std_err: float
    lower: float | None
    upper: float | None
    n_risk: float
    naive_proportion: float
    one_minus_km: float


class AalenJohansen:
    """Cumulative incidence functions for competing events.

    Parameters
    ----------
    conf_level : float
        Level of the pointwise log-scale confidence limits.

    Attributes
    ----------
    causes_ : list of int
        Event codes present (positive integers); 0 is censoring.
    timeline_ : ndarray
        Distinct times (events and censorings).
    n_risk_ : ndarray
        Number at risk at each time.
    n_event_ : DataFrame
        Events of each cause at each time (columns = causes).
    event_free_ : ndarray
        Probability of no event yet (R state "(s0)").
    cif_, std_err_, lower_, upper_ : DataFrame
        Cumulative incidence per cause with IJ standard error and limits.
    event_free_std_err_ : ndarray
        IJ standard error of ``event_free_``.
    """

    def __init__(self, conf_level: float = 0.95) -> None:
        self.conf_level = conf_level

    def fit(self, durations: ArrayLike, events: ArrayLike) -> AalenJohansen:
        """Fit from follow-up times and event codes (0 censored, 1, 2, ... causes).

        Parameters
        ----------
        durations : array-like
            Time to the first event or censoring (>= 0).
        events : array-like
            0 for censoring, a positive whole number for the cause of the event (e.g.
            1 relapse, 2 death without relapse).

        Returns
        -------
        AalenJohansen
            ``self``.
        """
        z = z_value(self.conf_level)
        t = check_durations(durations)
        n = t.size
        ev = as_float_array(events, "events")
        check_length(ev, n, "events")
        bad = ~np.isfinite(ev) | (ev < 0) | (ev != np.round(ev))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputDataError(
                f"events: must be 0 (censored) or a positive whole cause code, found "
                f"{ev[i]!r} at position {i}"
            )
        codes = ev.astype(np.int64)
        causes = sorted(int(c) for c in np.unique(codes) if c > 0)
        times, inv = np.unique(t, return_inverse=True)
        nt = times.size
        n_total = np.bincount(inv, minlength=nt).astype(float)
        n_risk = np.cumsum(n_total[::-1])[::-1]
        d_k = np.zeros((nt, len(causes)))
        for j, c in enumerate(causes):
            m = codes == c
            d_k[:, j] = np.bincount(inv[m], minlength=nt)
        d = d_k.sum(axis=1)

        # Aalen-Johansen and infinitesimal-jackknife influence, one event time at a time
        s_prev = 1.0
        u_s = np.zeros(n)  # d S(t) / d w_i
        f = np.zeros(len(causes))
        u_f = np.zeros((len(causes), n))
        surv = np.empty(nt)
        cif = np.empty((nt, len(causes)))
        se_s = np.empty(nt)
        se_f = np.empty((nt, len(causes)))
        for j in range(nt):
            if d[j] > 0:
                nr = n_risk[j]
                at_risk = t >= times[j]
                died_here = (inv == j) & (codes > 0)
                h = d[j] / nr
                a_all = (died_here.astype(float) - at_risk * h) / nr
                for k, c in enumerate(causes):
                    if d_k[j, k] == 0:
                        continue  # no event of this cause: its increment is 0
                    hk = d_k[j, k] / nr
                    a_k = (((inv == j) & (codes == c)).astype(float) - at_risk * hk) / nr
                    u_f[k] += u_s * hk + s_prev * a_k
                    f[k] += s_prev * hk
                u_s = u_s * (1.0 - h) - s_prev * a_all
                s_prev = s_prev * (1.0 - h)
            surv[j] = s_prev
            cif[j] = f
            se_s[j] = math.sqrt(float(u_s @ u_s))
            se_f[j] = np.sqrt((u_f**2).sum(axis=1))
        lower, upper = _log_limits(cif, se_f, z)

        self.causes_ = causes
        self.timeline_ = times
        self.n_risk_ = n_risk
        self.n_event_ = pd.DataFrame(d_k, columns=causes)
        self.n_censor_ = n_total - d
        self.event_free_ = surv
        self.event_free_std_err_ = se_s
        self.cif_ = pd.DataFrame(cif, columns=causes)
        self.std_err_ = pd.DataFrame(se_f, columns=causes)
        self.lower_ = pd.DataFrame(lower, columns=causes)
        self.upper_ = pd.DataFrame(upper, columns=causes)
        self._n = n
        # 1 - KM with other causes as censoring, per cause
        omk = np.empty((nt, len(causes)))
        for k in range(len(causes)):
            with np.errstate(divide="ignore", invalid="ignore"):
                omk[:, k] = 1.0 - np.cumprod(1.0 - np.where(n_risk > 0, d_k[:, k] / n_risk, 0))
        self._one_minus_km = omk
        self._cum_counts = np.cumsum(d_k, axis=0)
        return self

    def _cause_index(self, cause: int) -> int:
        if not hasattr(self, "cif_"):
            raise NotEstimable("AalenJohansen: call fit() first")
        if cause not in self.causes_:
            raise InputDataError(f"cause: {cause!r} not among the observed causes {self.causes_}")
        return self.causes_.index(cause)

    def incidence_at(self, times: ArrayLike, cause: int = 1) -> list[IncidenceAt]:
        """Cumulative incidence of ``cause`` at each horizon (step function, value at the
        last time <= horizon; 0 before the first time), with the naive proportion and
        ``1 - KM`` beside it. ``n_risk`` is the number still at risk at the horizon."""
        k = self._cause_index(cause)
        req = as_float_array(times, "times")
        if not np.isfinite(req).all():
            raise InputDataError("times: horizons must be finite numbers")
        out = []
        for h in req.tolist():
            i = int(np.searchsorted(self.timeline_, h, side="right")) - 1
            i2 = int(np.searchsorted(self.timeline_, h, side="left"))
            nr = float(self.n_risk_[i2]) if i2 < self.timeline_.size else 0.0
            if i < 0:
                out.append(IncidenceAt(h, cause, 0.0, 0.0, None, None, nr, 0.0, 0.0))
                continue
            lo = float(self.lower_.to_numpy()[i, k])
            up = float(self.upper_.to_numpy()[i, k])
            out.append(
                IncidenceAt(
                    time=h,
                    cause=cause,
                    cif=float(self.cif_.to_numpy()[i, k]),
                    std_err=float(self.std_err_.to_numpy()[i, k]),
                    lower=None if math.isnan(lo) else lo,
                    upper=None if math.isnan(up) else up,
                    n_risk=nr,
                    naive_proportion=float(self._cum_counts[i, k]) / self._n,
                    one_minus_km=float(self._one_minus_km[i, k]),
                )
            )
        return out

    def table(self, cause: int = 1) -> pd.DataFrame:
        """One row per distinct time for ``cause``."""
        k = self._cause_index(cause)
        return pd.DataFrame(
            {
                "time": self.timeline_,
                "n_risk": self.n_risk_,
                "n_event": self.n_event_.iloc[:, k].to_numpy(),
                "cif": self.cif_.iloc[:, k].to_numpy(),
                "std_err": self.std_err_.iloc[:, k].to_numpy(),
                "lower": self.lower_.iloc[:, k].to_numpy(),
                "upper": self.upper_.iloc[:, k].to_numpy(),
                "naive_proportion": self._cum_counts[:, k] / self._n,
                "one_minus_km": self._one_minus_km[:, k],
            }
        )


def _log_limits(p: FloatArray, se: FloatArray, z: float) -> tuple[Any, Any]:
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = np.where(p == 0, np.nan, p)
        rel = np.where(se == 0, 0.0, se / pp)
        lower = np.exp(np.log(pp) - z * rel)
        upper = np.minimum(np.exp(np.log(pp) + z * rel), 1.0)
    return lower, upper
