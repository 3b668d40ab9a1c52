"""Empirical calibration from negative (and positive) controls.

Follows the definitions of OHDSI EmpiricalCalibration (Schuemie et al., Stat Med 2014;
PNAS 2018); the code here is written from the formulas, not ported.

Empirical null
    Each negative control ``i`` has an estimated log hazard ratio ``y_i`` with standard
    error ``s_i`` and a true log HR of 0. Its systematic error is drawn from
    ``N(mu, tau^2)``, so ``y_i ~ N(mu, s_i^2 + tau^2)``. :func:`fit_null` maximises::

        l(mu, tau) = sum_i log phi(y_i; mu, sqrt(s_i^2 + tau^2))

    exactly (``fitNull`` uses Nelder-Mead on (mu, 1/tau^2); the maximum is the same).
    For a given ``v = tau^2`` the best ``mu`` is the inverse-variance weighted mean, so the
    fit is a one-dimensional search over ``v >= 0``: the roots of the profile score
    ``sum_i [(y_i - mu(v))^2 / (s_i^2 + v)^2 - 1 / (s_i^2 + v)]`` and the boundary ``v = 0``
    are the candidates, the one with the highest likelihood wins.

Calibrated p-value (``calibrateP``)
    ``2 * min(Phi((y - mu) / sqrt(tau^2 + s^2)), Phi((mu - y) / sqrt(tau^2 + s^2)))``.

Systematic error model (``fitSystematicErrorModel`` / ``convertNullToErrorModel``)
    An estimate of true log HR ``x`` is ``N(a + b x, s^2 + (c + d |x|)^2)``. From the null
    alone ``(a, b, c, d) = (mu, 1, tau, 0)``; from negative and positive controls with known
    true effects the four parameters are fitted by maximum likelihood.

Calibrated CI (``calibrateConfidenceInterval``)
    The bound for level ``1 - alpha`` is the ``x`` solving
    ``z + (a + b x - y) / sqrt((c + d |x|)^2 + s^2) = 0`` with ``z = +/- Phi^-1(alpha / 2)``;
    the calibrated point estimate solves it with ``z = 0``.

EASE (``computeExpectedAbsoluteSystematicError``)
    ``E|X|`` for ``X ~ N(mu, tau^2)`` (folded normal mean):
    ``tau sqrt(2 / pi) exp(-mu^2 / (2 tau^2)) + mu (1 - 2 Phi(-mu / tau))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

from cohort_etl.errors import InputDataError, NotEstimable

FloatArray = NDArray[np.float64]

#: estimates with |log HR| above this are left out of the fits (as EmpiricalCalibration)
MAX_ABS_LOG_RR = math.log(100.0)
#: fewer usable negative controls than this: no null is fitted (CohortMethod uses 5)
MIN_NEGATIVE_CONTROLS = 5


def _pair(log_rr: ArrayLike, se_log_rr: ArrayLike, what: str) -> tuple[FloatArray, FloatArray]:
    y = np.atleast_1d(np.asarray(log_rr, dtype=float))
    s = np.atleast_1d(np.asarray(se_log_rr, dtype=float))
    if y.ndim != 1 or y.shape != s.shape:
        raise InputDataError(
            f"{what}: log_rr and se_log_rr must be 1-D and of equal length "
            f"(got {y.shape} and {s.shape})"
        )
    bad = np.isfinite(s) & (s <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputDataError(f"{what}: se_log_rr must be > 0, found {s[i]!r} at position {i}")
    return y, s


def _usable(y: FloatArray, s: FloatArray) -> tuple[NDArray[np.bool_], list[str]]:
    """Mask of estimates a fit can use, and a note per kind of estimate left out."""
    notes = []
    finite = np.isfinite(y) & np.isfinite(s)
    if (~finite).any():
        notes.append(f"{int((~finite).sum())} estimate(s) with missing/infinite value left out")
    extreme = finite & (np.abs(y) > MAX_ABS_LOG_RR)
    if extreme.any():
        notes.append(f"{int(extreme.sum())} estimate(s) with |log HR| > log(100) left out")
    return finite & ~extreme, notes


# --------------------------------------------------------------------------------------
# empirical null
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmpiricalNull:
    """Normal distribution of systematic error fitted to negative controls.

    Attributes
    ----------
    mean, sd
        ``mu`` and ``tau`` of ``N(mu, tau^2)`` on the log HR scale.
    log_likelihood
        Maximised log-likelihood.
    n_controls
        Negative-control estimates used in the fit.
    notes
        Estimates left out and why.
    """

    mean: float
    sd: float
    log_likelihood: float
    n_controls: int
    notes: tuple[str, ...] = field(default=())

    def calibrate_p(self, log_rr: ArrayLike, se_log_rr: ArrayLike) -> FloatArray:
        """Two-sided calibrated p-values (NaN where the estimate is missing)."""
        y, s = _pair(log_rr, se_log_rr, "calibrate_p")
        with np.errstate(invalid="ignore"):
            sd = np.sqrt(self.sd**2 + s**2)
            upper = stats.norm.cdf((self.mean - y) / sd)
            lower = stats.norm.cdf((y - self.mean) / sd)
        out = 2.0 * np.minimum(upper, lower)
        out[~(np.isfinite(y) & np.isfinite(s))] = np.nan
        return np.asarray(out, dtype=float)

    def ease(self) -> float:
        """Expected absolute systematic error: ``E|X|``, ``X ~ N(mean, sd^2)``."""
        return expected_absolute_systematic_error(self.mean, self.sd)

    def to_error_model(self, mean_slope: float = 1.0, sd_slope: float = 0.0) -> ErrorModel:
        """Systematic error model implied by the null (``convertNullToErrorModel``)."""
        return ErrorModel(self.mean, mean_slope, self.sd, sd_slope, source="negative controls")


def null_log_likelihood(mean: float, sd: float, log_rr: ArrayLike, se_log_rr: ArrayLike) -> float:
    """Log-likelihood of ``N(mean, sd^2)`` systematic error for the given estimates."""
    y, s = _pair(log_rr, se_log_rr, "null_log_likelihood")
    v = s**2 + sd**2
    return float(-0.5 * np.sum(np.log(2 * math.pi * v) + (y - mean) ** 2 / v))


def _profile_mean(y: FloatArray, s2: FloatArray, v: float) -> float:
    w = 1.0 / (s2 + v)
    return float(np.sum(w * y) / np.sum(w))


def _profile_score(y: FloatArray, s2: FloatArray, v: float) -> float:
    mu = _profile_mean(y, s2, v)
    tot = s2 + v
    return float(np.sum((y - mu) ** 2 / tot**2 - 1.0 / tot))


def fit_null(log_rr: ArrayLike, se_log_rr: ArrayLike) -> EmpiricalNull:
    """Maximum-likelihood empirical null from negative-control estimates.

    Parameters
    ----------
    log_rr, se_log_rr
        Log hazard ratios of the negative controls and their standard errors. Missing,
        infinite and extreme (|log HR| > log 100) estimates are left out, as
        EmpiricalCalibration's ``fitNull`` does.

    Returns
    -------
    EmpiricalNull

    Raises
    ------
    NotEstimable
        Fewer than :data:`MIN_NEGATIVE_CONTROLS` usable estimates.
    """
    y_all, s_all = _pair(log_rr, se_log_rr, "fit_null")
    keep, notes = _usable(y_all, s_all)
    y, s = y_all[keep], s_all[keep]
    if y.size < MIN_NEGATIVE_CONTROLS:
        raise NotEstimable(
            f"empirical null: {y.size} usable negative-control estimate(s), "
            f"need at least {MIN_NEGATIVE_CONTROLS}"
        )
    s2 = s**2
    candidates = [0.0]
    # the profile score is >0 left of a local maximum and <0 right of it: scan a grid
    spread = float(np.var(y)) + float(s2.max())
    grid = np.concatenate([[0.0], np.geomspace(1e-10, 100.0 * spread + 1.0, 400)])
    score = np.array([_profile_score(y, s2, g) for g in grid])
    for k in np.flatnonzero((score[:-1] > 0) & (score[1:] <= 0)):
        root = optimize.brentq(
            lambda v: _profile_score(y, s2, v), grid[k], grid[k + 1], xtol=1e-15, rtol=1e-14
        )
        candidates.append(float(root))
    best = max(
        candidates,
        key=lambda v: null_log_likelihood(_profile_mean(y, s2, v), math.sqrt(v), y, s),
    )
    mu = _profile_mean(y, s2, best)
    sd = math.sqrt(best)
    return EmpiricalNull(
        mean=mu,
        sd=sd,
        log_likelihood=null_log_likelihood(mu, sd, y, s),
        n_controls=int(y.size),
        notes=tuple(notes),
    )


def expected_absolute_systematic_error(mean: float, sd: float) -> float:
    """EASE of a normal systematic-error distribution (the folded-normal mean)."""
    if sd < 0 or not (math.isfinite(mean) and math.isfinite(sd)):
        raise InputDataError(f"EASE: need a finite mean and sd >= 0, got {mean!r}, {sd!r}")
    if sd == 0:
        return abs(mean)
    return float(
        sd * math.sqrt(2 / math.pi) * math.exp(-(mean**2) / (2 * sd**2))
        + mean * (1 - 2 * stats.norm.cdf(-mean / sd))
    )


def traditional_p(log_rr: ArrayLike, se_log_rr: ArrayLike) -> FloatArray:
    """Two-sided Wald p-value of each estimate."""
    y, s = _pair(log_rr, se_log_rr, "traditional_p")
    return np.asarray(2 * stats.norm.sf(np.abs(y / s)), dtype=float)


# --------------------------------------------------------------------------------------
# systematic error model and calibrated intervals
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CalibratedEstimate:
    """A calibrated log HR with its interval (NaN bounds when no root exists)."""

    log_rr: float
    log_lower: float
    log_upper: float
    se_log_rr: float

    @property
    def hr(self) -> float:
        return math.exp(self.log_rr)

    @property
    def lower(self) -> float:
        return math.exp(self.log_lower)

    @property
    def upper(self) -> float:
        return math.exp(self.log_upper)


@dataclass(frozen=True)
class ErrorModel:
    """Systematic error model: estimate ~ N(a + b x, s^2 + (c + d |x|)^2) for true log HR x.

    ``mean_intercept`` a, ``mean_slope`` b, ``sd_intercept`` c, ``sd_slope`` d;
    ``source`` says what it was fitted from.
    """

    mean_intercept: float
    mean_slope: float
    sd_intercept: float
    sd_slope: float
    source: str = ""

    def _bound(self, y: float, s: float, z: float) -> float:
        a, b, c, d = self.mean_intercept, self.mean_slope, self.sd_intercept, self.sd_slope

        def f(x: float) -> float:
            return z + (a + b * x - y) / math.sqrt((c + d * abs(x)) ** 2 + s**2)

        lo, hi = -100.0, 100.0
        f_lo, f_hi = f(lo), f(hi)
        if f_lo * f_hi > 0:
            return math.nan
        if d == 0 and b != 0:  # closed form when the error sd does not depend on x
            return (y - a - z * math.sqrt(c**2 + s**2)) / b
        return float(optimize.brentq(f, lo, hi, xtol=1e-14, rtol=1e-14))

    def calibrate_ci(
        self, log_rr: float, se_log_rr: float, conf_level: float = 0.95
    ) -> CalibratedEstimate:
        """Calibrated point estimate and confidence interval of one estimate."""
        if not (0 < conf_level < 1):
            raise InputDataError(f"conf_level must be in (0, 1), got {conf_level!r}")
        y, s = float(log_rr), float(se_log_rr)
        if not (math.isfinite(y) and math.isfinite(s)) or s <= 0:
            nan = math.nan
            return CalibratedEstimate(nan, nan, nan, nan)
        z = float(stats.norm.ppf((1 - conf_level) / 2))  # negative
        point = self._bound(y, s, 0.0)
        lower = self._bound(y, s, -z)
        upper = self._bound(y, s, z)
        se = (lower - upper) / (2 * z)
        return CalibratedEstimate(point, lower, upper, se)


def error_model_log_likelihood(
    params: Sequence[float], log_rr: ArrayLike, se_log_rr: ArrayLike, true_log_rr: ArrayLike
) -> float:
    """Log-likelihood of the systematic error model (``-inf`` when an sd is negative)."""
    a, b, c, d = (float(p) for p in params)
    y, s = _pair(log_rr, se_log_rr, "error_model_log_likelihood")
    x = np.asarray(true_log_rr, dtype=float)
    sd = c + d * np.abs(x)
    if (sd < 0).any():
        return -math.inf
    v = s**2 + sd**2
    return float(-0.5 * np.sum(np.log(2 * math.pi * v) + (y - a - b * x) ** 2 / v))


def fit_error_model(
    log_rr: ArrayLike, se_log_rr: ArrayLike, true_log_rr: ArrayLike
) -> tuple[ErrorModel, float]:
    """Maximum-likelihood systematic error model from controls with known true effects
    (``fitSystematicErrorModel``): negative controls have true log HR 0, positive controls
    their injected log HR. Returns the model and its maximised log-likelihood."""
    y_all, s_all = _pair(log_rr, se_log_rr, "fit_error_model")
    x_all = np.atleast_1d(np.asarray(true_log_rr, dtype=float))
    if x_all.shape != y_all.shape or not np.isfinite(x_all).all():
        raise InputDataError("fit_error_model: true_log_rr must be finite, one per estimate")
    keep, _ = _usable(y_all, s_all)
    y, s, x = y_all[keep], s_all[keep], x_all[keep]
    if y.size < MIN_NEGATIVE_CONTROLS or np.unique(x).size < 2:
        raise NotEstimable(
            "systematic error model: needs >= 5 usable controls with at least two distinct "
            "true effect sizes"
        )

    def ab_given(c: float, d: float) -> tuple[float, float]:
        # for a fixed error sd the mean line is a weighted least-squares fit
        w = 1.0 / (s**2 + (c + d * np.abs(x)) ** 2)
        design = np.column_stack([np.ones_like(x), x])
        coef = np.linalg.solve(design.T @ (w[:, None] * design), design.T @ (w * y))
        return float(coef[0]), float(coef[1])

    def profile_negll(cd: FloatArray) -> float:
        c, d = float(cd[0]), float(cd[1])
        if (c + d * np.abs(x) < 0).any():
            return 1e300
        a, b = ab_given(c, d)
        return -error_model_log_likelihood((a, b, c, d), y, s, x)

    best = None
    for c0 in (0.01, 0.1, 0.3, 1.0):
        for d0 in (-0.2, 0.0, 0.2, 0.5):
            if c0 + d0 * float(np.abs(x).max()) < 0:
                continue
            res = optimize.minimize(
                profile_negll,
                np.array([c0, d0]),
                method="Nelder-Mead",
                options={"xatol": 1e-13, "fatol": 1e-15, "maxiter": 20000, "maxfev": 20000},
            )
            if best is None or res.fun < best.fun:
                best = res
    assert best is not None
    c_hat, d_hat = (float(v) for v in best.x)
    a_hat, b_hat = ab_given(c_hat, d_hat)
    if c_hat < 0 and d_hat == 0:  # only c^2 enters: report the non-negative root
        c_hat = -c_hat
    ll = error_model_log_likelihood((a_hat, b_hat, c_hat, d_hat), y, s, x)
    return ErrorModel(a_hat, b_hat, c_hat, d_hat, source="negative and positive controls"), ll
