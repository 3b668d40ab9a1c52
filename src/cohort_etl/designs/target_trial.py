"""Target-trial emulation by clone-censor-weighting (CCW).

The question "start the exposure (e.g. consolidation allo-HSCT) within a grace period of
``G`` days after time zero, versus never" cannot be answered by comparing the exposed with
the unexposed: the exposed are, by construction, alive until their exposure (immortal
time). Clone-censor-weighting emulates the trial that would answer it (Hernán & Robins
2016; Maringe et al., Int J Epidemiol 2020; Gaber et al. 2024). The choices below are
documented, with their rationale, in docs/target_trial.md:

* **Clones.** Every eligible person enters both strategies at time zero.
* **Censoring at deviation.** The *never* clone is censored at the exposure (any time);
  the *exposure-within-G* clone is censored at day ``G`` when it is then alive, under
  follow-up, unexposed and still eligible (relapse-free). A clone that relapses, dies or
  leaves follow-up before ``G`` without exposure has followed its strategy ("expose while
  eligible") and is not censored.
* **Censoring model.** *Never* clones: pooled logistic regression over person-intervals of
  ``interval_days`` of the hazard of exposure among clones still at risk of it (alive,
  followed, unexposed and relapse-free: relapse is the time-varying covariate that ends
  the risk), with the baseline covariates, the response covariates and a quadratic in time;
  intervals before the first or after the last observed exposure have hazard 0.
  *Within-G* clones: censoring happens at one time only (``G``), so the pooled model has
  one interval: a logistic regression, among clones alive and followed at ``G`` that were
  still eligible at their exposure or at ``G``, of having been exposed by ``G``.
* **Weights.** Inverse probability of remaining uncensored, optionally stabilised
  (numerator: the same models without covariates) and truncated at a percentile.
* **Estimates.** Weighted Kaplan-Meier per strategy (risk, risk difference and ratio at
  each horizon, RMST and its difference) and the weighted Cox hazard ratio (Efron ties,
  counting-process rows), both on the same clone rows; R ``survfit`` / ``coxph`` give the
  same numbers (tests/designs/test_target_trial_r.py).
* **Uncertainty.** Nonparametric bootstrap over persons (both clones of a person move
  together; the censoring models are refitted in every replicate), percentile intervals;
  or, faster, the person-clustered robust variance of the weighted Cox (weights treated as
  known; no survival intervals then).

All times are days since time zero. The bootstrap evaluates each replicate as frequency
weights on one pre-sorted set of rows, so nothing is re-sorted per replicate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cohort_etl.errors import InputDataError, NotEstimable, SpecError
from cohort_etl.outcomes.cox import CoxPH

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: strategy labels (arm codes 0 and 1 of the clone rows)
NEVER = "never"
WITHIN_GRACE = "within_grace"
#: a death on day 0 is placed at this time (a clone row needs start < stop)
DAY_ZERO_EVENT = 0.5


@dataclass(frozen=True)
class CloneData:
    """One row per eligible person, times in days since time zero.

    Attributes
    ----------
    person : ndarray of int
        Person identifiers (unique).
    time : ndarray of float
        End of follow-up: the event or censoring day (> 0).
    event : ndarray of bool
        The outcome event happened at ``time``.
    exposure : ndarray of float
        Day of the exposure that counts for the *within-grace* strategy (NaN: none).
    exposure_any : ndarray of float
        Day of any exposure (censors the *never* clone; NaN: none). Equals ``exposure``
        when only in-window exposures are known.
    relapse : ndarray of float
        Day eligibility for the exposure ends (relapse; NaN: never).
    covariates : ndarray of float, shape (n, p)
        Covariates of the censoring models (baseline and response-assessment values).
    covariate_names : list of str
    """

    person: IntArray
    time: FloatArray
    event: BoolArray
    exposure: FloatArray
    exposure_any: FloatArray
    relapse: FloatArray
    covariates: FloatArray
    covariate_names: list[str]

    @property
    def n(self) -> int:
        return int(self.person.size)


@dataclass(frozen=True)
class TargetTrialOptions:
    """Options of the emulation (see the module docstring)."""

    grace_days: float = 180.0
    interval_days: float = 14.0
    stabilized: bool = False
    truncate_percentile: float | None = None
    horizons: tuple[float, ...] = (365.0, 1826.0)
    rmst_horizon: float | None = None
    n_boot: int = 500
    seed: int = 20251130
    ci: Literal["bootstrap", "robust", "none"] = "bootstrap"
    conf_level: float = 0.95
    #: L2 penalty on the standardised coefficients of the censoring models (separation)
    ridge: float = 1e-4
    #: time terms of the censoring models: a quadratic in time, or one log-odds per interval
    time_model: Literal["quadratic", "interval"] = "quadratic"

    def check(self) -> None:
        if not (self.grace_days > 0 and math.isfinite(self.grace_days)):
            raise SpecError(f"target_trial.grace_days: must be > 0, got {self.grace_days}")
        if not self.interval_days > 0:
            raise SpecError(f"target_trial.interval_days: must be > 0, got {self.interval_days}")
        tp = self.truncate_percentile
        if tp is not None and not 50 <= tp <= 100:
            raise SpecError(f"target_trial.truncate_percentile: must be in [50, 100], got {tp}")
        if not self.horizons or any(h <= 0 for h in self.horizons):
            raise SpecError(f"target_trial.horizons: must be positive days, got {self.horizons}")
        if self.ci not in ("bootstrap", "robust", "none"):
            raise SpecError(f"target_trial.ci: bootstrap, robust or none, got {self.ci!r}")
        if self.ci == "bootstrap" and self.n_boot < 20:
            raise SpecError(f"target_trial.n_boot: at least 20 replicates, got {self.n_boot}")
        if not 0 < self.conf_level < 1:
            raise SpecError(f"target_trial.conf_level: must be in (0, 1), got {self.conf_level}")

    @property
    def tau(self) -> float:
        return float(self.rmst_horizon if self.rmst_horizon is not None else max(self.horizons))


# ------------------------------------------------------------------------------ input
def _days(df: pd.DataFrame, col: str, start: pd.Series, what: str) -> FloatArray:
    if col not in df.columns:
        raise InputDataError(f"{what}: column {col!r} not found (columns: {list(df.columns)})")
    values = pd.to_datetime(df[col], errors="coerce")
    bad = values.isna() & df[col].notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputDataError(f"{what}: column {col!r} row {i}: not a date: {df[col].iloc[i]!r}")
    return np.asarray((values - start).dt.days, dtype=np.float64)


def clone_data_from_frame(
    df: pd.DataFrame,
    *,
    id_col: str = "person_id",
    start_col: str = "index_date",
    exposure_col: str = "hsct_date",
    exposure_any_col: str | None = None,
    relapse_col: str | None = "relapse_date",
    event_col: str = "death_date",
    end_col: str = "end_of_followup_date",
    covariates: Sequence[str] = (),
    what: str = "target_trial",
) -> CloneData:
    """:class:`CloneData` from an analysis mart (one row per person, dates).

    Raises
    ------
    InputDataError
        Missing columns, non-dates, missing covariate values, follow-up ending before
        time zero, or an exposure / relapse before time zero (naming column and person).
    """
    for col in (id_col, start_col, *covariates):
        if col not in df.columns:
            raise InputDataError(f"{what}: column {col!r} not found (columns: {list(df.columns)})")
    if df[id_col].duplicated().any():
        dup = df.loc[df[id_col].duplicated(), id_col].iloc[0]
        raise InputDataError(f"{what}: column {id_col!r}: person {dup} appears twice")
    start = pd.to_datetime(df[start_col], errors="coerce")
    if start.isna().any():
        i = int(np.flatnonzero(start.isna().to_numpy())[0])
        raise InputDataError(f"{what}: column {start_col!r} row {i}: missing or not a date")
    pid = df[id_col].to_numpy()
    end = _days(df, end_col, start, what)
    death = _days(df, event_col, start, what)
    if np.isnan(end).any():
        i = int(np.flatnonzero(np.isnan(end))[0])
        raise InputDataError(f"{what}: column {end_col!r}: missing for person {pid[i]}")
    event = ~np.isnan(death) & (death <= end)
    time = np.where(event, death, end)
    if (time < 0).any():
        i = int(np.flatnonzero(time < 0)[0])
        raise InputDataError(
            f"{what}: person {pid[i]}: follow-up ends before {start_col!r} ({end_col!r})"
        )
    time = np.where(time <= 0, DAY_ZERO_EVENT, time)
    exposure = _days(df, exposure_col, start, what)
    exposure_any = _days(df, exposure_any_col, start, what) if exposure_any_col else exposure
    relapse = _days(df, relapse_col, start, what) if relapse_col else np.full(len(df), np.nan)
    checks: list[tuple[str | None, FloatArray]] = [
        (exposure_col, exposure),
        (exposure_any_col, exposure_any),
        (relapse_col, relapse),
    ]
    for name, arr in checks:
        if name and (arr <= 0).any():
            i = int(np.flatnonzero(arr <= 0)[0])
            raise InputDataError(
                f"{what}: column {name!r}: person {pid[i]}: on or before {start_col!r}; "
                "eligibility at time zero needs it later"
            )
    # the any-exposure date is the first exposure: never later than the in-window one
    exposure_any = np.where(np.isnan(exposure_any), exposure, np.fmin(exposure_any, exposure))
    cov = np.empty((len(df), len(covariates)))
    for j, col in enumerate(covariates):
        x = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        if np.isnan(x).any():
            i = int(np.flatnonzero(np.isnan(x))[0])
            raise InputDataError(
                f"{what}: covariate {col!r}: missing or non-numeric for person {pid[i]}"
            )
        cov[:, j] = x
    return CloneData(
        person=np.asarray(pid, dtype=np.int64),
        time=time,
        event=event,
        exposure=exposure,
        exposure_any=exposure_any,
        relapse=relapse,
        covariates=cov,
        covariate_names=list(covariates),
    )


# --------------------------------------------------------------------------- logistic
def logistic_fit(
    X: FloatArray,
    y: FloatArray,
    freq: FloatArray,
    ridge: float = 0.0,
    start: FloatArray | None = None,
    max_iter: int = 50,
) -> FloatArray:
    """Weighted logistic regression by Newton-Raphson (first column: intercept).

    ``freq`` are case weights and ``y`` may be a proportion (collapsed binomial rows);
    ``ridge`` penalises every coefficient but the intercept (columns are expected
    standardised). Step-halving when the penalised deviance rises.
    """
    q = X.shape[1]
    beta = np.zeros(q) if start is None else start.copy()
    pen = np.full(q, ridge)
    pen[0] = 0.0

    def objective(b: FloatArray) -> float:
        eta = X @ b
        return float(np.sum(freq * (np.logaddexp(0.0, eta) - y * eta)) + 0.5 * pen @ (b * b))

    obj = objective(beta)
    for _ in range(max_iter):
        eta = X @ beta
        mu = 1.0 / (1.0 + np.exp(-eta))
        grad = X.T @ (freq * (y - mu)) - pen * beta
        hess = (X * (freq * mu * (1 - mu))[:, None]).T @ X + np.diag(pen)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        new = beta + step
        new_obj = objective(new)
        halvings = 0
        while new_obj > obj + 1e-12 * abs(obj) and halvings < 30:
            step /= 2
            new = beta + step
            new_obj = objective(new)
            halvings += 1
        beta, done = new, abs(obj - new_obj) <= 1e-12 * (abs(new_obj) + 1e-3)
        obj = new_obj
        if done and float(np.max(np.abs(step))) < 1e-9:
            break
    return beta


def _standardise(x: FloatArray) -> FloatArray:
    if x.shape[1] == 0:
        return x
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    return np.asarray((x - x.mean(axis=0)) / sd, dtype=np.float64)


# ------------------------------------------------------------------------ clone rows
@dataclass
class CloneRows:
    """Counting-process rows of both clones: ``(start, stop]`` with constant weight.

    ``arm`` 1 = within-grace strategy, 0 = never. ``person`` indexes :class:`CloneData`
    rows (0..n-1). ``weight`` is set by :meth:`TargetTrial.weights`.
    """

    start: FloatArray
    stop: FloatArray
    event: BoolArray
    arm: IntArray
    person: IntArray
    weight: FloatArray = field(default_factory=lambda: np.zeros(0))

    def frame(self, ids: IntArray | None = None) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "id": self.person if ids is None else ids[self.person],
                "start": self.start,
                "stop": self.stop,
                "event": self.event.astype(np.int64),
                "arm": self.arm,
                "weight": self.weight if self.weight.size == self.arm.size else 1.0,
            }
        )


@dataclass(frozen=True)
class StrategySummary:
    """Estimates of one replicate (or of the data): per strategy and contrasts."""

    log_hr: float
    survival: FloatArray  # shape (2, n_horizons): row 0 never, row 1 within grace
    rmst: FloatArray  # shape (2,)


class _GridHazard:
    """Pooled logistic model of the exposure hazard on a grid of intervals.

    Interval ``j`` is ``(b[j], b[j+1]]``. A person is at risk of exposure in it when still
    followed, unexposed and eligible (relapse-free) at ``b[j]``; the event is an exposure
    inside it. Intervals before the first or after the last observed exposure have hazard
    0 (no model row). Linear predictor: intercept + quadratic in the interval midpoint
    (standardised) or one log-odds per interval (``time_model``) + standardised
    covariates; the numerator model has the time terms only.
    """

    def __init__(
        self,
        bounds: FloatArray,
        exposure: FloatArray,
        time: FloatArray,
        relapse: FloatArray,
        xs: FloatArray,
        time_model: str = "quadratic",
    ) -> None:
        self.bounds = bounds
        lo, hi = bounds[:-1], bounds[1:]
        self.k = lo.size
        self.elig = (time[:, None] > lo) & (exposure[:, None] > lo) & (relapse[:, None] > lo)
        event = self.elig & (exposure[:, None] <= hi)
        has = np.flatnonzero(event.any(axis=0))
        self.j_lo, self.j_hi = (int(has[0]), int(has[-1]) + 1) if has.size else (0, 0)
        js = np.arange(self.j_lo, self.j_hi)
        mid = (lo + hi)[js] / 2
        cols = [np.ones(js.size)]
        if time_model == "interval" and js.size > 1:
            # one log-odds per interval: intercept + indicators of the later intervals
            cols += [np.asarray(js == j, dtype=np.float64) for j in js[1:]]
        elif js.size > 1:
            ts = (mid - mid.mean()) / (mid.std() or 1.0)
            cols += [ts, ts**2]
        self.time_design = np.column_stack(cols)  # (intervals, q_t)
        pi, ji = np.nonzero(self.elig[:, self.j_lo : self.j_hi])
        self.person = pi
        self.y = event[pi, ji + self.j_lo].astype(np.float64)
        self.xs = xs
        # identical design rows (same interval, same covariates) are collapsed: the
        # likelihood only needs their summed case weights and summed events
        if xs.shape[1]:
            xu, xpat = np.unique(xs, axis=0, return_inverse=True)
            xpat = xpat.reshape(-1)
        else:
            xu, xpat = np.zeros((1, 0)), np.zeros(xs.shape[0], np.int64)
        self.xu, self.xpat = xu, xpat
        self.n_elig = self.elig.sum(axis=1)
        key = ji.astype(np.int64) * xu.shape[0] + xpat[pi]
        ukey, self.pattern = np.unique(key, return_inverse=True)
        self.pattern = self.pattern.reshape(-1)
        uj, ux = ukey // xu.shape[0], ukey % xu.shape[0]
        self.X = np.column_stack([self.time_design[uj], xu[ux]])
        self.Xnum = self.time_design[uj]
        self.n_pattern = ukey.size

    @property
    def empty(self) -> bool:
        return self.j_hi == self.j_lo or not self.y.any()

    def fit(
        self, freq: FloatArray, ridge: float, start: tuple[Any, Any] | None, numerator: bool
    ) -> tuple[FloatArray, FloatArray]:
        """(full, numerator) coefficients; the numerator model only when ``numerator``."""
        if self.empty:
            return np.zeros(self.X.shape[1]), np.zeros(self.Xnum.shape[1])
        f = freq[self.person]
        n = np.asarray(np.bincount(self.pattern, weights=f, minlength=self.n_pattern), float)
        ev = np.asarray(
            np.bincount(self.pattern, weights=f * self.y, minlength=self.n_pattern), float
        )
        y = np.divide(ev, n, out=np.zeros_like(ev), where=n > 0)
        s = start or (None, None)
        full = logistic_fit(self.X, y, n, ridge, s[0])
        if not numerator:
            return full, np.zeros(0)
        # the numerator model depends on the interval only
        tj = self.Xnum
        return full, logistic_fit(tj, y, n, ridge, s[1])

    def cum_log_unexposed(self, beta: FloatArray, marginal: bool) -> tuple[FloatArray, IntArray]:
        """``C[q, k]`` = sum over intervals j < k of log(1 - h_j) for covariate pattern q,
        and each person's pattern row. Eligibility is a prefix of the intervals (it ends
        at the first of exposure, relapse and end of follow-up), so a person's
        log P(unexposed at bound k | eligible history) is ``C[row, min(k, n_eligible)]``."""
        rows = self.xu.shape[0] if not marginal else 1
        c = np.zeros((rows, self.k + 1))
        who = np.zeros(self.xpat.size, np.int64) if marginal else self.xpat
        if self.empty:
            return c, who
        qt = self.time_design.shape[1]
        eta_t = self.time_design @ beta[:qt]
        eta_x = np.zeros(rows) if marginal else self.xu @ beta[qt:]
        with np.errstate(over="ignore"):
            h = 1.0 / (1.0 + np.exp(-(eta_x[:, None] + eta_t[None, :])))
        logq = np.zeros((rows, self.k))
        logq[:, self.j_lo : self.j_hi] = np.log1p(-np.minimum(h, 1 - 1e-12))
        np.cumsum(logq, axis=1, out=c[:, 1:])
        return c, who


class TargetTrial:
    """Clone-censor-weight emulation on one :class:`CloneData` (see module docstring).

    Builds the clone rows and the censoring-model designs once; :meth:`estimate` evaluates
    them for any person frequencies (all ones: the data; multinomial: a bootstrap replicate).
    """

    def __init__(self, data: CloneData, options: TargetTrialOptions | None = None) -> None:
        self.data = data
        self.opt = options or TargetTrialOptions()
        self.opt.check()
        if data.n < 2:
            raise NotEstimable("target_trial: fewer than 2 eligible persons")
        d, g, delta = data, self.opt.grace_days, self.opt.interval_days
        opt = self.opt
        xs = _standardise(d.covariates)
        rel = np.where(np.isnan(d.relapse), np.inf, d.relapse)
        e_any = np.where(np.isnan(d.exposure_any), np.inf, d.exposure_any)
        e_in = np.where(np.isnan(d.exposure) | (d.exposure > g), np.inf, d.exposure)
        self.e_any, self.e_in, self.rel = e_any, e_in, rel
        # never clone: censored at any exposure; grid over the observed exposure days
        self.exit0 = np.minimum(d.time, e_any)
        self.event0 = d.event & (d.time < e_any)
        seen = e_any[np.isfinite(e_any) & (e_any <= d.time)]
        n_int = int(np.ceil(seen.max() / delta)) if seen.size else 0
        self.model0 = _GridHazard(
            np.arange(n_int + 1, dtype=np.float64) * delta, e_any, d.time, rel, xs, opt.time_model
        )
        # within-grace clone: grid over (0, G]
        k_g = int(np.ceil(g / delta))
        self.model1 = _GridHazard(
            np.minimum(np.arange(k_g + 1) * delta, g), e_in, d.time, rel, xs, opt.time_model
        )
        self.exposed1 = np.isfinite(e_in)
        self.censored1 = ~self.exposed1 & (d.time > g) & (rel > g)
        self._build_rows()
        self._build_aggregation()

    # ---------------------------------------------------------------------- rows
    @staticmethod
    def _split(
        bounds: FloatArray, exit_: FloatArray, start_at: float = 0.0
    ) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
        """Rows (person, interval k, start, stop) splitting (0, exit] at ``bounds[1:]``;
        interval ``k = len(bounds) - 1`` is the open tail after the last bound."""
        k_max = bounds.size - 1
        nk = np.searchsorted(bounds, exit_, side="left")  # bounds < exit
        nk = np.clip(nk, 1, k_max + 1)
        person = np.repeat(np.arange(exit_.size), nk)
        first = np.cumsum(nk) - nk
        k = np.arange(person.size) - np.repeat(first, nk)
        start = bounds[np.minimum(k, k_max)].astype(np.float64)
        last = k == nk[person] - 1
        upper = np.where(k < k_max, bounds[np.minimum(k + 1, k_max)], np.inf)
        stop = np.where(last, exit_[person], upper)
        return person, k, start, stop

    def _build_rows(self) -> None:
        d, g = self.data, self.opt.grace_days
        p0, k0, s0, t0 = self._split(self.model0.bounds, self.exit0)
        ev0 = (t0 == self.exit0[p0]) & self.event0[p0]
        # within-grace clone: censored at G if still eligible and unexposed then
        exit1 = np.where(self.censored1, g, d.time)
        event1 = d.event & ~self.censored1
        p1, k1, s1, t1 = self._split(self.model1.bounds, exit1)
        ev1 = (t1 == exit1[p1]) & event1[p1]
        self.k0, self.k1 = k0, k1
        # flat indices into the (pattern, bound) tables of cum_log_unexposed
        m0, m1 = self.model0, self.model1
        self._col0 = np.minimum(k0, m0.n_elig[p0])
        self._flat0 = m0.xpat[p0] * (m0.k + 1) + self._col0
        self._col1 = np.minimum(np.minimum(k1, m1.k), m1.n_elig[p1])
        self._flat1 = m1.xpat[p1] * (m1.k + 1) + self._col1
        kx = np.searchsorted(self.model1.bounds, self.e_in, side="left") - 1
        self.after1 = np.isfinite(self.e_in[p1]) & (np.minimum(k1, self.model1.k) > kx[p1])
        self.rows = CloneRows(
            start=np.concatenate([s0, s1]),
            stop=np.concatenate([t0, t1]),
            event=np.concatenate([ev0, ev1]),
            arm=np.concatenate([np.zeros(p0.size, np.int64), np.ones(p1.size, np.int64)]),
            person=np.concatenate([p0, p1]).astype(np.int64),
        )
        self.n0_rows = p0.size

    def _build_aggregation(self) -> None:
        """Index every row once: with them, per-time sums are two bincounts per replicate.

        At event time ``t_g`` a row is at risk when ``start < t_g <= stop``: it enters the
        running sum at the first event time after its start and leaves it at the first
        event time after its stop.
        """
        r = self.rows
        self.times = np.unique(r.stop[r.event])
        nt = self.nt = self.times.size
        enter = np.searchsorted(self.times, r.start, side="right")
        leave = np.searchsorted(self.times, r.stop, side="right")
        self.idx_enter = r.arm * (nt + 1) + enter
        self.idx_leave = r.arm * (nt + 1) + leave
        self.ev_rows = np.flatnonzero(r.event)
        self.idx_event = r.arm[self.ev_rows] * nt + np.searchsorted(
            self.times, r.stop[self.ev_rows]
        )

    # ---------------------------------------------------------------------- weights
    def model_coefficients(
        self, freq: FloatArray, start: tuple[Any, ...] | None = None
    ) -> tuple[Any, ...]:
        """Coefficients (full, numerator) of the never-clone and within-grace models."""
        s = start or ((None, None), (None, None))
        stab = self.opt.stabilized
        return (
            self.model0.fit(freq, self.opt.ridge, s[0], stab),
            self.model1.fit(freq, self.opt.ridge, s[1], stab),
        )

    def _within_weights(
        self, beta: FloatArray, marginal: bool, p1: IntArray, k1: IntArray
    ) -> tuple[FloatArray, FloatArray]:
        """Weight of each within-grace row if unexposed, and each person's 1 / p."""
        m = self.model1
        c, who = m.cum_log_unexposed(beta, marginal)
        col = self._col1
        u = np.exp(c.ravel()[col] if marginal else c.ravel()[self._flat1])
        p = 1.0 - np.exp(c[who, m.k])
        pp = p[p1]
        with np.errstate(divide="ignore", invalid="ignore"):
            w_un = np.where(pp > 0, (u - (1.0 - pp)) / (pp * u), 1.0)
            w_ex = np.where(p > 0, 1.0 / p, 1.0)
        return np.maximum(w_un, 0.0), w_ex

    def weights(
        self, freq: FloatArray | None = None, coefs: tuple[Any, ...] | None = None
    ) -> FloatArray:
        """Inverse-probability weight of every clone row (see docs/target_trial.md)."""
        n = self.data.n
        freq = np.ones(n) if freq is None else freq
        (b0, b0n), (b1, b1n) = coefs if coefs is not None else self.model_coefficients(freq)
        r = self.rows
        w = np.ones(r.start.size)
        # never clone: 1 / P(unexposed so far), cumulated over eligible intervals j < k
        m0 = self.model0
        if m0.k:
            c, _who = m0.cum_log_unexposed(b0, False)
            log_u = c.ravel()[self._flat0]
            if self.opt.stabilized:
                cn, _whon = m0.cum_log_unexposed(b0n, True)
                log_u = log_u - cn.ravel()[self._col0]
            w[: self.n0_rows] = np.exp(-log_u)
        # within-grace clone: unexposed rows carry S_strategy / P(unexposed); after the
        # exposure interval, 1 / P(exposed within G)
        m1 = self.model1
        p1 = r.person[self.n0_rows :]
        k1 = np.minimum(self.k1, m1.k)
        w_un, w_ex = self._within_weights(b1, False, p1, k1)
        if self.opt.stabilized:
            n_un, n_ex = self._within_weights(b1n, True, p1, k1)
            with np.errstate(divide="ignore", invalid="ignore"):
                w_un = np.where(n_un > 0, w_un / np.where(n_un > 0, n_un, 1.0), w_un)
            w_ex = w_ex / n_ex
        # interval of the exposure (exposure in (b[j], b[j+1]] -> j); weight from j + 1 on
        after = self.after1
        w[self.n0_rows :] = np.where(after, w_ex[p1], w_un)
        tp = self.opt.truncate_percentile
        if tp is not None and tp < 100:
            cap = float(np.percentile(w[w > 0], tp))
            w = np.minimum(w, cap)
        return w

    # ------------------------------------------------------------------- estimates
    def _sums(self, wf: FloatArray, mult: FloatArray) -> tuple[list[FloatArray], ...]:
        """Per arm: weighted at-risk R, weighted deaths D, death multiplicity m."""
        nt = self.nt
        size = 2 * (nt + 1)
        net = np.bincount(self.idx_enter, weights=wf, minlength=size) - np.bincount(
            self.idx_leave, weights=wf, minlength=size
        )
        net = net.reshape(2, nt + 1)
        risk = np.cumsum(net, axis=1)[:, :nt]
        ev = self.ev_rows
        d = np.bincount(self.idx_event, weights=wf[ev], minlength=2 * nt).reshape(2, nt)
        m = np.bincount(self.idx_event, weights=mult[ev], minlength=2 * nt).reshape(2, nt)
        return [risk[0], risk[1]], [d[0], d[1]], [m[0], m[1]]

    def summarise(self, wf: FloatArray, mult: FloatArray) -> StrategySummary:
        """Log HR (weighted Efron Cox), survival at horizons and RMST from row weights."""
        R, D, M = self._sums(wf, mult)
        log_hr = efron_binary_cox(R[0], R[1], D[0], D[1], M[0] + M[1])
        surv = np.empty((2, len(self.opt.horizons)))
        rmst = np.empty(2)
        for a in (0, 1):
            with np.errstate(divide="ignore", invalid="ignore"):
                haz = np.where(R[a] > 0, D[a] / R[a], 0.0)
            s = np.asarray(np.cumprod(1.0 - haz), dtype=np.float64)
            surv[a] = step_at(self.times, s, np.asarray(self.opt.horizons))
            rmst[a] = restricted_mean(self.times, s, self.opt.tau)
        return StrategySummary(log_hr, surv, rmst)

    def estimate(
        self, freq: FloatArray | None = None, start: tuple[Any, ...] | None = None
    ) -> tuple[StrategySummary, tuple[Any, ...]]:
        n = self.data.n
        f = np.ones(n) if freq is None else freq
        coefs = self.model_coefficients(f, start)
        w = self.weights(f, coefs)
        fr = f[self.rows.person]
        mult = fr * (w > 0)
        return self.summarise(w * fr, mult), coefs


