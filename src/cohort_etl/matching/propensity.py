"""Propensity-score model: logistic regression, unpenalized or L1 with cross-validation.

Unpenalized fits use iteratively reweighted least squares (Newton-Raphson), started like
R's ``glm.fit`` (``mu = (y + 0.5) / 2``) and iterated until both the deviance and the
coefficients stop moving, so the estimates agree with ``glm(family = binomial)`` to the
precision R itself reaches. Columns are centred and scaled internally for numerical
stability; coefficients are reported on the original scale.

The L1 option minimises ``-loglik / n + lambda * sum(|beta_j|)`` over standardized
covariates (intercept unpenalized) by coordinate descent on the IRLS quadratic
approximation (the glmnet scheme). ``lambda`` is chosen by k-fold cross-validation on the
held-out binomial deviance (folds stratified by treatment, seeded), scanning a geometric
path from the smallest lambda that zeroes every coefficient down to ``1e-3`` of it. This
approximates what OHDSI CohortMethod does with Cyclops (a Laplace prior whose variance is
chosen by cross-validation); it is not numerically identical to Cyclops, which penalizes
unstandardized covariates and searches the prior variance differently.

Diagnostics: AUC (Mann-Whitney), the preference score of Walker et al. (2013),
``ln(F / (1 - F)) = ln(S / (1 - S)) - ln(P / (1 - P))`` with ``P`` the treated share, and
the equipoise share (preference score within [0.3, 0.7]).

Perfect or quasi-complete separation (the Newton iterations diverge, or fitted
probabilities reach 0 or 1) raises :class:`~cohort_etl.errors.NotEstimable` naming the
covariates with the largest standardized coefficients, or, with
``on_separation="penalize"``, falls back to a ridge fit (``lambda = 1 / n`` per
observation, i.e. a standard-normal prior on each standardized coefficient), recorded in
``method_`` and in the warnings.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import expit

from cohort_etl.errors import InputDataError, NotEstimable
from cohort_etl.matching.design import CovariateInfo, build_design, treatment_vector

#: |standardized coefficient| above which a covariate is flagged as nearly determining
#: treatment (a 1-SD change multiplies the odds by more than e^5 ~ 150).
STRONG_COEF = 5.0
#: Fitted probabilities closer than this to 0 or 1 count as separation (as R's glm.fit).
PROB_EPS = 10 * np.finfo(float).eps


class PropensityWarning(UserWarning):
    """A covariate nearly determines treatment, or a fallback fit was used."""


@dataclass(frozen=True)
class PropensityDiagnostics:
    """Model diagnostics.

    Attributes
    ----------
    auc
        Area under the ROC curve of the PS for treatment (c-statistic).
    equipoise
        Share of persons with preference score in [0.3, 0.7].
    treated_share
        Proportion treated, ``P`` in the preference score.
    warnings
        Messages about near-determining covariates or fallbacks (also issued as
        :class:`PropensityWarning`).
    """

    auc: float
    equipoise: float
    treated_share: float
    warnings: tuple[str, ...]


def auc_score(treat: np.ndarray, score: np.ndarray) -> float:
    """AUC of ``score`` for ``treat`` (0/1) by the Mann-Whitney statistic, ties counted 1/2."""
    n1 = int(treat.sum())
    n0 = len(treat) - n1
    if n1 == 0 or n0 == 0:
        raise NotEstimable("AUC needs both treated and control persons")
    order = np.argsort(score)
    s = score[order]
    # average rank (1-based) of each run of tied scores
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    run_rank = (starts + ends + 1) / 2.0
    run_treated = np.add.reduceat(treat[order].astype(float), starts)
    rank_sum = float(run_rank @ run_treated)
    return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0)


def preference_score(ps: np.ndarray, treated_share: float) -> np.ndarray:
    """Walker et al. preference score: logit F = logit S - logit P."""
    with np.errstate(divide="ignore"):
        logit_s = np.log(ps) - np.log1p(-ps)
    return np.asarray(expit(logit_s - np.log(treated_share / (1 - treated_share))))


def _deviance(y: np.ndarray, eta: np.ndarray) -> float:
    # -2 loglik of a Bernoulli model, computed stably from the linear predictor.
    return float(2.0 * np.sum(np.logaddexp(0.0, eta) - y * eta))


def _standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre and scale columns; returns ``[1 | xs]`` (intercept column first), centre, scale."""
    n, p = x.shape
    center = x.mean(axis=0)
    design = np.empty((n, p + 1))
    design[:, 0] = 1.0
    xs = design[:, 1:]
    np.subtract(x, center, out=xs)
    scale = np.sqrt(np.einsum("ij,ij->j", xs, xs) / max(n, 1))
    scale[scale == 0] = 1.0
    xs /= scale
    return design, center, scale


