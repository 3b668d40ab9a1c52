"""Propensity model: coefficients and diagnostics against R, L1 optimality, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from tests.stats.r_oracle import run_r

from cohort_etl.errors import InputDataError, NotEstimable
from cohort_etl.matching import PropensityModel, PropensityWarning

COVARIATES = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]


@pytest.fixture(scope="module")
def lalonde_glm() -> dict:
    """R code:

    data("lalonde", package = "MatchIt")
    fit <- glm(treat ~ age + educ + race + married + nodegree + re74 + re75,
               data = lalonde, family = binomial,
               control = glm.control(epsilon = 1e-14, maxit = 100))
    # AUC as the Mann-Whitney statistic, preference score (Walker et al.)
    """
    return run_r(
        """
        data("lalonde", package = "MatchIt")
        fit <- glm(treat ~ age + educ + race + married + nodegree + re74 + re75,
                   data = lalonde, family = binomial,
                   control = glm.control(epsilon = 1e-14, maxit = 100))
        lp <- predict(fit, type = "link"); ps <- fitted(fit)
        y <- lalonde$treat
        w <- wilcox.test(lp[y == 1], lp[y == 0], exact = FALSE)$statistic
        auc <- unname(w) / (sum(y == 1) * sum(y == 0))
        P <- mean(y)
        pref <- plogis(qlogis(ps) - qlogis(P))
        result <- list(d = cbind(data.frame(id = rownames(lalonde)), lalonde),
                       coef = coef(fit), se = sqrt(diag(vcov(fit))), ps = unname(ps),
                       lp = unname(lp), auc = auc, pref = unname(pref),
                       equipoise = mean(pref >= 0.3 & pref <= 0.7))
        """
    )


@pytest.mark.r_oracle
def test_coefficients_equal_r_glm(lalonde_glm: dict) -> None:
    model = PropensityModel(COVARIATES).fit(lalonde_glm["d"], "treat")
    ref = pd.Series(lalonde_glm["coef"])
    assert list(model.coef_.index) == list(ref.index)
    np.testing.assert_allclose(model.coef_.to_numpy(), ref.to_numpy(), rtol=1e-8, atol=0)
    np.testing.assert_allclose(model.ps_, lalonde_glm["ps"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.logit_ps_, lalonde_glm["lp"], rtol=1e-8, atol=1e-10)
    assert model.method_ == "glm" and model.converged_


@pytest.mark.r_oracle
def test_diagnostics_equal_r(lalonde_glm: dict) -> None:
    model = PropensityModel(COVARIATES).fit(lalonde_glm["d"], "treat")
    diag = model.diagnostics_
    assert diag.auc == pytest.approx(lalonde_glm["auc"], rel=1e-10)
    np.testing.assert_allclose(model.preference_score_, lalonde_glm["pref"], rtol=1e-8)
    assert diag.equipoise == pytest.approx(lalonde_glm["equipoise"], abs=1e-12)
    assert diag.treated_share == pytest.approx(185 / 614)


@pytest.mark.r_oracle
def test_predict_on_new_rows_equals_fitted(lalonde_glm: dict) -> None:
    d = lalonde_glm["d"]
    model = PropensityModel(COVARIATES).fit(d, "treat")
    np.testing.assert_allclose(model.predict_proba(d.iloc[::-1]), model.ps_[::-1], rtol=1e-12)


def _simulated(n: int = 3000, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    eta = -0.3 + 0.8 * x[:, 0] - 0.5 * x[:, 1] + 0.3 * x[:, 2]
    t = (rng.random(n) < expit(eta)).astype(int)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(6)])
    frame["t"] = t
    return frame


def test_l1_fixed_lambda_satisfies_kkt() -> None:
    """The lasso solution meets the optimality (KKT) conditions of its objective:
    on standardized covariates, (1/n) X'(y - p) = lambda * sign(beta) where beta != 0
    and |(1/n) X'(y - p)| <= lambda where beta == 0; intercept score is 0."""
    d = _simulated()
    lam = 0.02
    covs = [f"x{i}" for i in range(6)]
    model = PropensityModel(covs, penalty="l1", l1_lambda=lam).fit(d, "t")
    x = d[covs].to_numpy()
    xs = (x - x.mean(axis=0)) / x.std(axis=0)
    y = d["t"].to_numpy()
    grad = xs.T @ (y - model.ps_) / len(y)
    beta_std = model.coef_.to_numpy()[1:] * x.std(axis=0)
    nz = np.abs(beta_std) > 1e-10
    assert nz.sum() >= 2 and (~nz).sum() >= 1  # some selected, some dropped
    np.testing.assert_allclose(grad[nz], lam * np.sign(beta_std[nz]), atol=1e-6)
    assert np.all(np.abs(grad[~nz]) <= lam + 1e-6)
    assert abs(np.sum(y - model.ps_)) < 1e-6


