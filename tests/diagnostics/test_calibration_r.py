"""Empirical null, systematic error model, calibrated p-values and CIs, EASE.

The oracle is a reference implementation of the same likelihoods written in R in this
test (EmpiricalCalibration itself is not packaged for Debian): the null is fitted by
``optim(method = "L-BFGS-B")`` on (mu, tau) with tau >= 0, a different optimiser and
parameterisation from ours (a profile over tau^2), and then polished with ``optim``'s
Nelder-Mead from the L-BFGS-B point; the calibrated p-value, the calibrated CI bounds
(``uniroot`` on EmpiricalCalibration's equation) and EASE (numerical integration of
``|x| dnorm(x, mu, tau)``) are computed from the R fit. The inputs are fixed numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.stats.r_oracle import run_r

from cohort_etl.diagnostics.calibration import (
    ErrorModel,
    expected_absolute_systematic_error,
    fit_error_model,
    fit_null,
    null_log_likelihood,
    traditional_p,
)
from cohort_etl.errors import InputDataError, NotEstimable

# 30 negative controls (log HR, SE) with a visible systematic error (mean > 0, tau > 0)
NC = pd.DataFrame(
    {
        "y": [0.31, 0.12, 0.45, -0.05, 0.22, 0.38, 0.61, 0.08, 0.27, 0.19,
              0.52, -0.14, 0.33, 0.29, 0.05, 0.41, 0.17, 0.70, 0.24, 0.36,
              -0.02, 0.48, 0.15, 0.26, 0.58, 0.11, 0.34, 0.21, 0.43, 0.09],
        "se": [0.084, 0.140, 0.072, 0.160, 0.100, 0.060, 0.120, 0.088, 0.076, 0.112,
               0.132, 0.180, 0.068, 0.096, 0.124, 0.080, 0.104, 0.152, 0.064, 0.092,
               0.116, 0.108, 0.136, 0.056, 0.144, 0.084, 0.076, 0.128, 0.100, 0.072],
    }
)  # fmt: skip
# controls with no extra-statistical spread: the ML tau is 0 (boundary)
NC_TIGHT = pd.DataFrame(
    {
        "y": [0.02, -0.03, 0.01, 0.00, -0.01, 0.03, -0.02, 0.01],
        "se": [0.30, 0.25, 0.40, 0.35, 0.28, 0.33, 0.31, 0.27],
    }
)
# positive controls (true HR 1.5, 2, 4) for the full systematic error model
PC = pd.DataFrame(
    {
        "y": [0.71, 0.35, 0.93, 0.95, 1.22, 0.58, 1.61, 2.04, 1.32],
        "se": [0.22, 0.25, 0.20, 0.21, 0.24, 0.19, 0.23, 0.26, 0.22],
        "true": [math.log(1.5)] * 3 + [math.log(2.0)] * 3 + [math.log(4.0)] * 3,
    }
)
PRIMARY = (math.log(0.594), 0.234)

R_REF = r"""
negll <- function(par, y, se) {
  v <- se^2 + par[2]^2
  -sum(dnorm(y, par[1], sqrt(v), log = TRUE))
}
fit_ref <- function(y, se) {
  a <- optim(c(mean(y), sd(y)), negll, y = y, se = se, method = "L-BFGS-B",
             lower = c(-Inf, 0), control = list(factr = 1, pgtol = 0, maxit = 10000))
  b <- optim(a$par, negll, y = y, se = se, method = "Nelder-Mead",
             control = list(reltol = 1e-15, maxit = 20000))
  p <- if (b$value < a$value && b$par[2] >= 0) b$par else a$par
  list(mu = p[1], tau = abs(p[2]), ll = -negll(p, y, se))
}
f1 <- fit_ref(nc$y, nc$se)
f2 <- fit_ref(tight$y, tight$se)
ll_at <- -negll(c(0.1, 0.2), nc$y, nc$se)
# calibrated p of the primary estimate (EmpiricalCalibration's calibrateP formula)
sdp <- sqrt(f1$tau^2 + prim$se^2)
cal_p <- 2 * min(pnorm((f1$mu - prim$y) / sdp), pnorm((prim$y - f1$mu) / sdp))
# calibrated CI from the null-implied model (a, b, c, d) = (mu, 1, tau, 0)
bound <- function(z, a, b, c, d, y, se) {
  uniroot(function(x) z + (a + b * x - y) / sqrt((c + d * abs(x))^2 + se^2),
          c(-100, 100), tol = 1e-13)$root
}
zz <- qnorm(0.025)
ci <- c(bound(0, f1$mu, 1, f1$tau, 0, prim$y, prim$se),
        bound(-zz, f1$mu, 1, f1$tau, 0, prim$y, prim$se),
        bound(zz, f1$mu, 1, f1$tau, 0, prim$y, prim$se))
ease <- integrate(function(x) abs(x) * dnorm(x, f1$mu, f1$tau), -Inf, Inf,
                  rel.tol = 1e-12)$value
# full systematic error model from negative + positive controls
em_negll <- function(par, y, se, x) {
  sdv <- par[3] + par[4] * abs(x)
  if (any(sdv < 0)) return(1e10)
  -sum(dnorm(y, par[1] + par[2] * x, sqrt(se^2 + sdv^2), log = TRUE))
}
yy <- c(nc$y, pc$y); ss <- c(nc$se, pc$se); xx <- c(rep(0, nrow(nc)), pc$true)
e1 <- optim(c(0, 1, 0.1, 0), em_negll, y = yy, se = ss, x = xx, method = "BFGS",
            control = list(reltol = 1e-15, maxit = 10000))
e2 <- optim(e1$par, em_negll, y = yy, se = ss, x = xx, method = "Nelder-Mead",
            control = list(reltol = 1e-15, maxit = 50000))