@dataclass
class _Fit:
    b0: float
    beta: np.ndarray
    converged: bool
    n_iter: int


#: Rows per block in the IRLS passes (keeps the weighted design block in cache).
_CHUNK = 65536


def _irls(design: np.ndarray, y: np.ndarray, ridge: float, max_iter: int, tol: float) -> _Fit:
    """Newton-Raphson on ``[1 | standardized covariates]``, optional L2 penalty.

    Each iteration is one blocked pass over the rows that evaluates the deviance at the
    current coefficients and accumulates the weighted normal equations for the next step
    (step-halving when the deviance rises, as ``glm.fit``). Starts from
    ``mu = (y + 0.5) / 2`` like R. Converged when the relative deviance change is below
    ``tol`` and no coefficient moved more than 1e-7.
    """
    n, q = design.shape
    penalty = np.full(q, ridge)
    penalty[0] = 0.0
    mu0 = (y + 0.5) / 2.0
    eta0 = np.log(mu0 / (1 - mu0))
    coef: np.ndarray | None = None
    coef_old = np.zeros(q)
    dev_old = np.inf
    step = np.inf
    converged = False
    it = 0
    halvings = 0
    while it <= max_iter:
        gram = np.zeros((q, q))
        rhs = np.zeros(q)
        dev = 0.0
        eta_max = 0.0
        for lo in range(0, n, _CHUNK):
            xc = design[lo : lo + _CHUNK]
            yc = y[lo : lo + _CHUNK]
            eta = eta0[lo : lo + _CHUNK] if coef is None else xc @ coef
            if coef is not None:
                dev += _deviance(yc, eta)
                eta_max = max(eta_max, float(np.max(np.abs(eta))))
            mu = expit(eta)
            w = np.maximum(mu * (1 - mu), 1e-14)
            sw = np.sqrt(w)
            wx = xc * sw[:, None]
            gram += wx.T @ wx
            rhs += wx.T @ (sw * eta + (yc - mu) / sw)
        if coef is not None:
            dev += ridge * float(coef[1:] @ coef[1:])
            if not np.isfinite(dev) or (it >= 5 and eta_max > 40):
                break  # diverging: (quasi-)separation; reported by the caller
            if dev > dev_old + 1e-9 * abs(dev_old) and halvings < 30:
                coef = (coef + coef_old) / 2  # step-halving, then re-evaluate
                halvings += 1
                continue
            halvings = 0
            if abs(dev - dev_old) / (abs(dev) + 0.1) < tol and step < 1e-7:
                converged = True
                break
            dev_old = dev
        try:
            new = np.linalg.solve(gram + np.diag(penalty), rhs)
        except np.linalg.LinAlgError:
            break  # singular information matrix: diverging fit, reported by the caller
        if not np.all(np.isfinite(new)):
            break
        if coef is not None:
            coef_old = coef
        step = float(np.max(np.abs(new - coef_old)))
        coef = new
        it += 1
    if coef is None:
        coef = np.zeros(q)
    return _Fit(float(coef[0]), coef[1:].copy(), converged, it)


