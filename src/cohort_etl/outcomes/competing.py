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
from scipy import stats

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


# --------------------------------------------------------------------------------------
# Fine-Gray subdistribution hazards regression
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FineGrayResult:
    """One covariate of a Fine-Gray model."""

    name: str
    coef: float
    se: float
    shr: float
    lower: float
    upper: float
    p: float


class FineGray:
    """Fine-Gray proportional subdistribution hazards model, as R ``cmprsk::crr``.

    The subdistribution risk set at a time ``t`` of an event of the cause of interest
    holds everyone still event-free (weight 1) and everyone who had a competing event
    earlier, with weight ``G(t-) / G(T_j-)``, ``G`` the Kaplan-Meier estimate of the
    censoring distribution (Fine and Gray, JASA 1999). Tied event times share one risk
    set (Breslow). The coefficients maximise the weighted partial likelihood by
    Newton-Raphson with step halving; the variance is the sandwich ``H^-1 V H^-1`` whose
    middle term adds, to each subject's score residual ``eta_i``, the term ``psi_i`` for
    the estimation of ``G`` (Fine and Gray's eq. for ``q(u)``), which is what ``crr``
    reports. Only time-fixed covariates and one censoring group are supported.

    Parameters
    ----------
    cause
        Event code of interest (``failcode``); other positive codes compete, 0 censors.
    conf_level
        Level of the subdistribution hazard ratio intervals.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([1.0, 2, 3, 4, 5, 6, 7, 8])
    >>> e = np.array([1, 2, 1, 0, 1, 2, 0, 1])
    >>> x = np.array([[0.0], [1], [1], [0], [1], [0], [1], [0]])
    >>> fg = FineGray().fit(t, e, x)
    >>> fg.coef_.shape
    (1,)
    """

    def __init__(self, cause: int = 1, conf_level: float = 0.95, tol: float = 1e-12) -> None:
        self.cause = cause
        self.conf_level = conf_level
        self.tol = tol

    def fit(self, durations: ArrayLike, events: ArrayLike, X: Any) -> FineGray:
        """Fit from times, event codes (0 censored, 1, 2, ... causes) and covariates."""
        from cohort_etl.outcomes.cox import _design

        z = z_value(self.conf_level)
        t_in = check_durations(durations)
        n = t_in.size
        ev = as_float_array(events, "events")
        check_length(ev, n, "events")
        bad = ~np.isfinite(ev) | (ev < 0) | (ev != np.round(ev))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputDataError(
                f"events: must be 0 (censored) or a positive whole cause code, found "
                f"{ev[i]!r} at position {i}"
            )
        x_in, names = _design(X, n)
        order = np.argsort(t_in, kind="stable")
        t, x = t_in[order], x_in[order]
        status = np.where(ev[order] == self.cause, 1, np.where(ev[order] == 0, 0, 2))
        fail = np.flatnonzero(status == 1)
        if fail.size == 0:
            raise NotEstimable(f"Fine-Gray: no event of cause {self.cause}")

        # G(t-): KM of the censoring distribution just before each time (as crr evaluates
        # it at t * (1 - 100 eps))
        times, inv = np.unique(t, return_inverse=True)
        n_cens = np.bincount(inv, weights=(status == 0).astype(float), minlength=times.size)
        at_risk_u = np.cumsum(np.bincount(inv, minlength=times.size)[::-1])[::-1].astype(float)
        g_after = np.cumprod(1.0 - n_cens / at_risk_u)
        pos = np.searchsorted(times, t * (1 - 100 * np.finfo(float).eps), side="right") - 1
        g = np.where(pos >= 0, g_after[np.maximum(pos, 0)], 1.0)

        comp = status == 2
        # W[f, j]: weight of subject j in the risk set of failure f
        tf = t[fail]
        later = t[None, :] >= tf[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = g[fail][:, None] / g[None, :]
        weight = np.where(later, 1.0, np.where(comp[None, :], ratio, 0.0))

        def sums(beta: FloatArray) -> tuple[float, FloatArray, FloatArray, FloatArray, FloatArray]:
            eta = x @ beta
            r = np.exp(eta)
            s0 = weight @ r
            s1 = weight @ (r[:, None] * x)
            xbar = s1 / s0[:, None]
            loglik = float(np.sum(eta[fail]) - np.sum(np.log(s0)))
            score = x[fail].sum(axis=0) - xbar.sum(axis=0)
            wr = weight * (r / 1.0)[None, :] / s0[:, None]  # (m, n) normalised weights
            s2 = np.einsum("fj,jk,jl->kl", wr, x, x)
            info = s2 - xbar.T @ xbar
            return loglik, score, info, s0, xbar

        p = x.shape[1]
        beta = np.zeros(p)
        ll, score, info, s0, xbar = sums(beta)
        converged = False
        for _ in range(100):
            try:
                step = np.linalg.solve(info, score)
            except np.linalg.LinAlgError:
                raise NotEstimable("Fine-Gray: singular information matrix") from None
            halvings = 0
            while True:
                new = beta + step
                ll_new, *_rest = sums(new)
                if math.isfinite(ll_new) and ll_new >= ll - 1e-12 * abs(ll):
                    break
                step = step / 2
                halvings += 1
                if halvings > 30:
                    raise NotEstimable("Fine-Gray: step halving failed (no convergence)")
            beta = new
            ll_old = ll
            ll, score, info, s0, xbar = sums(beta)
            if np.max(np.abs(step)) < self.tol or abs(ll - ll_old) <= 1e-15 * abs(ll):
                converged = True
                break
        if not converged or not np.isfinite(beta).all():
            raise NotEstimable("Fine-Gray: Newton-Raphson did not converge")

        # sandwich variance
        r = np.exp(x @ beta)
        own_xbar = np.zeros((t.size, p))
        own_xbar[fail] = xbar
        a_i = weight.T @ (1.0 / s0)
        b_i = weight.T @ (xbar / s0[:, None])
        eta_res = (status == 1)[:, None] * (x - own_xbar) - r[:, None] * (x * a_i[:, None] - b_i)
        # q(u) at each distinct time u: competing events before u against failures at >= u
        gf_s0 = g[fail] / s0
        tail0 = np.cumsum(gf_s0[::-1])[::-1]  # sum over failures f >= k (sorted by time)
        tail1 = np.cumsum((gf_s0[:, None] * xbar)[::-1], axis=0)[::-1]
        k_u = np.searchsorted(tf, times, side="left")  # first failure with t_f >= u
        has = k_u < fail.size
        f0 = np.where(has, tail0[np.minimum(k_u, fail.size - 1)], 0.0)
        f1 = np.where(has[:, None], tail1[np.minimum(k_u, fail.size - 1)], 0.0)
        cidx = np.flatnonzero(comp)
        c_w = r[cidx] / g[cidx]
        cum0 = np.concatenate([[0.0], np.cumsum(c_w)])
        cum1 = np.vstack([np.zeros(p), np.cumsum(c_w[:, None] * x[cidx], axis=0)])
        before = np.searchsorted(t[cidx], times, side="left")  # competing events with t_j < u
        q = cum1[before] * f0[:, None] - cum0[before][:, None] * f1
        dlc = n_cens[:, None] * q / (at_risk_u**2)[:, None]
        cum_dlc = np.cumsum(dlc, axis=0)
        psi = -cum_dlc[inv] + (status == 0)[:, None] * q[inv] / at_risk_u[inv][:, None]
        resid = eta_res + psi
        middle = resid.T @ resid
        h_inv = np.linalg.inv(info)
        var = h_inv @ middle @ h_inv

        se = np.sqrt(np.diag(var))
        self.names_ = names
        self.coef_ = beta
        self.var_ = var
        self.naive_var_ = h_inv
        self.se_ = se
        self.loglik_ = ll
        self.n_ = n
        self.n_events_ = int(fail.size)
        self.n_competing_ = int(comp.sum())
        self.results_ = [
            FineGrayResult(
                name=names[j],
                coef=float(beta[j]),
                se=float(se[j]),
                shr=math.exp(beta[j]),
                lower=math.exp(beta[j] - z * se[j]),
                upper=math.exp(beta[j] + z * se[j]),
                p=float(2 * stats.norm.sf(abs(beta[j] / se[j]))),
            )
            for j in range(p)
        ]
        return self