e3 <- optim(e2$par, em_negll, y = yy, se = ss, x = xx, method = "BFGS",
            control = list(reltol = 1e-15, maxit = 10000))
em <- e3$par
ci_em <- c(bound(0, em[1], em[2], em[3], em[4], prim$y, prim$se),
           bound(-zz, em[1], em[2], em[3], em[4], prim$y, prim$se),
           bound(zz, em[1], em[2], em[3], em[4], prim$y, prim$se))
result <- list(mu = f1$mu, tau = f1$tau, ll = f1$ll, mu2 = f2$mu, tau2 = f2$tau,
               ll_at = ll_at, cal_p = cal_p, ci = ci, ease = ease,
               trad_p = 2 * pnorm(-abs(prim$y / prim$se)),
               em = em, em_ll = -e3$value, ci_em = ci_em)
"""


@pytest.fixture(scope="module")
def ref() -> dict[str, Any]:
    prim = pd.DataFrame({"y": [PRIMARY[0]], "se": [PRIMARY[1]]})
    return run_r(R_REF, {"nc": NC, "tight": NC_TIGHT, "pc": PC, "prim": prim})


@pytest.mark.r_oracle
def test_null_fit_matches_r(ref: dict[str, Any]) -> None:
    """The ML null (mu, tau) and its log-likelihood, to 1e-6."""
    null = fit_null(NC["y"], NC["se"])
    assert null.n_controls == 30
    assert null.mean == pytest.approx(ref["mu"], abs=1e-6)
    assert null.sd == pytest.approx(ref["tau"], abs=1e-6)
    assert null.log_likelihood == pytest.approx(ref["ll"], abs=1e-9)
    # our likelihood is at least as high as R's optimum (we do not stop early)
    assert null.log_likelihood >= ref["ll"] - 1e-12
    assert null_log_likelihood(0.1, 0.2, NC["y"], NC["se"]) == pytest.approx(
        ref["ll_at"], rel=1e-12
    )


@pytest.mark.r_oracle
def test_null_on_boundary(ref: dict[str, Any]) -> None:
    """Controls with less spread than their SEs: tau = 0 exactly."""
    null = fit_null(NC_TIGHT["y"], NC_TIGHT["se"])
    assert null.sd == 0.0
    assert ref["tau2"] == pytest.approx(0.0, abs=1e-6)
    assert null.mean == pytest.approx(ref["mu2"], abs=1e-6)


@pytest.mark.r_oracle
def test_calibrated_p_ci_and_ease(ref: dict[str, Any]) -> None:
    """Calibrated p-value and CI of the primary estimate, and EASE, from the null."""
    null = fit_null(NC["y"], NC["se"])
    y, se = PRIMARY
    assert null.calibrate_p([y], [se])[0] == pytest.approx(ref["cal_p"], abs=1e-6)
    assert traditional_p([y], [se])[0] == pytest.approx(ref["trad_p"], rel=1e-12)
    cal = null.to_error_model().calibrate_ci(y, se)
    np.testing.assert_allclose([cal.log_rr, cal.log_lower, cal.log_upper], ref["ci"], atol=1e-6)
    assert null.ease() == pytest.approx(ref["ease"], abs=1e-6)


@pytest.mark.r_oracle
def test_error_model_from_positive_controls(ref: dict[str, Any]) -> None:
    """fitSystematicErrorModel's likelihood maximised; calibrated CI from it."""
    y = np.concatenate([NC["y"], PC["y"]])
    se = np.concatenate([NC["se"], PC["se"]])
    x = np.concatenate([np.zeros(len(NC)), PC["true"]])
    model, ll = fit_error_model(y, se, x)
    assert ll >= ref["em_ll"] - 1e-9
    assert ll == pytest.approx(ref["em_ll"], abs=1e-7)
    params = [model.mean_intercept, model.mean_slope, model.sd_intercept, model.sd_slope]
    np.testing.assert_allclose(params, ref["em"], atol=1e-6)
    cal = model.calibrate_ci(*PRIMARY)
    np.testing.assert_allclose([cal.log_rr, cal.log_lower, cal.log_upper], ref["ci_em"], atol=1e-6)


def test_ease_special_cases() -> None:
    """EASE of a point mass is |mu|; of a centred normal tau * sqrt(2 / pi)."""
    assert expected_absolute_systematic_error(-0.3, 0.0) == pytest.approx(0.3)
    assert expected_absolute_systematic_error(0.0, 0.5) == pytest.approx(
        0.5 * math.sqrt(2 / math.pi)
    )


def test_no_systematic_error_changes_nothing() -> None:
    """With the null N(0, 0) the calibrated CI is the Wald CI."""
    cal = ErrorModel(0.0, 1.0, 0.0, 0.0).calibrate_ci(0.4, 0.2)
    assert cal.log_rr == pytest.approx(0.4)
    assert cal.log_lower == pytest.approx(0.4 - 1.959963984540054 * 0.2)
    assert cal.se_log_rr == pytest.approx(0.2)


def test_bad_input() -> None:
    with pytest.raises(NotEstimable, match="need at least 5"):
        fit_null([0.1, 0.2, 0.3], [0.1, 0.1, 0.1])
    with pytest.raises(InputDataError, match="equal length"):
        fit_null([0.1, 0.2], [0.1])
    with pytest.raises(InputDataError, match="se_log_rr must be > 0"):
        fit_null([0.1] * 6, [0.1, 0.1, 0.0, 0.1, 0.1, 0.1])
    # infinite and extreme estimates are left out, with a note
    null = fit_null([0.1, 0.2, -0.1, 0.0, 0.15, np.inf, 6.0], [0.2] * 7)
    assert null.n_controls == 5
    assert len(null.notes) == 2