def _l1_fit(
    design: np.ndarray,
    y: np.ndarray,
    lam: float,
    start: _Fit | None,
    max_outer: int = 100,
    max_inner: int = 1000,
    tol: float = 1e-10,
) -> _Fit:
    """L1-penalized logistic regression (glmnet objective) on ``[1 | standardized X]``.

    Each outer step forms the IRLS quadratic approximation in one blocked pass (the
    weighted Gram matrix ``G = X'WX / n`` and ``c = X'Wz / n``); coordinate descent then
    runs on that q x q problem (cost independent of n), intercept unpenalized.
    """
    n, q = design.shape
    coef = np.zeros(q)
    if start is not None:
        coef[0], coef[1:] = start.b0, start.beta
    else:
        coef[0] = float(np.log(y.mean() / (1 - y.mean())))
    converged = False
    outer = 0
    while outer < max_outer:
        outer += 1
        gram = np.zeros((q, q))
        rhs = np.zeros(q)
        for lo in range(0, n, _CHUNK):
            xc = design[lo : lo + _CHUNK]
            eta = xc @ coef
            mu = expit(eta)
            w = np.maximum(mu * (1 - mu), 1e-5)
            sw = np.sqrt(w)
            wx = xc * sw[:, None]
            gram += wx.T @ wx
            rhs += wx.T @ (sw * eta + (y[lo : lo + _CHUNK] - mu) / sw)
        gram /= n
        rhs /= n
        prev = coef.copy()
        # coordinate descent on the q x q quadratic, in plain floats (q is small)
        gl = gram.tolist()
        cl = rhs.tolist()
        b = coef.tolist()
        g = (gram @ coef).tolist()
        for _ in range(max_inner):
            max_change = 0.0
            for j in range(q):
                gjj = gl[j][j]
                if gjj <= 0:
                    continue
                old = b[j]
                partial = cl[j] - (g[j] - gjj * old)
                if j == 0:
                    new = partial / gjj
                else:
                    shrunk = abs(partial) - lam
                    new = (shrunk if partial > 0 else -shrunk) / gjj if shrunk > 0 else 0.0
                delta = new - old
                if delta != 0.0:
                    b[j] = new
                    row = gl[j]  # the Gram matrix is symmetric: column j = row j
                    for k in range(q):
                        g[k] += row[k] * delta
                    if abs(delta) > max_change:
                        max_change = abs(delta)
            if max_change < tol:
                break
        coef = np.asarray(b)
        if float(np.max(np.abs(coef - prev))) < 1e-7:
            converged = True
            break
    return _Fit(float(coef[0]), coef[1:].copy(), converged, outer)


def _lambda_path(xs: np.ndarray, y: np.ndarray, n_lambdas: int) -> np.ndarray:
    lam_max = float(np.max(np.abs(xs.T @ (y - y.mean())), initial=0.0)) / len(y)
    if lam_max <= 0:
        return np.array([0.0])
    return np.asarray(lam_max * np.logspace(0, -3, n_lambdas))


def _stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for arm in (0, 1):
        idx = np.flatnonzero(y == arm)
        idx = idx[rng.permutation(len(idx))]
        fold[idx] = np.arange(len(idx)) % k
    return fold


