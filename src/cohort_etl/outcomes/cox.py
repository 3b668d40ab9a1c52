"""Cox proportional hazards regression, written in vectorised numpy.

The estimator follows R ``survival::coxph`` (version 3.x) closely enough to reproduce its
numbers: Efron (default) or Breslow handling of tied event times, stratified partial
likelihood, counting-process ``(start, stop]`` data (left truncation, time-varying
covariates), case weights, Newton-Raphson with step halving and R's stopping rule
(relative change of the log partial likelihood <= ``eps``), model-based and robust
(grouped dfbeta sandwich) variances, and the likelihood-ratio, score and Wald tests.
``cox_zph`` reproduces ``survival::cox.zph`` (score test of proportional hazards, 3.x
definition).

Algorithm
---------
Rows are sorted once by (stratum, stop time descending); the risk-set sums
``S0 = sum w exp(eta)`` and ``S1 = sum w exp(eta) x`` at every distinct event time are
differences of cumulative sums, read at indices found with ``searchsorted``; for
counting-process data the sums over rows that enter at or after the event time are
removed with a second sorted pass. The information matrix never materialises the
``n x p x p`` second moments: ``sum_g c_g S2_g = X' diag(w exp(eta) h) X`` with ``h_i`` the
sum of ``c_g`` over the event times at which row ``i`` is at risk (again a cumulative
sum), and Efron's correction is a per-death term. No Python loop runs over rows.

Examples
--------
>>> import numpy as np
>>> from cohort_etl.outcomes.cox import CoxPH
>>> rng = np.random.default_rng(1)
>>> x = rng.normal(size=200)
>>> t = rng.exponential(1 / np.exp(0.5 * x))
>>> fit = CoxPH().fit(t, np.ones(200), x.reshape(-1, 1))
>>> round(float(fit.coef_[0]), 1)
0.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from cohort_etl.errors import InputDataError, NotEstimable
from cohort_etl.outcomes.checks import (
    as_float_array,
    check_durations,
    check_entry,
    check_events,
    check_finite,
    check_length,
    label,
    z_value,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Ties = Literal["efron", "breslow"]

__all__ = [
    "CoxPH",
    "CoxResult",
    "CoxTest",
    "ZphResult",
    "cox_zph",
]


@dataclass(frozen=True)
class CoxTest:
    """A chi-square test: statistic, degrees of freedom and p-value."""

    statistic: float
    df: int
    p_value: float


@dataclass(frozen=True)
class CoxResult:
    """Everything a fitted :class:`CoxPH` reports.

    ``se`` is the model-based standard error; ``robust_se`` the sandwich one (None unless
    ``cluster`` or ``robust`` was given). Wald z, p, the Wald test and the confidence
    intervals use the robust variance when it exists, as R's ``summary.coxph`` does;
    ``robust_score_test`` is R's "Robust" score test (score residuals at beta = 0).
    """

    names: list[str]
    coef: FloatArray
    se: FloatArray
    robust_se: FloatArray | None
    z: FloatArray
    p_value: FloatArray
    hazard_ratio: FloatArray
    ci_lower: FloatArray
    ci_upper: FloatArray
    conf_level: float
    loglik_null: float
    loglik: float
    lr_test: CoxTest
    score_test: CoxTest
    wald_test: CoxTest
    n: int
    n_events: int
    n_clusters: int | None
    iterations: int
    ties: str
    robust_score_test: CoxTest | None = None
    concordance: float | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> pd.DataFrame:
        """One row per covariate: coef, HR, SEs, z, p and CI bounds of the HR."""
        level = round(100 * self.conf_level)
        frame = pd.DataFrame(
            {
                "coef": self.coef,
                "exp(coef)": self.hazard_ratio,
                "se(coef)": self.se,
            },
            index=pd.Index(self.names, name="covariate"),
        )
        if self.robust_se is not None:
            frame["robust se"] = self.robust_se
        frame["z"] = self.z
        frame["p"] = self.p_value
        frame[f"lower {level}%"] = self.ci_lower
        frame[f"upper {level}%"] = self.ci_upper
        return frame


@dataclass(frozen=True)
class ZphResult:
    """Output of :func:`cox_zph`: a table like R's ``cox.zph(fit)$table``."""

    table: pd.DataFrame
    transform: str


# --------------------------------------------------------------------------- input checks


def _as_1d(values: Any, name: str, n: int | None) -> npt.NDArray[Any]:
    if isinstance(values, pd.DataFrame) and values.shape[1] == 1:
        values = values.iloc[:, 0]
    if isinstance(values, (pd.Series, pd.Index)) and pd.api.types.is_numeric_dtype(values):
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = np.asarray(values)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise InputDataError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise InputDataError(f"{name} has {arr.shape[0]} rows but durations has {n}")
    return arr


def _weights(values: Any, n: int) -> FloatArray:
    name = label(values, "weights")
    w = check_finite(as_float_array(values, name), name)
    check_length(w, n, name)
    return w


