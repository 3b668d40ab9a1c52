"""Cox likelihood profiles for federated pooling (OHDSI EvidenceSynthesis's "grid with
gradients"), and their fixed- and random-effects pooling.

Site side
    :func:`cox_profile` evaluates the site's log partial likelihood (Efron ties, optional
    strata, as ``coxph``) of one coefficient ``beta_j`` on a grid over ``[log 0.01,
    log 100]``, maximised over the other coefficients of the model (a profile), together
    with its derivative (the score of ``beta_j`` at the profiled point; envelope theorem).
    :func:`marginal_grid` integrates the site's profile against a normal random-effects
    density: ``m(mu, tau) = log int L(b) N(b; mu, tau^2) db`` on a fixed (mu, tau) grid
    (tau = 0 is ``log L(mu)``), by a discrete normal on a 0.005-spaced grid of b within
    the bounds (the site's profile Hermite-interpolated there).

Coordinator side (on sums over sites only)
    Fixed effect: the summed profile is interpolated with cubic Hermite polynomials
    (values and gradients), maximised; the 95% CI is where it drops by
    ``qchisq(0.95, 1) / 2`` (likelihood-ratio interval). For two-arm models each site's
    profile is its exact log-likelihood, so the sum is the site-stratified Cox likelihood
    (``coxph(... + strata(site))``) up to interpolation. For models with other terms each
    site adds a second-order expansion of its log-likelihood in them (around its own
    profiled values in pass 1, around the pooled values of the previous pass, the
    "anchors", in a refinement pass), and the coordinator maximises the summed expansion
    over common other coefficients (:func:`combine_profile`): a Newton step per pass.
    Random effects (Bayesian, as ``computeBayesianMetaAnalysis``: normal prior on mu with
    SD 2, half-normal prior on tau with SD 0.5): the posterior on the (mu, tau) grid is
    ``exp(sum_i m_i(mu, tau))`` times the priors, integrated by the trapezoidal rule
    (deterministic quadrature instead of MCMC); reported are the posterior median of mu
    and of tau and 95% highest-density intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from cohort_etl.errors import CohortEtlError, InputDataError, NotEstimable
from cohort_etl.network.keys import PROFILE_LOWER, PROFILE_UPPER
from cohort_etl.outcomes.cox import _CoxEngine

FINE_STEP = 0.005
MU_STEP = 0.01
TAU_GRID = tuple([0.0, 0.025] + [round(0.05 * i, 2) for i in range(1, 21)] + [1.25, 1.5, 2.0])
PRIOR_SD_MU = 2.0
PRIOR_SD_TAU = 0.5
LR_DROP = float(stats.chi2.ppf(0.95, 1)) / 2


INNER_HALF_WIDTH = 0.25
INNER_POINTS = 101


def profile_grid(points: int) -> np.ndarray:
    """The network's profile grid: ``points`` equally spaced over [log 0.01, log 100] and
    101 more over [-0.25, 0.25] (step 0.005), where the per-unit coefficients of
    continuous covariates (age in years, ...) lie: their log-likelihood is too peaked
    for a 0.115 spacing."""
    outer = np.linspace(PROFILE_LOWER, PROFILE_UPPER, points)
    inner = np.linspace(-INNER_HALF_WIDTH, INNER_HALF_WIDTH, INNER_POINTS)
    return np.unique(np.round(np.concatenate([outer, inner]), 12))


def mu_grid() -> np.ndarray:
    n = int(round((PROFILE_UPPER - PROFILE_LOWER) / MU_STEP))
    return np.linspace(PROFILE_LOWER, PROFILE_LOWER + n * MU_STEP, n + 1)


def fine_grid() -> np.ndarray:
    n = int(round((PROFILE_UPPER - PROFILE_LOWER) / FINE_STEP))
    return np.linspace(PROFILE_LOWER, PROFILE_LOWER + n * FINE_STEP, n + 1)


class _Profiler:
    """Profile log-likelihood of coefficient ``j`` of one site's Cox model."""

    def __init__(
        self,
        time: Any,
        event: Any,
        X: Any,
        strata: Any = None,
        j: int = 0,
        entry: Any = None,
        weights: Any = None,
    ) -> None:
        t = np.asarray(time, dtype=float)
        e = np.asarray(event, dtype=float) > 0
        x = np.asarray(X, dtype=float)
        if x.ndim == 1:
            x = x.reshape(-1, 1)
        start = None if entry is None else np.asarray(entry, dtype=float)
        w = np.ones(t.shape[0]) if weights is None else np.asarray(weights, dtype=float)
        if not (t.shape[0] == e.shape[0] == x.shape[0] == w.shape[0]) or (
            start is not None and start.shape[0] != t.shape[0]
        ):
            raise InputDataError(
                "cox profile: time, event, X, entry and weights have different lengths"
            )
        if not np.all(np.isfinite(w) & (w > 0)):
            raise InputDataError("cox profile: weights must be finite and > 0 (drop 0 rows)")
        if strata is None:
            codes = np.zeros(t.shape[0], dtype=np.int64)
        else:
            _, codes = np.unique(np.asarray(strata).astype(str), return_inverse=True)
            codes = codes.astype(np.int64)
        self.events = int(e.sum())
        self.p = x.shape[1]
        self.j = j
        self.others = [k for k in range(self.p) if k != j]
        # centred columns: the partial likelihood, score and information do not change
        # (exp(c beta) cancels within every risk set), but exp(x beta) stays in range at
        # the grid's ends (beta_j up to log 100 with x in years or months)
        if x.shape[0]:  # a site with nobody in the population (e.g. at a landmark)
            x = x - x.mean(axis=0)
        self.engine = _CoxEngine(t, e, x, w, codes, start, "efron") if self.events else None
        self.nuisance = np.zeros(len(self.others))

    def _beta(self, b: float, rest: np.ndarray) -> np.ndarray:
        beta = np.zeros(self.p)
        beta[self.j] = b
        beta[self.others] = rest
        return beta

    def _evaluate(self, b: float, rest: np.ndarray) -> Any:
        """The engine at ``(b, rest)``, or None where a Newton trial step of the nuisance
        makes the likelihood uncomputable (weights out of floating-point range)."""
        assert self.engine is not None
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            try:
                ev = self.engine.evaluate(self._beta(b, rest))
            except (CohortEtlError, FloatingPointError, ValueError):
                return None
        finite = np.isfinite(ev.loglik) and np.all(np.isfinite(ev.score))
        return ev if finite and np.all(np.isfinite(ev.information)) else None

    def at(self, b: float) -> tuple[float, float]:
        """(profile log-likelihood, its derivative) at ``beta_j = b``."""
        row = self.expansion(b)
        return float(row[0]), float(row[1])

    def expansion(self, b: float, anchor: np.ndarray | None = None) -> np.ndarray:
        """At ``beta_j = b``, the nuisance ``g`` profiled (or fixed at ``anchor``, the
        network's pooled nuisance of a previous pass): value, derivative, and the additive
        pieces of the second-order expansion ``l(g) ~ l - (g' A g - 2 g' B + C) / 2`` in
        the nuisance (module docs): ``A = I_oo`` (flattened), ``B = I_oo g + s_o``,
        ``C = g' I_oo g + 2 s_o' g``, ``I_jo``, ``I_jo g`` (``s_o`` the nuisance score,
        about 0 where profiled)."""
        q = len(self.others)
        if self.engine is None:
            return np.zeros(2 + q * q + 2 * q + 2)
        rest = self.nuisance.copy() if anchor is None else np.asarray(anchor, dtype=float)
        ev = self._evaluate(b, rest)
        if ev is None and anchor is None:  # the warm start is out of range: start at 0
            rest = np.zeros(q)
            ev = self._evaluate(b, rest)
        if ev is None:
            raise NotEstimable(f"cox profile: log-likelihood not computable at {b}")
        if self.others and anchor is None:
            o = self.others
            for _ in range(60):
                try:
                    step = np.linalg.lstsq(ev.information[np.ix_(o, o)], ev.score[o],
                                           rcond=None)[0]  # fmt: skip
                except np.linalg.LinAlgError:
                    break
                new = rest + step
                new_ev = self._evaluate(b, new)
                halvings = 0
                while new_ev is None or not (
                    np.isfinite(new_ev.loglik) and new_ev.loglik >= ev.loglik - 1e-12
                ):
                    step /= 2
                    new = rest + step
                    new_ev = self._evaluate(b, new)
                    halvings += 1
                    if halvings > 30:
                        break
                if new_ev is None:  # no step keeps the likelihood computable: stay
                    break
                converged = abs(new_ev.loglik - ev.loglik) <= 1e-11 * max(1.0, abs(ev.loglik))
                rest, ev = new, new_ev
                if converged and float(np.max(np.abs(step))) < 1e-8:
                    break
            self.nuisance = rest
        if not np.isfinite(ev.loglik):
            raise NotEstimable(f"cox profile: log-likelihood not finite at {b}")
        o = self.others
        i_oo = ev.information[np.ix_(o, o)]
        i_jo = ev.information[self.j, o]
        s_o = ev.score[o]
        return np.concatenate([[ev.loglik, ev.score[self.j]], i_oo.ravel(), i_oo @ rest + s_o,
                               [rest @ i_oo @ rest + 2 * s_o @ rest], i_jo, [i_jo @ rest]])  # fmt: skip

    def along(
        self, grid: np.ndarray, full: bool = False, anchors: np.ndarray | None = None
    ) -> np.ndarray:
        """Rows of :meth:`expansion` on a grid (only value and derivative unless
        ``full``), walking out from the grid's middle (warm starts); with ``anchors``
        (one nuisance vector per grid point) at those instead of profiled."""
        width = 2 + len(self.others) ** 2 + 2 * len(self.others) + 2
        out = np.empty((grid.shape[0], width))
        if anchors is not None:
            if anchors.shape != (grid.shape[0], len(self.others)):
                raise InputDataError(f"cox profile: anchors of shape {anchors.shape}, expected "
                                     f"{(grid.shape[0], len(self.others))}")  # fmt: skip
            for idx in range(grid.shape[0]):
                out[idx] = self.expansion(float(grid[idx]), anchors[idx])
            return out if full else out[:, :2]
        mid = int(np.argmin(np.abs(grid)))
        start = self.nuisance.copy()
        for idx in range(mid, grid.shape[0]):
            out[idx] = self.expansion(float(grid[idx]))
        self.nuisance = start
        for idx in range(mid - 1, -1, -1):
            out[idx] = self.expansion(float(grid[idx]))
        return out if full else out[:, :2]