def efron_binary_cox(
    r0: FloatArray, r1: FloatArray, d0: FloatArray, d1: FloatArray, m: FloatArray
) -> float:
    """Log hazard ratio (arm 1 vs 0) of a weighted Cox model with Efron ties.

    Inputs are per distinct event time: weighted numbers at risk and weighted deaths per
    arm, and the number of tied death records ``m`` (R's ``coxph`` weighting: each of the
    ``m`` Efron terms carries the mean death weight). Newton-Raphson from 0.
    """
    keep = m > 0
    r0, r1, d0, d1, m = r0[keep], r1[keep], d0[keep], d1[keep], m[keep]
    if d1.sum() <= 0 or d0.sum() <= 0:
        raise NotEstimable("target_trial: no event in one strategy; hazard ratio not estimable")
    mi = np.rint(m).astype(np.int64)
    kmax = int(mi.max())
    frac = np.arange(kmax)[None, :] / mi[:, None]
    valid = np.arange(kmax)[None, :] < mi[:, None]
    meanw = (d0 + d1) / mi
    beta = 0.0
    for _ in range(60):
        eb = math.exp(beta)
        s1 = (r1 * eb)[:, None] - frac * (d1 * eb)[:, None]
        s = r0[:, None] + s1 - frac * d0[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(valid, s1 / s, 0.0)
        score = float(d1.sum() - np.sum(meanw * ratio.sum(axis=1)))
        info = float(np.sum(meanw * (ratio - ratio**2).sum(axis=1)))
        if info <= 0:
            raise NotEstimable("target_trial: Cox information is zero")
        step = score / info
        step = max(min(step, 5.0), -5.0)
        beta += step
        if abs(step) < 1e-12:
            break
    return beta


def step_at(times: FloatArray, surv: FloatArray, at: FloatArray) -> FloatArray:
    """Right-continuous step function value at ``at`` (1 before the first time)."""
    idx = np.searchsorted(times, at, side="right") - 1
    return np.where(idx >= 0, surv[np.maximum(idx, 0)], 1.0)


def restricted_mean(times: FloatArray, surv: FloatArray, tau: float) -> float:
    """Area under the step survival curve from 0 to ``tau``."""
    keep = times < tau
    t = np.concatenate([[0.0], times[keep], [tau]])
    s = np.concatenate([[1.0], surv[keep]])
    return float(np.sum(s * np.diff(t)))


# ---------------------------------------------------------------------------- results
@dataclass
class TargetTrialResult:
    """Point estimates and intervals of the emulation (``as_dict`` for results.json)."""

    hr: float
    hr_lower: float | None
    hr_upper: float | None
    log_hr_se: float | None
    horizons: list[float]
    survival: dict[str, list[float]]
    survival_lower: dict[str, list[float | None]]
    survival_upper: dict[str, list[float | None]]
    survival_difference: list[float]
    survival_difference_lower: list[float | None]
    survival_difference_upper: list[float | None]
    risk_ratio: list[float]
    risk_ratio_lower: list[float | None]
    risk_ratio_upper: list[float | None]
    rmst_horizon: float
    rmst: dict[str, float]
    rmst_difference: float
    rmst_difference_lower: float | None
    rmst_difference_upper: float | None
    ci_method: str
    n_boot: int
    n_boot_failed: int
    seed: int
    n_persons: int
    counts: dict[str, int]
    weights: dict[str, float]
    options: dict[str, Any]
    curves: dict[str, dict[str, list[float]]]
    boot_log_hr: FloatArray | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "boot_log_hr"}
        return out