def _codes(values: Any, name: str, n: int) -> tuple[IntArray, int]:
    name = label(values, name)
    arr = _as_1d(values, name, n)
    series = pd.Series(arr)
    if series.isna().any():
        raise InputDataError(f"{name} has {int(series.isna().sum())} missing values")
    codes, uniques = pd.factorize(series, sort=True)
    return codes.astype(np.int64), len(uniques)


def _design(X: Any, n: int) -> tuple[FloatArray, list[str]]:
    if isinstance(X, pd.Series):
        X = X.to_frame()
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        if len(set(names)) != len(names):
            dup = next(c for c in names if names.count(c) > 1)
            raise InputDataError(f"covariate column {dup!r} appears more than once in X")
        columns = []
        for name in X.columns:
            col = X[name]
            if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                raise InputDataError(
                    f"covariate column {name!r} is not numeric (dtype {col.dtype}); "
                    "encode categories as indicator columns first"
                )
            columns.append(col.to_numpy(dtype=np.float64, na_value=np.nan))
        mat = np.column_stack(columns) if columns else np.empty((len(X), 0))
    else:
        mat = np.asarray(X, dtype=np.float64)
        if mat.ndim == 1:
            mat = mat.reshape(-1, 1)
        if mat.ndim != 2:
            raise InputDataError(f"X must be two-dimensional, got shape {mat.shape}")
        names = [f"x{j}" for j in range(mat.shape[1])]
    if mat.shape[0] != n:
        raise InputDataError(f"X has {mat.shape[0]} rows but durations has {n}")
    if mat.shape[1] == 0:
        raise InputDataError("X has no covariate columns")
    bad = ~np.isfinite(mat)
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        raise InputDataError(
            f"covariate column {names[j]!r} has {int(bad[:, j].sum())} missing or infinite "
            "values; pass complete cases"
        )
    return np.ascontiguousarray(mat), names


# --------------------------------------------------------------------------- the engine


def _timefix_groups(grid: FloatArray) -> IntArray:
    """Group ids for sorted unique times, merging near-equal neighbours like R's
    ``aeqSurv`` (``coxph(timefix = TRUE)``): a gap <= sqrt(machine eps), absolute or
    relative to the mean absolute time, makes two times one tied time."""
    if grid.shape[0] < 2:
        return np.zeros(grid.shape[0], dtype=np.int64)
    tol = math.sqrt(float(np.finfo(float).eps))
    gaps = np.diff(grid)
    scale = float(np.mean(np.abs(grid)))
    tied = gaps <= tol
    if scale > 0:
        tied |= gaps / scale <= tol
    return np.concatenate([[0], np.cumsum(~tied)]).astype(np.int64)


@dataclass
class _Evaluation:
    loglik: float
    score: FloatArray
    information: FloatArray