class PropensityModel:
    """Logistic-regression propensity score model.

    Parameters
    ----------
    covariates
        Columns of the data used as covariates (numeric kept, categorical expanded with
        the first sorted level as reference).
    categorical
        Numeric columns to treat as categorical anyway.
    penalty
        ``"none"`` (maximum likelihood, as R ``glm``) or ``"l1"`` (lasso; lambda by
        cross-validation unless ``l1_lambda`` is given).
    n_folds
        Folds for cross-validation of lambda.
    n_lambdas
        Length of the lambda path scanned by cross-validation.
    l1_lambda
        Fixed lambda (per-observation scale, standardized covariates); skips CV.
    seed
        Seed of the fold assignment.
    on_separation
        ``"error"`` raises :class:`NotEstimable`; ``"penalize"`` refits with a ridge
        penalty and records it.
    max_iter
        Newton iterations before the fit is declared non-convergent.
    tol
        Relative deviance change for convergence.

    Attributes
    ----------
    coef_ : pandas.Series
        Coefficients on the original covariate scale, ``"(Intercept)"`` first.
    ps_ : numpy.ndarray
        Fitted propensity scores.
    logit_ps_ : numpy.ndarray
        Linear predictor (logit of the PS), computed directly, not from ``ps_``.
    preference_score_ : numpy.ndarray
    diagnostics_ : PropensityDiagnostics
    method_ : str
        ``"glm"``, ``"l1-cv"``, ``"l1"`` or ``"ridge-fallback"``.
    lambda_ : float
        Penalty used (0 for ``glm``).
    cv_deviance_ : pandas.DataFrame or None
        ``lambda``, ``deviance`` (mean held-out deviance per observation) for L1-CV.
    converged_ : bool
    n_iter_ : int

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [0, 0, 1, 1, 0, 1], "age": [50, 60, 55, 70, 65, 52]})
    >>> model = PropensityModel(["age"]).fit(df, "t")
    >>> model.ps_.shape
    (6,)
    """

    def __init__(
        self,
        covariates: list[str],
        categorical: list[str] | None = None,
        penalty: Literal["none", "l1"] = "none",
        n_folds: int = 10,
        n_lambdas: int = 30,
        l1_lambda: float | None = None,
        seed: int = 0,
        on_separation: Literal["error", "penalize"] = "error",
        max_iter: int = 100,
        tol: float = 1e-12,
    ) -> None:
        self.covariates = covariates
        self.categorical = categorical
        self.penalty = penalty
        self.n_folds = n_folds
        self.n_lambdas = n_lambdas
        self.l1_lambda = l1_lambda
        self.seed = seed
        self.on_separation = on_separation
        self.max_iter = max_iter
        self.tol = tol

    # ------------------------------------------------------------------ fitting
    def fit(self, data: pd.DataFrame, treatment: str) -> PropensityModel:
        """Fit the model.

        Parameters
        ----------
        data
            One row per person.
        treatment
            Name of the 0/1 treatment column (1 = treated / target).

        Returns
        -------
        PropensityModel
            ``self``.
        """
        if self.penalty not in ("none", "l1"):
            raise InputDataError(f"penalty must be 'none' or 'l1', not {self.penalty!r}")
        if self.on_separation not in ("error", "penalize"):
            raise InputDataError(
                f"on_separation must be 'error' or 'penalize', not {self.on_separation!r}"
            )
        y = treatment_vector(data, treatment).astype(float)
        n1 = int(y.sum())
        if n1 == 0 or n1 == len(y):
            arm = "treated" if n1 else "control"
            raise NotEstimable(
                f"treatment column {treatment!r}: all {len(y)} persons are {arm}; "
                "a propensity model needs both arms"
            )
        design = build_design(data, list(self.covariates), self.categorical)
        self.design_columns_: list[str] = design.columns
        self.covariate_info_: list[CovariateInfo] = design.covariates
        messages = self._arm_specific_levels(design.matrix, design.covariates, design.columns, y)
        full, center, scale = _standardize(design.matrix)
        xs = full[:, 1:]
        self._center, self._scale = center, scale
        _check_full_rank(xs, design.columns)
        self.cv_deviance_: pd.DataFrame | None = None
        if self.penalty == "none":
            fit = _irls(full, y, 0.0, self.max_iter, self.tol)
            self.method_, self.lambda_ = "glm", 0.0
            eta = fit.b0 + xs @ fit.beta
            if not fit.converged or _extreme(eta):
                culprits = _largest(fit.beta, design.columns)
                msg = (
                    "perfect or quasi-complete separation in the propensity model: "
                    f"treatment is (nearly) determined by {culprits}"
                )
                if self.on_separation == "error":
                    raise NotEstimable(
                        msg + "; drop or merge these covariates or use on_separation='penalize'"
                    )
                ridge = 1.0
                fit = _irls(full, y, ridge, self.max_iter, self.tol)
                self.method_, self.lambda_ = "ridge-fallback", ridge / len(y)
                messages.append(msg + f"; refitted with a ridge penalty (lambda={ridge}/n)")
        else:
            fit = self._fit_l1(full, y)
        self.converged_ = fit.converged
        self.n_iter_ = fit.n_iter
        beta = fit.beta / scale
        b0 = fit.b0 - float(beta @ center)
        self.coef_ = pd.Series(
            np.concatenate([[b0], beta]), index=["(Intercept)", *design.columns], name="coef"
        )
        self.logit_ps_ = np.asarray(fit.b0 + xs @ fit.beta)
        self.ps_ = np.asarray(expit(self.logit_ps_))
        std_coef = np.abs(fit.beta)
        for name, value in zip(design.columns, std_coef, strict=True):
            if value > STRONG_COEF and self.method_ == "glm":
                messages.append(
                    f"covariate {name!r} nearly determines treatment "
                    f"(standardized coefficient {value:.1f})"
                )
        share = n1 / len(y)
        self.preference_score_ = preference_score(self.ps_, share)
        pref = self.preference_score_
        equipoise = float(np.mean((pref >= 0.3) & (pref <= 0.7)))
        for m in messages:
            warnings.warn(m, PropensityWarning, stacklevel=2)
        self.diagnostics_ = PropensityDiagnostics(
            auc=auc_score(y.astype(np.int64), self.logit_ps_),
            equipoise=equipoise,
            treated_share=share,
            warnings=tuple(messages),
        )
        return self

    @staticmethod
    def _arm_specific_levels(
        x: np.ndarray, infos: list[CovariateInfo], columns: list[str], y: np.ndarray
    ) -> list[str]:
        """Messages for indicator columns (binary / category levels) with 1s in one arm."""
        indicator = {c for info in infos if info.kind != "numeric" for c in info.columns}
        out = []
        for j, name in enumerate(columns):
            if name not in indicator:
                continue
            col = x[:, j]
            n_ones = int(col.sum())
            if n_ones == 0 or n_ones == len(col):
                continue
            n_treated = int(round(float(col @ y)))
            if n_treated in (0, n_ones):
                arm = "control" if n_treated == 0 else "treated"
                out.append(
                    f"covariate {name!r}: all {n_ones} persons with this value are {arm}; "
                    "it nearly determines treatment"
                )
        return out

    def _fit_l1(self, full: np.ndarray, y: np.ndarray) -> _Fit:
        xs = full[:, 1:]
        if self.l1_lambda is not None:
            self.method_, self.lambda_ = "l1", float(self.l1_lambda)
            return _l1_fit(full, y, self.lambda_, None)
        if min(int(y.sum()), int(len(y) - y.sum())) < self.n_folds:
            raise NotEstimable(f"L1 cross-validation needs at least {self.n_folds} persons per arm")
        lambdas = _lambda_path(xs, y, self.n_lambdas)
        folds = _stratified_folds(y.astype(np.int64), self.n_folds, self.seed)
        dev = np.zeros(len(lambdas))
        for k in range(self.n_folds):
            train, test = folds != k, folds == k
            full_tr, c, s = _standardize(xs[train])
            xte = (xs[test] - c) / s
            fit: _Fit | None = None
            for i, lam in enumerate(lambdas):
                fit = _l1_fit(full_tr, y[train], float(lam), fit)
                dev[i] += _deviance(y[test], fit.b0 + xte @ fit.beta)
        dev /= len(y)
        self.cv_deviance_ = pd.DataFrame({"lambda": lambdas, "deviance": dev})
        best = int(np.argmin(dev))
        fit = None
        for lam in lambdas[: best + 1]:
            fit = _l1_fit(full, y, float(lam), fit)
        assert fit is not None
        self.method_, self.lambda_ = "l1-cv", float(lambdas[best])
        return fit

    # --------------------------------------------------------------- prediction
    def predict_logit(self, data: pd.DataFrame) -> np.ndarray:
        """Linear predictor for new data (same covariates and levels)."""
        design = build_design(data, list(self.covariates), self.categorical, self.covariate_info_)
        coef = self.coef_.to_numpy()
        return np.asarray(coef[0] + design.matrix @ coef[1:])

    def predict_proba(self, data: pd.DataFrame) -> np.ndarray:
        """Propensity scores for new data."""
        return np.asarray(expit(self.predict_logit(data)))

    def summary(self) -> pd.DataFrame:
        """Coefficients as a data frame (``term``, ``coef``)."""
        return self.coef_.rename_axis("term").reset_index()