def _pct(x: FloatArray, level: float) -> tuple[float | None, float | None]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None, None
    a = (1 - level) / 2
    lo, hi = np.quantile(x, [a, 1 - a])
    return float(lo), float(hi)


def _risk_ratio(surv: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1 - surv[1]) / (1 - surv[0])


def run_target_trial(
    data: CloneData, options: TargetTrialOptions | None = None
) -> TargetTrialResult:
    """Clone, censor, weight; estimate; bootstrap (or robust variance). See module doc."""
    opt = options or TargetTrialOptions()
    tt = TargetTrial(data, opt)
    point, coefs = tt.estimate()
    w = tt.weights(coefs=coefs)
    level = opt.conf_level
    nh = len(opt.horizons)
    none_h: list[float | None] = [None] * nh
    s_lo = {NEVER: list(none_h), WITHIN_GRACE: list(none_h)}
    s_hi = {NEVER: list(none_h), WITHIN_GRACE: list(none_h)}
    d_lo, d_hi, rr_lo, rr_hi = list(none_h), list(none_h), list(none_h), list(none_h)
    rm_lo = rm_hi = None
    hr_lo = hr_hi = se = None
    boot = None
    failed = 0
    if opt.ci == "bootstrap":
        rng = np.random.default_rng(opt.seed)
        n = data.n
        logs, survs, rmsts = [], [], []
        for _ in range(opt.n_boot):
            f = rng.multinomial(n, np.full(n, 1.0 / n)).astype(np.float64)
            try:
                rep, _c = tt.estimate(f, coefs)
            except NotEstimable:
                failed += 1
                continue
            logs.append(rep.log_hr)
            survs.append(rep.survival)
            rmsts.append(rep.rmst)
        if len(logs) < 0.9 * opt.n_boot:
            raise NotEstimable(
                f"target_trial: {failed} of {opt.n_boot} bootstrap replicates not estimable"
            )
        boot = np.asarray(logs)
        sv = np.asarray(survs)
        rm = np.asarray(rmsts)
        lo, hi = _pct(boot, level)
        hr_lo, hr_hi = (
            (math.exp(lo), math.exp(hi)) if lo is not None and hi is not None else (None, None)
        )
        se = float(np.std(boot, ddof=1))
        for j in range(nh):
            for a, name in ((0, NEVER), (1, WITHIN_GRACE)):
                s_lo[name][j], s_hi[name][j] = _pct(sv[:, a, j], level)
            d_lo[j], d_hi[j] = _pct(sv[:, 1, j] - sv[:, 0, j], level)
            with np.errstate(divide="ignore", invalid="ignore"):
                rr_lo[j], rr_hi[j] = _pct((1 - sv[:, 1, j]) / (1 - sv[:, 0, j]), level)
        rm_lo, rm_hi = _pct(rm[:, 1] - rm[:, 0], level)
    elif opt.ci == "robust":
        b, se = robust_cox(tt, w)
        z = _z(level)
        hr_lo, hr_hi = math.exp(b - z * se), math.exp(b + z * se)
    r = tt.rows
    counts = {
        "persons": data.n,
        "exposed_within_grace": int(tt.exposed1.sum()),
        "censored_never_at_exposure": int(
            np.sum(
                np.isfinite(np.where(np.isnan(data.exposure_any), np.inf, data.exposure_any))
                & (data.exposure_any <= data.time)
            )
        ),
        "censored_within_grace_at_grace_end": int(tt.censored1.sum()),
        "events_never": int(np.sum(r.event & (r.arm == 0))),
        "events_within_grace": int(np.sum(r.event & (r.arm == 1))),
    }
    wsum = {
        "mean": float(w.mean()),
        "max": float(w.max()),
        "p99": float(np.percentile(w, 99)),
        "min": float(w.min()),
    }
    curves = _curves(tt, w)
    return TargetTrialResult(
        hr=math.exp(point.log_hr),
        hr_lower=hr_lo,
        hr_upper=hr_hi,
        log_hr_se=se,
        horizons=[float(h) for h in opt.horizons],
        survival={NEVER: point.survival[0].tolist(), WITHIN_GRACE: point.survival[1].tolist()},
        survival_lower=s_lo,
        survival_upper=s_hi,
        survival_difference=(point.survival[1] - point.survival[0]).tolist(),
        survival_difference_lower=d_lo,
        survival_difference_upper=d_hi,
        risk_ratio=_risk_ratio(point.survival).tolist(),
        risk_ratio_lower=rr_lo,
        risk_ratio_upper=rr_hi,
        rmst_horizon=opt.tau,
        rmst={NEVER: float(point.rmst[0]), WITHIN_GRACE: float(point.rmst[1])},
        rmst_difference=float(point.rmst[1] - point.rmst[0]),
        rmst_difference_lower=rm_lo,
        rmst_difference_upper=rm_hi,
        ci_method=opt.ci,
        n_boot=opt.n_boot if opt.ci == "bootstrap" else 0,
        n_boot_failed=failed,
        seed=opt.seed,
        n_persons=data.n,
        counts=counts,
        weights=wsum,
        options={
            "grace_days": opt.grace_days,
            "interval_days": opt.interval_days,
            "stabilized": opt.stabilized,
            "truncate_percentile": opt.truncate_percentile,
            "covariates": list(data.covariate_names),
            "censoring_model": "pooled logistic (never clone), logistic at grace end (within-grace clone)",
        },
        curves=curves,
        boot_log_hr=boot,
    )