def test_l1_cv_is_seeded_and_picks_cv_minimum() -> None:
    d = _simulated()
    covs = [f"x{i}" for i in range(6)]
    a = PropensityModel(covs, penalty="l1", n_folds=5, n_lambdas=15, seed=3).fit(d, "t")
    b = PropensityModel(covs, penalty="l1", n_folds=5, n_lambdas=15, seed=3).fit(d, "t")
    assert a.lambda_ == b.lambda_
    np.testing.assert_array_equal(a.ps_, b.ps_)
    cv = a.cv_deviance_
    assert cv is not None and len(cv) == 15
    assert a.lambda_ == cv.loc[cv["deviance"].idxmin(), "lambda"]
    assert cv["deviance"].iloc[0] > cv["deviance"].min()  # lambda_max (null model) is worse
    # the truly null covariates x3..x5 carry (almost) no weight
    assert np.all(np.abs(a.coef_[["x3", "x4", "x5"]]) < 0.1)
    assert a.method_ == "l1-cv"


def test_separation_raises_not_estimable() -> None:
    d = pd.DataFrame({"t": [0, 0, 0, 1, 1, 1], "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    with pytest.raises(NotEstimable, match="separation.*'x'"):
        PropensityModel(["x"]).fit(d, "t")


def test_separation_penalized_fallback_is_reported() -> None:
    d = pd.DataFrame({"t": [0, 0, 0, 1, 1, 1], "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    with pytest.warns(PropensityWarning, match="ridge"):
        model = PropensityModel(["x"], on_separation="penalize").fit(d, "t")
    assert model.method_ == "ridge-fallback"
    assert any("separation" in w for w in model.diagnostics_.warnings)
    assert np.all((model.ps_ > 0) & (model.ps_ < 1))
    assert np.all(np.diff(model.ps_) > 0)  # still ordered by x


def test_level_present_in_one_arm_warns() -> None:
    rng = np.random.default_rng(5)
    n = 400
    d = pd.DataFrame({"age": rng.normal(60, 10, n), "t": rng.integers(0, 2, n)})
    d["site"] = np.where(rng.random(n) < 0.5, "a", "b")
    d.loc[d.index[:8], "site"] = "c"
    d.loc[d.index[:8], "t"] = 1
    with pytest.warns(PropensityWarning) as record:
        model = PropensityModel(["age", "site"], on_separation="penalize").fit(d, "t")
    messages = [str(w.message) for w in record]
    assert any("'sitec'" in m and "are treated" in m for m in messages)
    # the level also makes the glm diverge (quasi-complete separation): ridge fallback
    assert any("separation" in m and "ridge" in m for m in messages)
    assert model.method_ == "ridge-fallback"
    assert any("sitec" in w for w in model.diagnostics_.warnings)


def test_missing_covariate_value_names_column_and_count() -> None:
    d = pd.DataFrame({"t": [0, 1, 0, 1], "age": [1.0, np.nan, np.nan, 3.0]})
    with pytest.raises(InputDataError, match="'age' has 2 missing"):
        PropensityModel(["age"]).fit(d, "t")


def test_absent_column_and_bad_treatment_coding() -> None:
    d = pd.DataFrame({"t": [0, 2, 0, 1], "age": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(InputDataError, match="not in the data: sex"):
        PropensityModel(["sex"]).fit(d.assign(t=[0, 1, 0, 1]), "t")
    with pytest.raises(InputDataError, match="coded 0/1"):
        PropensityModel(["age"]).fit(d, "t")


def test_single_arm_is_not_estimable() -> None:
    d = pd.DataFrame({"t": [1, 1, 1], "age": [1.0, 2.0, 3.0]})
    with pytest.raises(NotEstimable, match="all 3 persons are treated"):
        PropensityModel(["age"]).fit(d, "t")


def test_no_warning_on_ordinary_data() -> None:
    d = _simulated(800)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PropensityWarning)
        model = PropensityModel([f"x{i}" for i in range(6)]).fit(d, "t")
    assert model.diagnostics_.warnings == ()
    assert 0.5 < model.diagnostics_.auc < 1


def test_constant_and_collinear_covariates_are_named() -> None:
    d = _simulated(300)
    with pytest.raises(InputDataError, match="constant.*'k'"):
        PropensityModel(["x0", "k"]).fit(d.assign(k=1.0), "t")
    with pytest.raises(InputDataError, match="'dup' is collinear"):
        PropensityModel(["x0", "x1", "dup"]).fit(d.assign(dup=d["x0"] * 2 - d["x1"]), "t")