def cox_profile(
    time: Any,
    event: Any,
    X: Any,
    strata: Any = None,
    j: int = 0,
    points: int = 81,
    entry: Any = None,
    anchors: np.ndarray | None = None,
    weights: Any = None,
) -> np.ndarray:
    """The site's profile block on the network grid: one row per grid point with value,
    derivative and the second-order nuisance pieces (:meth:`_Profiler.expansion`).
    ``entry``: start times of counting-process (start, stop] rows (time-varying models);
    ``anchors``: the nuisance to expand at, per grid point (a refinement pass);
    ``weights``: case weights (> 0) of a weighted Cox model, as ``coxph(weights = )``
    (the target-trial emulation's inverse-probability weights, treated as known)."""
    prof = _Profiler(time, event, X, strata, j, entry, weights)
    return prof.along(profile_grid(points), full=True, anchors=anchors)


def combine_profile(
    block: np.ndarray, q: int, nuisance: list[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Values and derivatives of the pooled profile from the summed blocks of the sites.

    Each site expanded its log-likelihood to second order in the nuisance ``g`` around
    its own profiled ``g_i``; the sum is maximised over a common ``g``:
    ``g* = (sum I_i)^-1 sum I_i g_i``, value ``sum l_i - (g*' A g* - 2 g*' B + c) / 2``,
    derivative ``sum d_i - (E' g* - f)``. With no nuisance (q = 0) it is the plain sum."""
    vals = block[:, 0].copy()
    grads = block[:, 1].copy()
    if q == 0:
        return vals, grads
    for r in range(block.shape[0]):
        row = block[r, 2:]
        a = row[: q * q].reshape(q, q)
        bvec = row[q * q : q * q + q]
        c = row[q * q + q]
        e = row[q * q + q + 1 : q * q + 2 * q + 1]
        f = row[q * q + 2 * q + 1]
        g = np.linalg.lstsq(a, bvec, rcond=None)[0]
        if nuisance is not None:
            nuisance.append(g)
        vals[r] -= (g @ a @ g - 2 * g @ bvec + c) / 2
        grads[r] -= e @ g - f
    return vals, grads


def marginal_grid(block: np.ndarray, points: int) -> np.ndarray:
    """``m(mu, tau)`` on :func:`mu_grid` x ``TAU_GRID`` (row per tau), see module docs,
    from the site's own profile block (values and derivatives on the profile grid,
    Hermite-interpolated to the 0.005-spaced grid of b)."""
    fine = fine_grid()
    vals = hermite(fine, profile_grid(points), block[:, 0], block[:, 1])
    mus = mu_grid()
    idx = np.rint((mus - fine[0]) / FINE_STEP).astype(int)
    out = np.empty((len(TAU_GRID), mus.shape[0]))
    for r, tau in enumerate(TAU_GRID):
        if tau == 0:
            out[r] = vals[idx]
            continue
        z = (fine[None, :] - mus[:, None]) / tau
        logw = -0.5 * z * z
        logw -= np.log(np.exp(logw - logw.max(axis=1, keepdims=True)).sum(axis=1,
                       keepdims=True)) + logw.max(axis=1, keepdims=True)  # fmt: skip
        a = logw + vals[None, :]
        amax = a.max(axis=1, keepdims=True)
        out[r] = (amax + np.log(np.exp(a - amax).sum(axis=1, keepdims=True))).ravel()
    return out


# -- coordinator ------------------------------------------------------------------------------
def hermite(x: np.ndarray | float, grid: np.ndarray, vals: np.ndarray, grads: np.ndarray) -> Any:
    """Cubic Hermite interpolation of (values, gradients) on ``grid``; linear outside."""
    xs = np.atleast_1d(np.asarray(x, dtype=float))
    out = np.empty(xs.shape[0])
    for n, xv in enumerate(xs):
        if xv <= grid[0]:
            out[n] = vals[0] + (xv - grid[0]) * grads[0]
            continue
        if xv >= grid[-1]:
            out[n] = vals[-1] + (xv - grid[-1]) * grads[-1]
            continue
        i = int(np.searchsorted(grid, xv, side="right") - 1)
        h = grid[i + 1] - grid[i]
        t = (xv - grid[i]) / h
        out[n] = ((2 * t**3 - 3 * t**2 + 1) * vals[i] + (t**3 - 2 * t**2 + t) * h * grads[i]
                  + (-2 * t**3 + 3 * t**2) * vals[i + 1] + (t**3 - t**2) * h * grads[i + 1])  # fmt: skip
    return out if np.ndim(x) else float(out[0])


def _hermite_slope(xv: float, grid: np.ndarray, vals: np.ndarray, grads: np.ndarray) -> float:
    i = int(min(max(np.searchsorted(grid, xv, side="right") - 1, 0), grid.shape[0] - 2))
    h = grid[i + 1] - grid[i]
    t = (xv - grid[i]) / h
    return float((6 * t**2 - 6 * t) * vals[i] / h + (3 * t**2 - 4 * t + 1) * grads[i]
                 + (-6 * t**2 + 6 * t) * vals[i + 1] / h + (3 * t**2 - 2 * t) * grads[i + 1])  # fmt: skip


@dataclass(frozen=True)
class ProfileEstimate:
    estimate: float | None
    lower: float | None
    upper: float | None
    se: float | None
    loglik_max: float | None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        def ex(v: float | None) -> float | None:
            return None if v is None else math.exp(v)

        return {
            "estimate": self.estimate,
            "lower": self.lower,
            "upper": self.upper,
            "se": self.se,
            "hr": ex(self.estimate),
            "hr_lower": ex(self.lower),
            "hr_upper": ex(self.upper),
            "loglik_max": self.loglik_max,
            "reason": self.reason,
        }


def pooled_profile_estimate(
    grid: np.ndarray, vals: np.ndarray, grads: np.ndarray
) -> ProfileEstimate:
    """Maximum and likelihood-ratio 95% CI of a (summed) profile; not estimable when the
    maximum or a CI bound lies on the edge of the grid."""
    f = lambda x: _hermite_slope(x, grid, vals, grads)  # noqa: E731
    sign_change = [i for i in range(grid.shape[0] - 1) if grads[i] > 0 >= grads[i + 1]]
    if not sign_change:
        edge = "upper" if grads[-1] > 0 else "lower"
        return ProfileEstimate(None, None, None, None, None,
                               f"not estimable: the likelihood is maximal at the {edge} bound "
                               f"of the grid (e.g. no events in one arm)")  # fmt: skip
    best: tuple[float, float] | None = None
    for i in sign_change:
        lo, hi = float(grid[i]), float(grid[i + 1])
        root = lo if f(lo) <= 0 else (hi if f(hi) >= 0 else optimize.brentq(f, lo, hi, xtol=1e-13))
        value = float(hermite(root, grid, vals, grads))
        if best is None or value > best[1]:
            best = (root, value)
    assert best is not None
    est, top = best
    target = top - LR_DROP
    g = lambda x: float(hermite(x, grid, vals, grads)) - target  # noqa: E731
    lower = upper = None
    if g(float(grid[0])) < 0:
        lower = optimize.brentq(g, float(grid[0]), est, xtol=1e-12)
    if g(float(grid[-1])) < 0:
        upper = optimize.brentq(g, est, float(grid[-1]), xtol=1e-12)
    reason = None if lower is not None and upper is not None else (
        "confidence interval reaches the bound of the grid")  # fmt: skip
    crit = float(stats.norm.ppf(0.975))
    se = (upper - lower) / (2 * crit) if lower is not None and upper is not None else None
    return ProfileEstimate(est, lower, upper, se, top, reason)


def _hdi(x: np.ndarray, density: np.ndarray, mass: float = 0.95) -> tuple[float, float]:
    """Highest-density interval of a density on a grid (cells of the grid)."""
    w = density / density.sum()
    order = np.argsort(-w)
    keep = order[: int(np.searchsorted(np.cumsum(w[order]), mass) + 1)]
    return float(x[keep].min()), float(x[keep].max())


def _median(x: np.ndarray, density: np.ndarray) -> float:
    cdf = np.cumsum(density / density.sum())
    return float(np.interp(0.5, cdf, x))


def bayesian_random_effects(marginal: np.ndarray) -> dict[str, Any]:
    """Posterior of (mu, tau) from the summed site marginals ``sum_i m_i`` (rows: tau)."""
    mus = mu_grid()
    taus = np.asarray(TAU_GRID)
    logpost = (marginal + stats.norm.logpdf(mus, 0, PRIOR_SD_MU)[None, :]
               + (stats.halfnorm.logpdf(taus, 0, PRIOR_SD_TAU))[:, None])  # fmt: skip
    post = np.exp(logpost - logpost.max())
    # trapezoidal weights on the uneven tau grid and the even mu grid
    wt = np.zeros_like(taus)
    wt[1:] += np.diff(taus) / 2
    wt[:-1] += np.diff(taus) / 2
    mu_density = (post * wt[:, None]).sum(axis=0)
    tau_density = post.sum(axis=1) * MU_STEP * wt
    tau_density_cells = post.sum(axis=1) * wt
    lo, hi = _hdi(mus, mu_density)
    tlo, thi = _hdi(taus, tau_density_cells)
    mu = _median(mus, mu_density)
    del tau_density
    return {
        "method": "Bayesian normal-normal on likelihood profiles (grid quadrature)",
        "prior_sd_mu": PRIOR_SD_MU,
        "prior_sd_tau": PRIOR_SD_TAU,
        "mu": mu,
        "mu_lower": lo,
        "mu_upper": hi,
        "hr": math.exp(mu),
        "hr_lower": math.exp(lo),
        "hr_upper": math.exp(hi),
        "tau": _median(taus, tau_density_cells),
        "tau_lower": tlo,
        "tau_upper": thi,
    }


# -- robust (sandwich) variance of a weighted model, summed over sites --------------------------
def sandwich_pieces(
    time: Any,
    event: Any,
    X: Any,
    beta: float,
    entry: Any = None,
    weights: Any = None,
    cluster: Any = None,
    strata: Any = None,
) -> np.ndarray:
    """``(U, A, B)`` of the site's weighted Cox model of one coefficient at ``beta`` (a
    network-wide value, the anchor of a refinement pass): the score ``U``, the information
    ``A`` (minus the second derivative of the weighted log partial likelihood, Efron
    ties) and ``B = sum_i (sum_{r in i} w_r s_r)^2`` over clusters ``i`` (persons) of
    the weighted score residuals ``s_r`` (R ``residuals(fit, "score")``). Persons belong
    to one site and the sites are strata of the union's model, so the sums over sites
    are the union's ``U``, ``A`` and ``B`` and ``sqrt(B) / A`` its person-clustered
    robust SE (``coxph(..., weights = w, cluster = id)``, whose sandwich is
    ``V B V`` with ``V = A^-1``)."""
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float) > 0
    if not e.any():  # no event (or no rows: no emulation at the site): adds nothing
        return np.zeros(3)
    x = np.asarray(X, dtype=float).reshape(t.shape[0], -1)
    if x.shape[1] != 1:
        raise InputDataError(f"sandwich pieces: one coefficient, got {x.shape[1]} columns")
    w = np.ones(t.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    if not np.all(np.isfinite(w) & (w > 0)):
        raise InputDataError("sandwich pieces: weights must be finite and > 0 (drop 0 rows)")
    start = None if entry is None else np.asarray(entry, dtype=float)
    if strata is None:
        codes = np.zeros(t.shape[0], dtype=np.int64)
    else:
        _, codes = np.unique(np.asarray(strata).astype(str), return_inverse=True)
        codes = codes.astype(np.int64)
    if cluster is None:
        groups = np.arange(t.shape[0])
    else:
        _, groups = np.unique(np.asarray(cluster).astype(str), return_inverse=True)
    engine = _CoxEngine(t, e, x - x.mean(axis=0), w, codes, start, "efron")
    b = np.array([float(beta)])
    ev = engine.evaluate(b)
    resid = engine.score_residuals(b)[:, 0] * w
    per = np.bincount(np.asarray(groups).reshape(-1), weights=resid)
    return np.array([float(ev.score[0]), float(ev.information[0, 0]), float(per @ per)])
