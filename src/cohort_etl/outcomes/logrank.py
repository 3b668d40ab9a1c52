"""Log-rank and G-rho tests as ``survival::survdiff``, stratified and poolable across
sites, and the Mantel-Byar test for an exposure that starts during follow-up.

For each event time ``t`` (within a stratum) with ``n`` at risk and ``d`` events, of
which ``n_j`` / ``d_j`` in group ``j``, and weight ``w = S(t-)^rho`` (``S`` the pooled
Kaplan-Meier of the stratum, so ``rho = 0`` is the log-rank test and ``rho = 1`` the
Peto-Peto modification of Gehan-Wilcoxon)::

    O_j = sum w d_j        E_j = sum w d n_j / n
    V_jk = sum w^2 d (n - d) / (n - 1) * n_j / n * (delta_jk - n_k / n)

summed over strata; chi-square ``(O - E)' V^-1 (O - E)`` on the groups with ``E > 0``
less one, with ``df`` that number of groups minus one (as survdiff).

Examples
--------
>>> res = logrank_test([1, 2, 3, 4, 5, 6], [1, 1, 1, 1, 1, 0], ["a", "b", "a", "b", "a", "b"])
>>> res.df
1
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from cohort_etl.errors import InputDataError
from cohort_etl.outcomes.checks import (
    ArrayLike,
    FloatArray,
    as_float_array,
    check_durations,
    check_events,
    check_length,
)


@dataclass(frozen=True)
class LogRankResult:
    """Result of a (stratified, weighted) log-rank test.

    Attributes
    ----------
    groups : list
        Group labels, sorted (R factor-level order).
    n : ndarray
        Number of subjects per group (Mantel-Byar: subjects ever in the group).
    observed, expected : ndarray
        Weighted observed and expected events per group, summed over strata.
    variance : ndarray
        ``k x k`` variance matrix of ``O - E``.
    chi_square, df, p_value
        The test; None with ``reason`` when not estimable (e.g. no events).
    per_stratum : DataFrame
        One row per stratum and group: stratum, group, n, observed, expected,
        o_minus_e, variance (the group's diagonal variance), for federated pooling.
    """

    groups: list[Any]
    n: NDArray[np.float64]
    observed: NDArray[np.float64]
    expected: NDArray[np.float64]
    variance: NDArray[np.float64]
    chi_square: float | None
    df: int
    p_value: float | None
    rho: float
    per_stratum: pd.DataFrame = field(repr=False)
    stratified: bool = False
    reason: str | None = None

    @property
    def estimable(self) -> bool:
        """False when the statistic could not be computed (see ``reason``)."""
        return self.chi_square is not None

    @property
    def o_minus_e(self) -> NDArray[np.float64]:
        """Observed minus expected per group."""
        return self.observed - self.expected

    def summary(self) -> pd.DataFrame:
        """Per-group table as ``print(survdiff(...))``."""
        oe = self.observed - self.expected
        with np.errstate(divide="ignore", invalid="ignore"):
            return pd.DataFrame(
                {
                    "group": self.groups,
                    "n": self.n,
                    "observed": self.observed,
                    "expected": self.expected,
                    "(O-E)^2/E": oe**2 / self.expected,
                    "(O-E)^2/V": oe**2 / np.diag(self.variance),
                }
            )


def _chi_square(
    obs: FloatArray, exp: FloatArray, var: FloatArray
) -> tuple[float | None, int, float | None, str | None]:
    keep = exp > 0
    df = int(keep.sum()) - 1
    if df < 1:
        return None, max(df, 0), None, "not estimable: fewer than two groups with expected events"
    oe = (obs - exp)[keep][1:]
    vv = var[np.ix_(keep, keep)][1:, 1:]
    try:
        chi = float(oe @ np.linalg.solve(vv, oe))
    except np.linalg.LinAlgError:
        return None, df, None, "not estimable: singular variance matrix"
    return chi, df, float(stats.chi2.sf(chi, df)), None


def _stratum_sums(
    start: FloatArray,
    stop: FloatArray,
    event: FloatArray,
    code: NDArray[np.int64],
    k: int,
    rho: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """O, E, V of one stratum; rows are at risk on (start, stop]."""
    death_times = np.unique(stop[event > 0])
    nt = death_times.size
    obs = np.zeros(k)
    if nt == 0:
        return obs, np.zeros(k), np.zeros((k, k))
    n_j = np.zeros((nt, k))
    d_j = np.zeros((nt, k))
    for j in range(k):
        m = code == j
        st = np.sort(stop[m])
        sa = np.sort(start[m])
        # stop >= t  minus  start >= t   ->   start < t <= stop
        n_j[:, j] = (st.size - np.searchsorted(st, death_times, side="left")) - (
            sa.size - np.searchsorted(sa, death_times, side="left")
        )
        dm = m & (event > 0)
        d_j[:, j] = np.bincount(
            np.searchsorted(death_times, stop[dm]), weights=event[dm], minlength=nt
        )
    n = n_j.sum(axis=1)
    d = d_j.sum(axis=1)
    if rho != 0:
        km = np.cumprod(1.0 - d / n)
        wt = np.concatenate([[1.0], km[:-1]]) ** rho
    else:
        wt = np.ones(nt)
    obs = (wt[:, None] * d_j).sum(axis=0)
    frac = n_j / n[:, None]
    exp = (wt[:, None] * d[:, None] * frac).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(n > 1, wt**2 * d * (n - d) / (n - 1), 0.0)
    var = np.diag((scale[:, None] * frac).sum(axis=0)) - np.einsum("t,tj,tk->jk", scale, frac, frac)
    return obs, exp, var


def _encode(values: ArrayLike, n: int, name: str) -> tuple[list[Any], NDArray[np.int64]]:
    arr = np.asarray(values, dtype=object)
    check_length(arr, n, name)
    if pd.isna(pd.Series(arr)).any():
        raise InputDataError(f"{name}: missing label")
    levels = sorted(set(arr.tolist()))
    lookup = {lv: i for i, lv in enumerate(levels)}
    return levels, np.array([lookup[v] for v in arr.tolist()], dtype=np.int64)


def _logrank_counting(
    start: FloatArray,
    stop: FloatArray,
    event: FloatArray,
    code: NDArray[np.int64],
    levels: list[Any],
    strata_code: NDArray[np.int64],
    strata_levels: list[Any],
    rho: float,
    n_per_group: FloatArray,
    stratified: bool,
) -> LogRankResult:
    k = len(levels)
    if k < 2:
        raise InputDataError(f"groups: only one group ({levels[0]!r}); the test needs at least two")
    obs = np.zeros(k)
    exp = np.zeros(k)
    var = np.zeros((k, k))
    rows = []
    for s, slabel in enumerate(strata_levels):
        m = strata_code == s
        o, e, v = _stratum_sums(start[m], stop[m], event[m], code[m], k, rho)
        obs += o
        exp += e
        var += v
        for j, glabel in enumerate(levels):
            rows.append(
                {
                    "stratum": slabel,
                    "group": glabel,
                    "n": float(np.sum(code[m] == j)),
                    "observed": o[j],
                    "expected": e[j],
                    "o_minus_e": o[j] - e[j],
                    "variance": v[j, j],
                }
            )
    chi, df, p, reason = _chi_square(obs, exp, var)
    if event.sum() == 0:
        reason = "not estimable: no events"
    return LogRankResult(
        groups=levels,
        n=n_per_group,
        observed=obs,
        expected=exp,
        variance=var,
        chi_square=chi,
        df=df,
        p_value=p,
        rho=rho,
        per_stratum=pd.DataFrame(rows),
        stratified=stratified,
        reason=reason,
    )


def logrank_test(
    durations: ArrayLike,
    events: ArrayLike,
    groups: ArrayLike,
    strata: ArrayLike | None = None,
    rho: float = 0.0,
    entry: ArrayLike | None = None,
) -> LogRankResult:
    """Log-rank (``rho = 0``) or G-rho test for two or more groups, as ``survdiff``.

    Parameters
    ----------
    durations, events : array-like
        Follow-up time (>= 0) and event indicator (0/1).
    groups : array-like
        Group label per subject (two or more distinct labels).
    strata : array-like, optional
        Stratum label per subject: O, E and V are computed within strata and summed
        (``survdiff(... + strata(s))``); a federated site is one stratum.
    rho : float
        G-rho weight exponent: weights ``S(t-)^rho``.
    entry : array-like, optional
        Delayed-entry times (at risk on (entry, duration]).

    Returns
    -------
    LogRankResult
    """
    t = check_durations(durations)
    n = t.size
    e = check_events(events, n)
    rho = float(rho)
    if not math.isfinite(rho) or rho < 0:
        raise InputDataError(f"rho: must be a finite number >= 0, got {rho!r}")
    levels, code = _encode(groups, n, "groups")
    if strata is None:
        slevels: list[Any] = [None]
        scode = np.zeros(n, dtype=np.int64)
    else:
        slevels, scode = _encode(strata, n, "strata")
    if entry is None:
        start = np.full(n, -np.inf)
    else:
        start = as_float_array(entry, "entry")
        check_length(start, n, "entry")
        bad = ~np.isfinite(start) | (start >= t)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputDataError(f"entry: must be finite and < durations (position {i})")
    n_per = np.bincount(code, minlength=len(levels)).astype(float)
    return _logrank_counting(
        start, t, e, code, levels, scode, slevels, rho, n_per, strata is not None
    )


def pool_logrank(results: Sequence[LogRankResult]) -> LogRankResult:
    """Pool per-site log-rank results into the site-stratified test.

    Sums O, E and V over sites (each site one stratum), aligning groups by label (a
    group absent at a site contributes nothing there): this equals the stratified
    log-rank on the pooled individual data, without sharing it.
    """
    if not results:
        raise InputDataError("results: nothing to pool")
    rho = results[0].rho
    if any(r.rho != rho for r in results):
        raise InputDataError("results: rho differs between sites")
    try:
        groups = sorted({g for r in results for g in r.groups})
    except TypeError:
        raise InputDataError("results: group labels of different types across sites") from None
    k = len(groups)
    pos = {g: i for i, g in enumerate(groups)}
    obs, exp, n = np.zeros(k), np.zeros(k), np.zeros(k)
    var = np.zeros((k, k))
    for r in results:
        ix = np.array([pos[g] for g in r.groups])
        obs[ix] += r.observed
        exp[ix] += r.expected
        n[ix] += r.n
        var[np.ix_(ix, ix)] += r.variance
    frames = []
    for i, r in enumerate(results):
        f = r.per_stratum.copy()
        f["site"] = i
        frames.append(f)
    chi, df, p, reason = _chi_square(obs, exp, var)
    return LogRankResult(
        groups=list(groups),
        n=n,
        observed=obs,
        expected=exp,
        variance=var,
        chi_square=chi,
        df=df,
        p_value=p,
        rho=rho,
        per_stratum=pd.concat(frames, ignore_index=True),
        stratified=True,
        reason=reason,
    )


def mantel_byar_test(
    durations: ArrayLike,
    events: ArrayLike,
    switch_times: ArrayLike,
    strata: ArrayLike | None = None,
) -> LogRankResult:
    """Mantel-Byar test for an exposure that starts during follow-up.

    Each subject is unexposed from 0 to its ``switch_times`` value and exposed after it
    (NaN = never exposed within follow-up; a switch at 0 means exposed from the start).
    The test is the log-rank test with subjects moving from the unexposed to the exposed
    risk set at their switch time, i.e. the score test of a Cox model with the exposure
    as a time-varying covariate on (start, stop] data (exact-likelihood score). An event
    at the switch time itself counts as unexposed.

    Returns
    -------
    LogRankResult
        Groups ``[0, 1]`` (unexposed, exposed); ``n`` counts subjects who contributed
        time to each group.
    """
    t = check_durations(durations)
    n = t.size
    e = check_events(events, n)
    sw = as_float_array(switch_times, "switch_times")
    check_length(sw, n, "switch_times")
    if np.isinf(sw).any() or (sw < 0).any():
        i = int(np.flatnonzero(np.isinf(sw) | (sw < 0))[0])
        raise InputDataError(f"switch_times: must be >= 0 or NaN (never), position {i}")
    if strata is None:
        slevels: list[Any] = [None]
        scode = np.zeros(n, dtype=np.int64)
    else:
        slevels, scode = _encode(strata, n, "strata")
    switched = ~np.isnan(sw) & (sw < t)
    at_zero = switched & (sw <= 0)
    pre = switched & ~at_zero  # two rows: (0, sw] unexposed, (sw, t] exposed
    never = ~switched
    # rows: unexposed full follow-up, exposed from the start, unexposed part, exposed part
    start = np.concatenate([np.full(never.sum(), -np.inf), np.full(at_zero.sum(), -np.inf),
                            np.full(pre.sum(), -np.inf), sw[pre]])  # fmt: skip
    stop = np.concatenate([t[never], t[at_zero], sw[pre], t[pre]])
    event = np.concatenate([e[never], e[at_zero], np.zeros(pre.sum()), e[pre]])
    code = np.concatenate([np.zeros(never.sum()), np.ones(at_zero.sum()),
                           np.zeros(pre.sum()), np.ones(pre.sum())]).astype(np.int64)  # fmt: skip
    srow = np.concatenate([scode[never], scode[at_zero], scode[pre], scode[pre]])
    n_per = np.array([float(never.sum() + pre.sum()), float(switched.sum())])
    if n_per[1] == 0:
        raise InputDataError("switch_times: nobody is exposed during follow-up")
    return _logrank_counting(
        start, stop, event, code, [0, 1], srow, slevels, 0.0, n_per, strata is not None
    )
