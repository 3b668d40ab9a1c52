"""Binary outcomes: risks per arm, risk difference / ratio / odds ratio with CIs, and the
tests R offers for 2x2 and r x c tables (``prop.test``, ``chisq.test``, ``fisher.test``).

Conventions: arm 1 is the treated / exposed arm, arm 0 the comparator; a 2x2 table is
``[[events_1, non_events_1], [events_0, non_events_0]]``. Estimates that cannot be
computed (an empty arm, a zero cell under a log scale) come back with ``estimate`` and/or
the limits None and ``reason`` saying why; nothing is silently NaN.

Examples
--------
>>> r = compare_proportions(97, 122, 68, 122)
>>> round(r.risk_difference.estimate, 4)
0.2377
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, stats
from scipy.special import gammaln

from cohort_etl.errors import InputDataError, NotEstimable
from cohort_etl.outcomes.checks import z_value

# R fisher.test and chisq.test compare probabilities with this relative tolerance.
_REL_ERR = 1.0 + 1e-7
MAX_TABLES = 2_000_000


@dataclass(frozen=True)
class Estimate:
    """A point estimate with confidence interval; None parts come with a ``reason``."""

    estimate: float | None
    lower: float | None
    upper: float | None
    method: str
    reason: str | None = None

    @property
    def estimable(self) -> bool:
        """True when the point estimate and both limits are available."""
        return self.estimate is not None and self.lower is not None and self.upper is not None


@dataclass(frozen=True)
class ProportionComparison:
    """Two-arm comparison of a binary outcome (arm 1 vs arm 0)."""

    events_1: int
    n_1: int
    events_0: int
    n_0: int
    risk_1: Estimate
    risk_0: Estimate
    risk_difference: Estimate
    risk_difference_newcombe: Estimate
    risk_ratio: Estimate
    odds_ratio: Estimate
    z_statistic: float | None
    p_value: float | None
    p_method: str
    reason: str | None = None


@dataclass(frozen=True)
class TestResult:
    """A test of association in a contingency table."""

    method: str
    statistic: float | None
    df: int | None
    p_value: float | None
    expected: NDArray[np.float64] | None = None
    estimate: float | None = None
    conf_int: tuple[float, float] | None = None
    reason: str | None = None


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------
def _count(value: Any, name: str) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise InputDataError(f"{name}: not a number ({value!r})") from None
    if not math.isfinite(f) or f < 0 or f != int(f):
        raise InputDataError(f"{name}: must be a non-negative whole number, got {value!r}")
    return int(f)


def check_table(table: Any, name: str = "table") -> NDArray[np.float64]:
    """A contingency table of non-negative whole counts, at least 2 x 2."""
    try:
        arr = np.asarray(table, dtype=float)
    except (TypeError, ValueError):
        raise InputDataError(f"{name}: not a numeric table") from None
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 2:
        raise InputDataError(f"{name}: needs at least 2 rows and 2 columns, got shape {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any() or (arr != np.round(arr)).any():
        raise InputDataError(f"{name}: counts must be non-negative whole numbers")
    return arr


# --------------------------------------------------------------------------------------
# single proportions and two-arm comparison
# --------------------------------------------------------------------------------------
def wilson_interval(events: int, n: int, conf_level: float = 0.95) -> Estimate:
    """Proportion with the Wilson score interval (R ``prop.test(x, n, correct = FALSE)``)."""
    x = _count(events, "events")
    n = _count(n, "n")
    if x > n:
        raise InputDataError(f"events: {x} exceeds n = {n}")
    if n == 0:
        return Estimate(None, None, None, "wilson", reason="not estimable: empty arm (n = 0)")
    z = z_value(conf_level)
    p = x / n
    z22n = z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z22n / (2 * n))
    lower = 0.0 if p <= 0 else (p + z22n - half) / (1 + 2 * z22n)
    upper = 1.0 if p >= 1 else (p + z22n + half) / (1 + 2 * z22n)
    return Estimate(p, lower, upper, "wilson")


def compare_proportions(
    events_1: int, n_1: int, events_0: int, n_0: int, conf_level: float = 0.95
) -> ProportionComparison:
    """Risk per arm, RD, RR and OR with CIs and the two-proportion z-test.

    - Risk difference: Wald interval with unpooled variance
      ``RD -/+ z sqrt(p1 q1 / n1 + p0 q0 / n0)`` (TriNetX; R ``prop.test(correct=FALSE)``)
      and Newcombe's hybrid score interval (his method 10, from Wilson limits).
    - Risk ratio and odds ratio: Wald intervals on the log scale
      (``sqrt(1/a - 1/n1 + 1/c - 1/n0)`` and ``sqrt(1/a + 1/b + 1/c + 1/d)``).
    - p: two-sided z-test with pooled variance, equal to Pearson's chi-square without
      continuity correction (R ``prop.test(correct = FALSE)``).
    """
    a = _count(events_1, "events_1")
    n1 = _count(n_1, "n_1")
    c = _count(events_0, "events_0")
    n0 = _count(n_0, "n_0")
    if a > n1:
        raise InputDataError(f"events_1: {a} exceeds n_1 = {n1}")
    if c > n0:
        raise InputDataError(f"events_0: {c} exceeds n_0 = {n0}")
    z = z_value(conf_level)
    r1 = wilson_interval(a, n1, conf_level)
    r0 = wilson_interval(c, n0, conf_level)
    if n1 == 0 or n0 == 0:
        why = f"not estimable: empty arm ({'n_1' if n1 == 0 else 'n_0'} = 0)"
        none = Estimate(None, None, None, "", reason=why)
        return ProportionComparison(
            a, n1, c, n0, r1, r0,
            Estimate(None, None, None, "wald-unpooled", why),
            Estimate(None, None, None, "newcombe-hybrid-score", why),
            Estimate(None, None, None, "wald-log", why),
            Estimate(None, None, None, "wald-log", why),
            None, None, "z-test (pooled)", reason=none.reason,
        )  # fmt: skip
    b, d = n1 - a, n0 - c
    p1, p0 = a / n1, c / n0
    rd = p1 - p0
    se_rd = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    rd_wald = Estimate(rd, rd - z * se_rd, rd + z * se_rd, "wald-unpooled")
    assert r1.lower is not None and r1.upper is not None
    assert r0.lower is not None and r0.upper is not None
    rd_nc = Estimate(
        rd,
        rd - math.sqrt((p1 - r1.lower) ** 2 + (r0.upper - p0) ** 2),
        rd + math.sqrt((r1.upper - p1) ** 2 + (p0 - r0.lower) ** 2),
        "newcombe-hybrid-score",
    )
    # risk ratio
    if a == 0 or c == 0:
        rr_point = None if c == 0 else 0.0
        rr = Estimate(
            rr_point, None, None, "wald-log",
            reason="not estimable on the log scale: zero events in "
            + ("both arms" if a == 0 and c == 0 else ("arm 1" if a == 0 else "arm 0")),
        )  # fmt: skip
    else:
        lrr = math.log(p1 / p0)
        se = math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n0)
        rr = Estimate(p1 / p0, math.exp(lrr - z * se), math.exp(lrr + z * se), "wald-log")
    # odds ratio
    if min(a, b, c, d) == 0:
        zero = [nm for nm, v in (("a", a), ("b", b), ("c", c), ("d", d)) if v == 0]
        point = None if (b == 0 or c == 0) else 0.0
        orr = Estimate(
            point, None, None, "wald-log",
            reason=f"not estimable on the log scale: zero cell(s) {', '.join(zero)}",
        )  # fmt: skip
    else:
        lor = math.log((a * d) / (b * c))
        se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
        orr = Estimate(
            (a * d) / (b * c), math.exp(lor - z * se), math.exp(lor + z * se), "wald-log"
        )
    pbar = (a + c) / (n1 + n0)
    se0 = math.sqrt(pbar * (1 - pbar) * (1 / n1 + 1 / n0))
    if se0 == 0:
        zstat, p, reason = None, None, "z-test not estimable: all or no subjects have the outcome"
    else:
        zstat = rd / se0
        p = float(2 * stats.norm.sf(abs(zstat)))
        reason = None
    return ProportionComparison(
        a, n1, c, n0, r1, r0, rd_wald, rd_nc, rr, orr, zstat, p, "z-test (pooled)", reason
    )


# --------------------------------------------------------------------------------------
# chi-square
# --------------------------------------------------------------------------------------
def expected_counts(table: Any) -> NDArray[np.float64]:
    """Expected counts under independence."""
    x = check_table(table)
    total = x.sum()
    if total == 0:
        raise NotEstimable("table: all counts are zero")
    return np.outer(x.sum(axis=1), x.sum(axis=0)) / total


def chi_square_test(table: Any, correct: bool = True) -> TestResult:
    """Pearson's chi-square test as R ``chisq.test`` (Yates correction on 2x2 if ``correct``)."""
    x = check_table(table)
    if x.sum() == 0:
        return TestResult(
            "pearson-chi-square", None, None, None, reason="not estimable: empty table"
        )
    e = np.outer(x.sum(axis=1), x.sum(axis=0)) / x.sum()
    if (e == 0).any():
        return TestResult(
            "pearson-chi-square", None, None, None, expected=e,
            reason="not estimable: a row or column total is zero",
        )  # fmt: skip
    yates = 0.0
    method = "pearson-chi-square"
    if correct and x.shape == (2, 2):
        yates = float(min(0.5, np.abs(x - e).min()))
        method = "pearson-chi-square-yates"
    stat = float((((np.abs(x - e) - yates) ** 2) / e).sum())
    df = (x.shape[0] - 1) * (x.shape[1] - 1)
    return TestResult(method, stat, df, float(stats.chi2.sf(stat, df)), expected=e)