def robust_cox_fit(tt: TargetTrial, w: FloatArray) -> CoxPH:
    """The weighted Cox model of the strategy on the clone rows with the person-clustered
    robust (sandwich) variance, the weights treated as known: R's
    ``coxph(Surv(start, stop, event) ~ arm, weights = w, cluster = id, ties = "efron")``.
    Clones share a person, so the score residuals are summed per person. Rows with weight
    0 (a within-grace clone whose strategy weight reached 0) contribute nothing and are
    left out (``coxph`` refuses them)."""
    frame = tt.rows.frame()
    frame["weight"] = w
    frame = frame[frame["weight"] > 0]
    fit = CoxPH(robust=True).fit(
        frame["stop"],
        frame["event"],
        frame[["arm"]],
        cluster=frame["id"],
        weights=frame["weight"],
        entry=frame["start"],
    )
    assert fit.robust_se_ is not None
    return fit


def robust_cox(tt: TargetTrial, w: FloatArray) -> tuple[float, float]:
    """Log HR and person-clustered robust SE of :func:`robust_cox_fit`."""
    fit = robust_cox_fit(tt, w)
    assert fit.robust_se_ is not None
    return float(fit.coef_[0]), float(fit.robust_se_[0])


def log_hr_robust(
    data: CloneData, options: TargetTrialOptions | None = None
) -> tuple[float, float, int]:
    """The emulation's weighted-Cox log HR with the person-clustered robust SE only (no
    survival curves, no bootstrap): the cheap variance used for control outcomes
    (docs/diagnostics.md). Returns ``(log HR, robust SE, clone events)``."""
    opt = options or TargetTrialOptions(ci="robust")
    tt = TargetTrial(data, opt)
    coefs = tt.model_coefficients(np.ones(data.n))
    w = tt.weights(coefs=coefs)
    b, se = robust_cox(tt, w)
    return b, se, int(np.sum(tt.rows.event & (w > 0)))


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