def _extreme(eta: np.ndarray) -> bool:
    p = expit(eta)
    return bool(np.any(p < PROB_EPS) or np.any(p > 1 - PROB_EPS))


def _largest(beta: np.ndarray, columns: list[str], k: int = 3) -> str:
    order = np.argsort(-np.abs(beta))[:k]
    return ", ".join(f"{columns[j]!r}" for j in order)


def _check_full_rank(xs: np.ndarray, columns: list[str]) -> None:
    """Raise :class:`InputDataError` for constant or collinear design columns."""
    constant = [c for j, c in enumerate(columns) if not np.any(xs[:, j])]
    if constant:
        raise InputDataError(f"covariate column(s) constant in the data: {constant}")
    gram = np.zeros((xs.shape[1], xs.shape[1]))
    for lo in range(0, len(xs), _CHUNK):
        block = xs[lo : lo + _CHUNK]
        gram += block.T @ block
    gram /= max(len(xs), 1)
    if len(columns) == 0 or np.linalg.matrix_rank(gram, tol=1e-9) == len(columns):
        return
    kept: list[int] = []
    for j in range(len(columns)):
        trial = [*kept, j]
        if np.linalg.matrix_rank(gram[np.ix_(trial, trial)], tol=1e-9) == len(trial):
            kept = trial
        else:
            raise InputDataError(
                f"covariate column {columns[j]!r} is collinear with earlier covariates "
                f"({', '.join(columns[k] for k in kept)}); drop it"
            )