# --------------------------------------------------------------------------------------
# Fisher's exact test
# --------------------------------------------------------------------------------------
def _lfact(k: Any) -> Any:
    return gammaln(np.asarray(k, dtype=float) + 1.0)


def _fisher_2x2(x: NDArray[np.float64], conf_level: float) -> TestResult:
    m = x[:, 0].sum()
    n = x[:, 1].sum()
    k = x[0, :].sum()
    x11 = int(x[0, 0])
    lo = int(max(0, k - n))
    hi = int(min(k, m))
    support = np.arange(lo, hi + 1, dtype=float)
    logdc = stats.hypergeom.logpmf(support, m + n, m, k)

    def dens(log_ncp: float) -> NDArray[np.float64]:
        d = logdc + log_ncp * support
        d = np.exp(d - d.max())
        return np.asarray(d / d.sum(), dtype=float)

    def mean(log_ncp: float) -> float:
        return float((support * dens(log_ncp)).sum())

    def cdf_lower(log_ncp: float) -> float:  # P(X <= x11)
        return float(dens(log_ncp)[support <= x11].sum())

    def cdf_upper(log_ncp: float) -> float:  # P(X >= x11)
        return float(dens(log_ncp)[support >= x11].sum())

    d1 = dens(0.0)
    obs = d1[x11 - lo]
    p = float(min(1.0, d1[d1 <= obs * _REL_ERR].sum()))

    def solve(fun: Any, target: float) -> float:
        # fun is monotone in log(ncp); widen the bracket until the sign changes
        a_, b_ = -1.0, 1.0
        while (fun(a_) - target) * (fun(b_) - target) > 0:
            a_, b_ = a_ * 2, b_ * 2
            if b_ > 1e4:
                raise NotEstimable("fisher: could not bracket the odds-ratio root")
        root = optimize.brentq(lambda t: fun(t) - target, a_, b_, xtol=1e-14, rtol=1e-14)
        return math.exp(root)

    if x11 == lo:
        est = 0.0
    elif x11 == hi:
        est = math.inf
    else:
        est = solve(mean, float(x11))
    alpha = (1 - conf_level) / 2
    lower = 0.0 if x11 == lo else solve(cdf_upper, alpha)
    upper = math.inf if x11 == hi else solve(cdf_lower, alpha)
    return TestResult(
        "fisher-exact", None, None, p, estimate=est, conf_int=(lower, upper),
        expected=np.outer(x.sum(axis=1), x.sum(axis=0)) / x.sum(),
    )  # fmt: skip