def _curves(tt: TargetTrial, w: FloatArray) -> dict[str, dict[str, list[float]]]:
    """Weighted survival step curves per strategy, with unweighted numbers at risk."""
    R, D, _ = tt._sums(w, (w > 0).astype(np.float64))
    ones = np.ones_like(w)
    Rn, _, _ = tt._sums(ones, ones)
    out = {}
    for a, name in ((0, NEVER), (1, WITHIN_GRACE)):
        with np.errstate(divide="ignore", invalid="ignore"):
            haz = np.where(R[a] > 0, D[a] / R[a], 0.0)
        out[name] = {
            "time": tt.times.tolist(),
            "survival": np.cumprod(1 - haz).tolist(),
            "n_risk": Rn[a].tolist(),
        }
    return out


def number_at_risk(tt: TargetTrial, times: Sequence[float]) -> dict[str, list[int]]:
    """Clones at risk (unweighted) per strategy at ``times`` (start < t <= stop)."""
    r = tt.rows
    out = {}
    for a, name in ((0, NEVER), (1, WITHIN_GRACE)):
        m = r.arm == a
        out[name] = [
            int(np.sum(m & (r.start < t) & (r.stop >= t)))
            if t > 0
            else int(np.sum(m & (r.start == 0)))
            for t in times
        ]
    return out