class _CoxEngine:
    """Sorted index structures for one data set; evaluates loglik, score and information."""

    def __init__(
        self,
        stop: FloatArray,
        event: npt.NDArray[np.bool_],
        X: FloatArray,
        weights: FloatArray,
        strata: IntArray,
        start: FloatArray | None,
        ties: Ties,
        timefix: bool = True,
    ) -> None:
        n, p = X.shape
        self.n, self.p = n, p
        # Centre the covariates (as R does): eta and the partial likelihood are unchanged.
        self.means = (weights @ X) / weights.sum()

        # Integer codes of every time point so keys are exact (no float comparisons).
        pool = stop if start is None else np.concatenate([stop, start])
        grid = np.unique(pool)
        merged = _timefix_groups(grid) if timefix else np.arange(grid.shape[0])
        n_grid = int(merged[-1]) + 3
        stop_code = merged[np.searchsorted(grid, stop)].astype(np.int64) + 1

        # Order A: stratum ascending, stop time descending. All row-level arrays are kept in
        # this order (``perm`` maps back), so risk-set cumulative sums need no gather.
        key_a = strata * n_grid + (n_grid - 1 - stop_code)
        perm = np.argsort(key_a, kind="stable")
        self.perm = perm
        key_a_sorted = key_a[perm]
        stop, event, weights, strata = stop[perm], event[perm], weights[perm], strata[perm]
        stop_code = stop_code[perm]
        if start is not None:
            start = start[perm]
        self.stop, self.event, self.weights, self.strata, self.start = (
            stop,
            event,
            weights,
            strata,
            start,
        )
        self.X = X[perm]
        self.X -= self.means
        base = strata * n_grid

        # Event groups: distinct (stratum, time) with at least one event, time ascending.
        deaths = np.flatnonzero(event)
        death_key = base[deaths] + stop_code[deaths]
        death_order = np.argsort(death_key, kind="stable")
        self.deaths = deaths[death_order]
        death_key = death_key[death_order]
        first = np.flatnonzero(np.r_[True, death_key[1:] != death_key[:-1]])
        self.group_start = first
        group_key = death_key[first]
        group_stratum = strata[self.deaths[first]]
        group_code = stop_code[self.deaths[first]]
        self.group_time = stop[self.deaths[first]]
        self.group_stratum = group_stratum
        n_groups = first.shape[0]
        self.n_groups = n_groups
        m = np.diff(np.r_[first, self.deaths.shape[0]])
        self.group_size = m
        self.death_group = np.repeat(np.arange(n_groups), m)
        self.X_d = self.X[self.deaths]
        w_death = weights[self.deaths]
        group_weight = np.add.reduceat(w_death, first) if n_groups else np.zeros(0)
        self.group_weight = group_weight

        # Risk set in order A: rows of the stratum with stop >= t_g.
        g_base = group_stratum * n_grid
        self.a_lo = np.searchsorted(key_a_sorted, g_base, side="left")
        self.a_hi = np.searchsorted(key_a_sorted, g_base + (n_grid - 1 - group_code), "right")

        # Order B (counting process): rows with start >= t_g are not at risk at t_g.
        self.has_entry = start is not None
        if start is not None:
            start_code = merged[np.searchsorted(grid, start)].astype(np.int64) + 1
            self.start_code: IntArray | None = start_code
            key_b = base + (n_grid - 1 - start_code)
            self.order_b = np.argsort(key_b, kind="stable")
            key_b_sorted = key_b[self.order_b]
            self.X_b = self.X[self.order_b]
            self.b_lo = np.searchsorted(key_b_sorted, g_base, side="left")
            self.b_hi = np.searchsorted(
                key_b_sorted, g_base + (n_grid - 1 - group_code), side="right"
            )
            lo_key = base + start_code
        else:
            self.start_code = None
            lo_key = base
        self.stop_code = stop_code
        cuts = grid[np.concatenate([[0], np.flatnonzero(np.diff(merged)) + 1])]
        self.stop_fixed = cuts[stop_code - 1]
        # For row i: groups of its stratum with start_i < t_g <= stop_i are [lo_i, hi_i).
        self.row_hi = np.searchsorted(group_key, base + stop_code, side="right")
        self.row_lo = np.searchsorted(group_key, lo_key, side="right")

        # Terms of the Efron (or Breslow) denominator: one per death (Efron) or group.
        if ties == "efron":
            self.term_group = self.death_group
            rank_in_group = np.arange(self.deaths.shape[0]) - np.repeat(first, m)
            self.term_frac = rank_in_group / np.repeat(m, m)
            self.term_wt = np.repeat(group_weight / m, m)
        else:
            self.term_group = np.arange(n_groups)
            self.term_frac = np.zeros(n_groups)
            self.term_wt = group_weight
        self.efron = ties == "efron"

        # Strata boundaries (rows are in order A) for the per-stratum shift of eta.
        self.stratum_first = np.flatnonzero(np.r_[True, strata[1:] != strata[:-1]])
        self.stratum_of_block = strata[self.stratum_first]

    # ---------------------------------------------------------------- risk-set sums
    def _risk(self, eta: FloatArray) -> tuple[FloatArray, FloatArray]:
        """exp(eta - shift) with a per-stratum shift (max eta), and the shift per row."""
        block_max = np.maximum.reduceat(eta, self.stratum_first)
        shift = np.zeros(int(self.strata.max()) + 1)
        shift[self.stratum_of_block] = block_max
        row_shift = shift[self.strata]
        return np.exp(eta - row_shift), row_shift

    def _sums(self, wr: FloatArray) -> tuple[FloatArray, FloatArray]:
        s0, s1 = self._cumulative(wr, self.X, self.a_lo, self.a_hi)
        if self.has_entry:
            e0, e1 = self._cumulative(wr[self.order_b], self.X_b, self.b_lo, self.b_hi)
            s0 = s0 - e0
            s1 = s1 - e1
        return s0, s1

    def _cumulative(
        self, wr_sorted: FloatArray, x_sorted: FloatArray, lo: IntArray, hi: IntArray
    ) -> tuple[FloatArray, FloatArray]:
        """Sums of wr and wr * x over sorted rows [lo, hi) via one in-place cumulative sum."""
        c0 = np.empty(self.n + 1)
        c0[0] = 0.0
        np.cumsum(wr_sorted, out=c0[1:])
        c1 = np.empty((self.n + 1, self.p))
        c1[0] = 0.0
        np.multiply(x_sorted, wr_sorted[:, None], out=c1[1:])
        np.cumsum(c1[1:], axis=0, out=c1[1:])
        return c0[hi] - c0[lo], c1[hi] - c1[lo]

    def _terms(self, wr: FloatArray) -> dict[str, FloatArray]:
        s0, s1 = self._sums(wr)
        g = self.term_group
        if self.efron:
            wr_d = wr[self.deaths]
            d0 = np.add.reduceat(wr_d, self.group_start)
            d1 = np.add.reduceat(wr_d[:, None] * self.X_d, self.group_start, axis=0)
            f = self.term_frac
            denom = s0[g] - f * d0[g]
            numer = s1[g] - f[:, None] * d1[g]
        else:
            denom = s0
            numer = s1
        if np.any(denom <= 0):
            raise NotEstimable("a risk set is empty at an event time (check start/stop times)")
        a = numer / denom[:, None]
        lam = self.term_wt / denom
        return {"denom": denom, "a": a, "lam": lam}

    def _per_group(self, values: FloatArray) -> FloatArray:
        """Sum term-level values within their event group."""
        if not self.efron:
            return values
        return np.add.reduceat(values, self.group_start, axis=0)

    def _row_cumulative(self, per_group: FloatArray) -> FloatArray:
        """For each row, the sum of ``per_group`` over the event groups where it is at risk."""
        if per_group.ndim == 1:
            cum = np.concatenate([[0.0], np.cumsum(per_group)])
        else:
            cum = np.zeros((per_group.shape[0] + 1, per_group.shape[1]))
            np.cumsum(per_group, axis=0, out=cum[1:])
        return cum[self.row_hi] - cum[self.row_lo]

    def evaluate(self, beta: FloatArray) -> _Evaluation:
        eta = self.X @ beta
        r, row_shift = self._risk(eta)
        wr = self.weights * r
        t = self._terms(wr)
        a, lam, denom = t["a"], t["lam"], t["denom"]
        w_d = self.weights[self.deaths]
        loglik = float(w_d @ (eta - row_shift)[self.deaths] - self.term_wt @ np.log(denom))
        score = w_d @ self.X_d - self.term_wt @ a
        # Information: sum_terms lam * (S2 - f D2) - sum_terms wt * a a'.
        h = self._row_cumulative(self._per_group(lam))
        if self.efron:
            h[self.deaths] -= self._per_group(lam * self.term_frac)[self.death_group]
        info = (self.X.T * (wr * h)) @ self.X - (a * self.term_wt[:, None]).T @ a
        return _Evaluation(loglik, score, (info + info.T) / 2)

    def score_residuals(self, beta: FloatArray) -> FloatArray:
        """Unweighted score residuals (R ``residuals(fit, "score")``), rows in input order."""
        eta = self.X @ beta
        r, _ = self._risk(eta)
        wr = self.weights * r
        t = self._terms(wr)
        a, lam = t["a"], t["lam"]
        la = lam[:, None] * a
        h = self._row_cumulative(self._per_group(lam))
        ha = self._row_cumulative(self._per_group(la))
        resid = np.zeros((self.n, self.p))
        if self.efron:
            f = self.term_frac
            h[self.deaths] -= self._per_group(lam * f)[self.death_group]
            ha[self.deaths] -= self._per_group(la * f[:, None])[self.death_group]
            mean_a = self._per_group(a) / self.group_size[:, None]
        else:
            mean_a = a
        resid[self.deaths] += self.X[self.deaths] - mean_a[self.death_group]
        resid -= r[:, None] * (self.X * h[:, None] - ha)
        out = np.empty_like(resid)
        out[self.perm] = resid
        return out

    def zph_parts(self, beta: FloatArray, g: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Score and information of the model augmented with ``x * g(t)`` at ``(beta, 0)``.

        ``g`` holds one value per event group. Returns the score of the ``x * g`` block
        (``sum_g g * Schoenfeld_g``) and the ``2p x 2p`` information matrix built from
        ``sum_g c_g V_g`` for ``c = 1, g, g^2``, each formed like :meth:`evaluate`'s
        information (no per-group ``p x p`` arrays).
        """
        eta = self.X @ beta
        r, _ = self._risk(eta)
        wr = self.weights * r
        t = self._terms(wr)
        a, lam = t["a"], t["lam"]
        w_d = self.weights[self.deaths]
        obs = np.add.reduceat(w_d[:, None] * self.X_d, self.group_start, axis=0)
        schoenfeld = obs - self._per_group(self.term_wt[:, None] * a)
        lam_g = self._per_group(lam)
        lam_f = self._per_group(lam * self.term_frac) if self.efron else None

        def block(c: FloatArray) -> FloatArray:
            h = self._row_cumulative(lam_g * c)
            if lam_f is not None:
                h[self.deaths] -= (lam_f * c)[self.death_group]
            term_c = self.term_wt * c[self.term_group]
            out: FloatArray = (self.X.T * (wr * h)) @ self.X - (a * term_c[:, None]).T @ a
            return (out + out.T) / 2

        p = self.p
        imat = np.zeros((2 * p, 2 * p))
        imat[:p, :p] = block(np.ones_like(g))
        cross = block(g)
        imat[:p, p:] = cross
        imat[p:, :p] = cross.T
        imat[p:, p:] = block(g * g)
        u2: FloatArray = g @ schoenfeld
        return u2, imat


# --------------------------------------------------------------------------- linear algebra


def _cholesky2(mat: FloatArray, toler: float) -> tuple[FloatArray, FloatArray, list[int]]:
    """LDL' decomposition as R's ``cholesky2``: pivots below ``toler * max diag`` are zeroed.

    Returns the unit lower factor L, the diagonal D and the singular column indices.
    """
    p = mat.shape[0]
    work = mat.astype(np.float64).copy()
    eps = toler * max(float(np.max(np.diag(work))) if p else 0.0, 0.0)
    lower = np.eye(p)
    diag = np.zeros(p)
    singular: list[int] = []
    for i in range(p):
        pivot = work[i, i]
        if not math.isfinite(pivot) or pivot < eps or pivot <= 0:
            singular.append(i)
            work[i:, i] = 0.0
            continue
        diag[i] = pivot
        col = work[i + 1 :, i] / pivot
        lower[i + 1 :, i] = col
        work[i + 1 :, i + 1 :] -= np.outer(col, work[i, i + 1 :])
    return lower, diag, singular


def _solve(mat: FloatArray, vec: FloatArray, toler: float) -> tuple[FloatArray, list[int]]:
    """Solve ``mat x = vec`` with singular directions set to zero (R's chsolve2)."""
    lower, diag, singular = _cholesky2(mat, toler)
    y = np.linalg.solve(lower, vec)
    inv_d = np.where(diag > 0, 1.0 / np.where(diag > 0, diag, 1.0), 0.0)
    z = y * inv_d
    x = np.linalg.solve(lower.T, z)
    x[singular] = 0.0
    return x, singular


def _inverse(mat: FloatArray, toler: float) -> tuple[FloatArray, list[int]]:
    p = mat.shape[0]
    inv = np.zeros((p, p))
    singular: list[int] = []
    for j in range(p):
        e = np.zeros(p)
        e[j] = 1.0
        inv[:, j], singular = _solve(mat, e, toler)
    inv[singular, :] = 0.0
    inv[:, singular] = 0.0
    return (inv + inv.T) / 2, singular


def _chi2(stat: float, df: int) -> CoxTest:
    return CoxTest(float(stat), int(df), float(stats.chi2.sf(stat, df)))


# --------------------------------------------------------------------------- estimator


class CoxPH:
    """Cox proportional hazards model (partial likelihood), matching R ``survival::coxph``.

    Parameters
    ----------
    ties
        ``"efron"`` (R's default) or ``"breslow"``.
    conf_level
        Confidence level of the hazard-ratio intervals (0.95).
    robust
        Sandwich (dfbeta) variance; without ``cluster`` each row is its own cluster.
        None (default) follows R: robust when ``cluster`` is given or some weights are not
        whole numbers, model-based otherwise.
    eps
        Convergence: stop when ``|1 - loglik_old / loglik_new| <= eps`` (R: 1e-9).
    iter_max
        Maximum Newton-Raphson iterations (R: 20).
    toler_chol
        Relative pivot tolerance of the Cholesky decomposition (R: eps^0.75).
    toler_inf
        Relative tolerance of the infinite-coefficient check (R: sqrt(eps)).
    allow_infinite
        If False (default) a diverging coefficient (monotone likelihood) or a fit that does
        not converge raises :class:`~cohort_etl.errors.NotEstimable`; if True the fit is
        kept and the problem is listed in ``warnings_``.
    compute_concordance
        Also compute Harrell's concordance (R ``concordance(fit)``); O(n log^2 n).
    timefix
        Treat times closer than sqrt(machine eps) (absolute or relative) as tied, like R's
        ``coxph.control(timefix = TRUE)``; False compares times exactly.

    Attributes
    ----------
    coef_, se_, robust_se_, var_, naive_var_, hazard_ratios_, loglik_, loglik_null_,
    score_, iterations_, warnings_, result_
        Set by :meth:`fit`.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"t": [5, 8, 3, 9, 4, 7], "e": [1, 1, 0, 1, 1, 0],
    ...                   "x": [1.0, 0.0, 0.0, 1.0, 1.0, 0.0]})
    >>> fit = CoxPH().fit(d["t"], d["e"], d[["x"]])
    >>> fit.summary.index.tolist()
    ['x']
    """

    def __init__(
        self,
        ties: Ties = "efron",
        conf_level: float = 0.95,
        robust: bool | None = None,
        eps: float = 1e-9,
        iter_max: int = 20,
        toler_chol: float = float(np.finfo(float).eps) ** 0.75,
        toler_inf: float | None = None,
        allow_infinite: bool = False,
        compute_concordance: bool = False,
        timefix: bool = True,
    ) -> None:
        self.ties = ties
        self.conf_level = conf_level
        self.robust = robust
        self.eps = eps
        self.iter_max = iter_max
        self.toler_chol = toler_chol
        self.toler_inf = toler_inf
        self.allow_infinite = allow_infinite
        self.compute_concordance = compute_concordance
        self.timefix = timefix

    # ---------------------------------------------------------------- fit
    def fit(
        self,
        durations: Any,
        events: Any,
        X: Any,
        strata: Any = None,
        cluster: Any = None,
        weights: Any = None,
        entry: Any = None,
    ) -> CoxPH:
        """Fit the model.

        Parameters
        ----------
        durations
            Follow-up (stop) times, finite and >= 0 (> ``entry`` for counting-process data).
        events
            1 = event at ``durations``, 0 = censored (bool or 0/1).
        X
            Design matrix: DataFrame (column names are kept) or 2-D array.
        strata
            Optional stratum labels: separate baseline hazards (``strata()`` in R).
        cluster
            Optional cluster labels (e.g. person id, matched pair): robust variance from
            the dfbeta residuals summed within cluster (R ``cluster()``).
        weights
            Optional positive case weights.
        entry
            Optional start times of ``(start, stop]`` rows: left truncation or
            time-varying covariates (R ``Surv(start, stop, event)``).

        Returns
        -------
        CoxPH
            self, with fitted attributes set.
        """
        if self.ties not in ("efron", "breslow"):
            raise InputDataError(f"ties must be 'efron' or 'breslow', got {self.ties!r}")
        start: FloatArray | None = None
        if entry is None:
            stop = check_durations(durations)
        else:  # counting-process rows (start, stop]: any finite times, start < stop
            name = label(durations, "durations")
            stop = check_finite(as_float_array(durations, name), name)
            start = check_entry(entry, stop)
        n = stop.shape[0]
        event = check_events(events, n) == 1.0
        matrix, names = _design(X, n)
        w = np.ones(n) if weights is None else _weights(weights, n)
        if (w <= 0).any():
            raise InputDataError("weights must be > 0")
        stratum_codes = (
            np.zeros(n, dtype=np.int64) if strata is None else _codes(strata, "strata", n)[0]
        )
        robust = self.robust
        if robust is None:  # R's default: robust with a cluster or non-integer weights
            robust = cluster is not None or bool(np.any(w != np.floor(w)))
        if cluster is not None and not robust:
            raise InputDataError("cluster was given with robust=False; drop one of them")
        cluster_codes: IntArray | None = None
        n_clusters: int | None = None
        if cluster is not None:
            cluster_codes, n_clusters = _codes(cluster, "cluster", n)
        elif robust:
            cluster_codes, n_clusters = np.arange(n, dtype=np.int64), n

        n_events = int(event.sum())
        if n_events == 0:
            raise NotEstimable("Cox model: there are no events")
        spread = matrix.max(axis=0) - matrix.min(axis=0)
        constant = [names[j] for j in np.flatnonzero(spread == 0)]
        if constant:
            raise NotEstimable(f"Cox model: covariate {constant[0]!r} is constant")

        engine = _CoxEngine(
            stop, event, matrix, w, stratum_codes, start, self.ties, timefix=self.timefix
        )
        self._engine = engine
        p = matrix.shape[1]
        beta = np.zeros(p)
        ev = engine.evaluate(beta)
        loglik_null = ev.loglik
        step, singular = _solve(ev.information, ev.score, self.toler_chol)
        if singular:
            bad_names = ", ".join(repr(names[j]) for j in singular)
            raise NotEstimable(
                f"Cox model: covariate {bad_names} is collinear with the others or constant "
                "within strata (information matrix singular)"
            )
        score_stat = float(ev.score @ step)
        new_beta = beta + step
        loglik_old = loglik_null
        halving = False
        converged = False
        iterations = 0
        new = ev
        for it in range(1, self.iter_max + 1):
            iterations = it
            new = engine.evaluate(new_beta)
            finite = math.isfinite(new.loglik) and bool(np.all(np.isfinite(new.score)))
            if finite and abs(1 - loglik_old / new.loglik) <= self.eps and not halving:
                converged = True
                break
            if it == self.iter_max:
                break
            if not finite or new.loglik < loglik_old:
                halving = True
                new_beta = (new_beta + beta) / 2
            else:
                halving = False
                loglik_old = new.loglik
                step, _ = _solve(new.information, new.score, self.toler_chol)
                beta = new_beta
                new_beta = new_beta + step

        coef = new_beta
        var, singular = _inverse(new.information, self.toler_chol)
        warnings: list[str] = []
        if not converged:
            warnings.append(f"Ran out of iterations ({self.iter_max}) and did not converge")
        else:
            toler_inf = math.sqrt(self.eps) if self.toler_inf is None else self.toler_inf
            infs = np.abs(new.score @ var)
            flag = ~np.isfinite(new.score) | ((infs > self.eps) & (infs > toler_inf * np.abs(coef)))
            if flag.any():
                which = ", ".join(repr(names[j]) for j in np.flatnonzero(flag))
                warnings.append(
                    f"Loglik converged before variable {which}; coefficient may be infinite "
                    "(monotone likelihood, e.g. no events in one group)"
                )
        if singular:
            warnings.append(
                "information matrix singular at the fit for "
                + ", ".join(repr(names[j]) for j in singular)
            )
        if warnings and not self.allow_infinite:
            raise NotEstimable("Cox model: " + "; ".join(warnings))

        se = np.sqrt(np.diag(var))
        robust_se: FloatArray | None = None
        robust_score: CoxTest | None = None
        naive_var = var
        used_var = var
        if cluster_codes is not None:
            resid = engine.score_residuals(coef) * w[:, None]
            dfbeta = resid @ var
            n_cl = int(cluster_codes.max()) + 1
            collapsed = np.zeros((n_cl, p))
            np.add.at(collapsed, cluster_codes, dfbeta)
            used_var = collapsed.T @ collapsed
            robust_se = np.sqrt(np.diag(used_var))
            # Robust score test (R's "Robust = ..."): score residuals at beta = 0.
            resid0 = engine.score_residuals(np.zeros(p)) * w[:, None]
            collapsed0 = np.zeros((n_cl, p))
            np.add.at(collapsed0, cluster_codes, resid0)
            u0 = collapsed0.sum(axis=0)
            step0, _ = _solve(collapsed0.T @ collapsed0, u0, self.toler_chol)
            robust_score = _chi2(float(u0 @ step0), p)
        used_se = np.sqrt(np.diag(used_var))
        z = coef / used_se
        pvals = 2 * stats.norm.sf(np.abs(z))
        zq = z_value(self.conf_level)
        wald_step, _ = _solve(used_var, coef, self.toler_chol)
        concordance = (
            _concordance(
                engine.stop_code,
                engine.event,
                engine.X @ coef,
                engine.strata,
                engine.weights,
                engine.start_code,
            )
            if self.compute_concordance
            else None
        )
        with np.errstate(over="ignore"):
            hazard_ratio = np.exp(coef)
            ci_lower = np.exp(coef - zq * used_se)
            ci_upper = np.exp(coef + zq * used_se)
        result = CoxResult(
            names=names,
            coef=coef,
            se=se,
            robust_se=robust_se,
            z=z,
            p_value=pvals,
            hazard_ratio=hazard_ratio,
            ci_lower=ci_lower,
            ci_upper=ci_upper,
            conf_level=self.conf_level,
            loglik_null=loglik_null,
            loglik=new.loglik,
            lr_test=_chi2(2 * (new.loglik - loglik_null), p),
            score_test=_chi2(score_stat, p),
            wald_test=_chi2(float(coef @ wald_step), p),
            robust_score_test=robust_score,
            n=n,
            n_events=n_events,
            n_clusters=n_clusters,
            iterations=iterations,
            ties=self.ties,
            concordance=concordance,
            warnings=warnings,
        )
        self.result_ = result
        self.names_ = names
        self.coef_ = coef
        self.se_ = se
        self.robust_se_ = robust_se
        self.var_ = used_var
        self.naive_var_ = naive_var
        self.hazard_ratios_ = hazard_ratio
        self.loglik_ = new.loglik
        self.loglik_null_ = loglik_null
        self.score_ = new.score
        self.iterations_ = iterations
        self.warnings_ = warnings
        self.ties_ = self.ties
        self.means_ = engine.means
        return self

    @property
    def summary(self) -> pd.DataFrame:
        """Per-covariate table (see :meth:`CoxResult.summary`)."""
        return self.result_.summary()


# --------------------------------------------------------------------------- concordance


def _dominance(
    group: IntArray,
    pos: IntArray,
    rank: IntArray,
    weight: FloatArray,
    q_group: IntArray,
    q_bound: IntArray,
    q_rank: IntArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """For each query: weighted counts of points of its group with ``pos >= q_bound`` and
    ``rank < q_rank``, ``rank == q_rank``, and any rank.

    Offline 2-D dominance counting, vectorised over the bits of ``rank`` (a wavelet-tree
    decomposition): ``rank_j < r`` iff at the highest differing bit ``rank_j`` has 0 and
    ``r`` has 1, so each bit level is a grouped suffix sum found with ``searchsorted``.
    """
    n_pos = int(max(pos.max(initial=0), q_bound.max(initial=0))) + 2

    def suffix(prefix: IntArray, q_prefix: IntArray, mask: npt.NDArray[np.bool_]) -> FloatArray:
        key = prefix * n_pos + pos
        order = np.argsort(key, kind="stable")
        key_sorted = key[order]
        cum = np.concatenate([[0.0], np.cumsum(np.where(mask, weight, 0.0)[order])])
        # Sorted needles make searchsorted cache-friendly (it narrows from the last hit).
        q_key = q_prefix * n_pos + q_bound
        q_order = np.argsort(q_key)
        lo = np.empty(q_key.shape[0], dtype=np.int64)
        hi = np.empty(q_key.shape[0], dtype=np.int64)
        lo[q_order] = np.searchsorted(key_sorted, q_key[q_order], side="left")
        hi[q_order] = np.searchsorted(key_sorted, (q_prefix[q_order] + 1) * n_pos, side="left")
        out: FloatArray = cum[hi] - cum[lo]
        return out

    n_rank = int(max(rank.max(initial=0), q_rank.max(initial=0))) + 1
    levels = max(1, int(n_rank - 1).bit_length())
    g_shift = 1 << levels
    all_mask = np.ones(rank.shape[0], dtype=bool)
    total = suffix(group, q_group, all_mask)
    equal = suffix(group * g_shift + rank, q_group * g_shift + q_rank, all_mask)
    less = np.zeros(q_rank.shape[0])
    for level in range(levels):
        bit = (rank >> level) & 1
        q_bit = (q_rank >> level) & 1
        prefix = group * g_shift + (rank >> (level + 1))
        q_prefix = q_group * g_shift + (q_rank >> (level + 1))
        part = suffix(prefix, q_prefix, bit == 0)
        less += np.where(q_bit == 1, part, 0.0)
    return less, equal, total


def _concordance(
    stop_code: IntArray,
    event: npt.NDArray[np.bool_],
    risk: FloatArray,
    strata: IntArray,
    weights: FloatArray,
    start_code: IntArray | None,
) -> float:
    """Harrell's C as R ``concordance(fit)``: each event is compared with the rows at risk
    at its time (same stratum; censored at the same time counts as at risk, other events
    at the same time do not); ties in the linear predictor count 1/2; pairs weigh
    ``w_i * w_j``. Times come as the engine's integer codes (near-ties already merged).
    O(n log^2 n), no Python loop over rows.
    """
    r_unique = np.unique(risk)
    rank = np.searchsorted(r_unique, risk).astype(np.int64)
    # Time order: (stop, event first) so "after t_i" = stop > t_i or (stop == t_i, censored).
    key = 2 * stop_code + (~event).astype(np.int64)
    ev = np.flatnonzero(event)
    q_group = strata[ev]
    q_rank = rank[ev]
    q_bound = 2 * stop_code[ev] + 1  # first key after the event block of t_i
    less, equal, total = _dominance(strata, key, rank, weights, q_group, q_bound, q_rank)
    if start_code is not None:
        # Remove rows that enter at or after t_i (start_j >= t_i).
        l2, e2, t2 = _dominance(strata, start_code, rank, weights, q_group, stop_code[ev], q_rank)
        less, equal, total = less - l2, equal - e2, total - t2
    w_ev = weights[ev]
    comparable = float(w_ev @ total)
    if comparable <= 0:
        raise NotEstimable("concordance: no comparable pairs")
    return float(w_ev @ (less + 0.5 * equal)) / comparable


# --------------------------------------------------------------------------- cox.zph


def _km_left(
    stop: npt.NDArray[Any], event: npt.NDArray[np.bool_], start: npt.NDArray[Any] | None
) -> Any:
    """Unweighted KM over all rows (any ordered time values, e.g. integer time codes);
    returns a function t -> S(t-) (left-continuous), as ``cox.zph``'s "km" transform."""
    times = np.unique(stop[event])
    if start is None:
        at_risk = stop.shape[0] - np.searchsorted(np.sort(stop), times, side="left")
    else:
        at_risk = (stop.shape[0] - np.searchsorted(np.sort(stop), times, side="left")) - (
            stop.shape[0] - np.searchsorted(np.sort(start), times, side="left")
        )
    deaths = np.bincount(np.searchsorted(times, stop[event]), minlength=times.shape[0])
    surv = np.cumprod(1 - deaths / at_risk)

    def left(t: npt.NDArray[Any]) -> FloatArray:
        idx = np.searchsorted(times, t, side="left")  # number of event times < t
        return np.concatenate([[1.0], surv])[idx]

    return left


def cox_zph(
    fit: CoxPH,
    transform: Literal["km", "rank", "identity", "log"] = "km",
) -> ZphResult:
    """Test of proportional hazards, as R ``survival::cox.zph`` (survival >= 3.0).

    For every covariate the model is augmented with ``x * g(t)`` (``g`` the transformed
    event time, centred on its mean over events) and the score test of that term is
    computed at the fitted coefficients with the full augmented information matrix;
    ``GLOBAL`` tests all terms jointly.

    Parameters
    ----------
    fit
        A fitted :class:`CoxPH` (the same data are reused).
    transform
        ``"km"`` (1 - left-continuous KM of all rows), ``"rank"`` (rank of the row times),
        ``"identity"`` or ``"log"``.

    Returns
    -------
    ZphResult
        ``table`` indexed by covariate and ``GLOBAL`` with columns chisq, df, p.
    """
    if not hasattr(fit, "_engine"):
        raise NotEstimable("cox_zph: the Cox model has not been fitted")
    engine: _CoxEngine = fit._engine
    # Times after the timefix merge (R's cox.zph sees the aeqSurv-adjusted times).
    stop, event = engine.stop_fixed, engine.event
    stop_code, start_code = engine.stop_code, engine.start_code
    if transform == "identity":
        ttimes = stop
    elif transform == "log":
        ttimes = np.log(stop)
    elif transform == "rank":
        ttimes = stats.rankdata(stop_code)
    elif transform == "km":
        ttimes = 1 - _km_left(stop_code, event, start_code)(stop_code)
    else:
        raise InputDataError(f"cox_zph: unknown transform {transform!r}")
    gtime = ttimes - ttimes[event].mean()
    # g per event group (all deaths of a group share the time).
    g = gtime[engine.deaths[engine.group_start]]
    p = engine.p
    u2, imat = engine.zph_parts(fit.coef_, g)
    rows = []
    u_full = np.concatenate([np.zeros(p), u2])
    for j in range(p):
        kk = list(range(p)) + [p + j]
        sub = imat[np.ix_(kk, kk)]
        u = np.concatenate([np.zeros(p), [u2[j]]])
        stat = float(np.linalg.solve(sub, u) @ u)
        rows.append((fit.names_[j], stat, 1, float(stats.chi2.sf(stat, 1))))
    stat = float(np.linalg.solve(imat, u_full) @ u_full)
    rows.append(("GLOBAL", stat, p, float(stats.chi2.sf(stat, p))))
    table = pd.DataFrame(rows, columns=["term", "chisq", "df", "p"]).set_index("term")
    return ZphResult(table=table, transform=transform)