def _compositions(total: int, caps: Sequence[int]) -> list[tuple[int, ...]]:
    """All vectors v with sum(v) == total and 0 <= v[j] <= caps[j]."""
    out: list[tuple[int, ...]] = []
    c = len(caps)
    suffix = [0] * (c + 1)
    for j in range(c - 1, -1, -1):
        suffix[j] = suffix[j + 1] + caps[j]

    def rec(j: int, left: int, acc: list[int]) -> None:
        if j == c - 1:
            if left <= caps[j]:
                out.append((*acc, left))
            return
        lo = max(0, left - suffix[j + 1])
        for v in range(lo, min(caps[j], left) + 1):
            acc.append(v)
            rec(j + 1, left - v, acc)
            acc.pop()

    if total <= suffix[0]:
        rec(0, total, [])
    return out


def _column_bounds(c: int, caps: Sequence[int], lf: NDArray[np.float64]) -> tuple[float, float]:
    """Max and min of ``-sum_i log(n_i!)`` over ``sum n_i = c``, ``0 <= n_i <= caps[i]``.

    The function is Schur-concave, so the most even split gives the max and filling the
    largest caps first the min.
    """
    # most even: over ascending caps each row takes its cap or an equal share of the rest
    left, rows_left, even = c, len(caps), []
    for cap in sorted(caps):
        share = min(cap, left // rows_left)
        even.append(share)
        left -= share
        rows_left -= 1
    # concentrated: largest caps first
    left, conc = c, []
    for cap in sorted(caps, reverse=True):
        take = min(cap, left)
        conc.append(take)
        left -= take
    hi = -float(sum(lf[v] for v in even))
    lo = -float(sum(lf[v] for v in conc))
    return hi, lo


def _fisher_rxc(x: NDArray[np.float64]) -> TestResult:
    """Exact p for an r x c table, network-algorithm style.

    Columns are filled one at a time; partial tables reaching the same multiset of
    remaining row totals are merged (keeping each distinct partial probability with its
    multiplicity). A node is settled without enumeration when even its most (least)
    likely completion is at most (above) the observed table's probability: its whole
    completion mass (a closed form) is added, or it is dropped.
    """
    if x.shape[0] > x.shape[1]:
        x = x.T  # keep the multiset state over the shorter side
    rows = [int(v) for v in x.sum(axis=1)]
    cols = sorted((int(v) for v in x.sum(axis=0)), reverse=True)
    total = sum(rows)
    lf = np.asarray(_lfact(np.arange(total + 1)), dtype=float)
    const = float(sum(lf[r] for r in rows) + sum(lf[c] for c in cols) - lf[total])
    obs_lp = const - float(np.asarray(_lfact(x)).sum())
    threshold = obs_lp + math.log(_REL_ERR)
    ncol = len(cols)
    suffix_cols = [sum(cols[j:]) for j in range(ncol + 1)]
    bound_cache: dict[tuple[int, tuple[int, ...]], tuple[float, float]] = {}

    def bounds(j: int, state: tuple[int, ...]) -> tuple[float, float]:
        key = (j, state)
        if key not in bound_cache:
            hi = lo = 0.0
            for c in cols[j:]:
                h, low = _column_bounds(c, state, lf)
                hi += h
                lo += low
            bound_cache[key] = (hi, lo)
        return bound_cache[key]

    def completion_mass(j: int, state: tuple[int, ...]) -> float:
        # log sum over completions of prod 1/n_ij! = log(N! / (prod r! prod c!))
        return float(lf[suffix_cols[j]] - sum(lf[r] for r in state) - sum(lf[c] for c in cols[j:]))

    p_total = 0.0
    Pasts = tuple[NDArray[np.float64], NDArray[np.float64]]  # values, multiplicities
    stage: dict[tuple[int, ...], Pasts] = {tuple(sorted(rows)): (np.zeros(1), np.ones(1))}
    nodes = 0
    for j, c in enumerate(cols):
        pending: dict[tuple[int, ...], list[Pasts]] = {}
        for state, (vals, mults) in stage.items():
            hi, lo = bounds(j, state)
            all_in = const + vals + hi <= threshold
            if all_in.any():
                mass = completion_mass(j, state)
                p_total += float((mults[all_in] * np.exp(const + vals[all_in] + mass)).sum())
            keep = ~all_in & (const + vals + lo <= threshold)
            if not keep.any():
                continue
            vals, mults = vals[keep], mults[keep]
            for comp in _compositions(c, list(state)):
                nodes += 1
                if nodes > MAX_TABLES:
                    raise NotEstimable(
                        f"fisher: table too large for the exact test (> {MAX_TABLES:,} "
                        "network steps); use the chi-square test or collapse categories"
                    )
                step = -float(sum(lf[v] for v in comp))
                child = tuple(sorted(r - v for r, v in zip(state, comp, strict=True)))
                pending.setdefault(child, []).append((vals + step, mults))
        stage = {}
        for child, parts in pending.items():
            v = np.concatenate([pv for pv, _ in parts])
            m = np.concatenate([pm for _, pm in parts])
            keys, first, inv = np.unique(np.round(v * 1e9), return_index=True, return_inverse=True)
            summed = np.bincount(inv, weights=m, minlength=keys.size).astype(np.float64)
            stage[child] = (v[first].astype(np.float64), summed)
    for vals, mults in stage.values():
        ok = const + vals <= threshold
        p_total += float((mults[ok] * np.exp(const + vals[ok])).sum())
    return TestResult(
        "fisher-exact", None, None, float(min(1.0, p_total)),
        expected=np.outer(x.sum(axis=1), x.sum(axis=0)) / x.sum(),
    )  # fmt: skip


def fisher_test(table: Any, conf_level: float = 0.95) -> TestResult:
    """Fisher's exact test as R ``fisher.test`` (two-sided).

    A 2x2 table also gets the conditional maximum-likelihood odds ratio and its exact
    interval (noncentral hypergeometric), solved to full precision (R uses ``uniroot``
    with tolerance ~1e-4). For r x c tables the p-value sums the probabilities of every
    table with the observed margins no more likely than the observed one.
    """
    x = check_table(table)
    z_value(conf_level)
    # drop empty rows / columns, as the p-value does not depend on them
    x = x[x.sum(axis=1) > 0][:, x.sum(axis=0) > 0]
    if x.shape[0] < 2 or x.shape[1] < 2:
        return TestResult(
            "fisher-exact", None, None, 1.0,
            reason="degenerate table: fewer than two non-empty rows or columns",
        )  # fmt: skip
    if x.shape == (2, 2):
        return _fisher_2x2(x, conf_level)
    return _fisher_rxc(x)


def association_test(table: Any, correct: bool = True, min_expected: float = 5.0) -> TestResult:
    """Choose and run the test that fits the table.

    Fisher's exact test when any expected count is below ``min_expected`` (the usual
    rule), otherwise Pearson's chi-square (Yates-corrected on 2x2 when ``correct``).
    The result's ``method`` says which test was used and ``reason`` why.
    """
    x = check_table(table)
    e = expected_counts(x)
    if (e < min_expected).any():
        res = fisher_test(x)
        why = f"Fisher: smallest expected count {e.min():.3g} < {min_expected:g}"
    else:
        res = chi_square_test(x, correct=correct)
        why = f"chi-square: every expected count >= {min_expected:g} (min {e.min():.3g})"
    return TestResult(
        res.method, res.statistic, res.df, res.p_value, expected=e,
        estimate=res.estimate, conf_int=res.conf_int,
        reason=why if res.reason is None else f"{why}; {res.reason}",
    )  # fmt: skip
