"""Fine-Gray subdistribution hazards against R ``cmprsk::crr`` (Debian r-cran-cmprsk).

Data: survival::mgus2, progression to plasma-cell malignancy (PCM, cause 1) with death
before progression competing (cause 2), as in the survival package's competing-risks
vignette; times are whole months, so event and censoring times are heavily tied.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.stats.r_oracle import run_r

from cohort_etl.errors import InputDataError, NotEstimable
from cohort_etl.outcomes.competing import FineGray

RTOL = 1e-6

R_CRR = r"""
library(survival)
library(cmprsk)
etime <- with(mgus2, ifelse(pstat == 0, futime, ptime))
event <- with(mgus2, ifelse(pstat == 0, 2 * death, 1))
d <- data.frame(etime = etime, event = event, age = mgus2$age,
                male = as.numeric(mgus2$sex == "M"))
fit1 <- crr(d$etime, d$event, cbind(age = d$age, male = d$male), failcode = 1,
            cencode = 0, gtol = 1e-12, maxiter = 50)
fit2 <- crr(d$etime, d$event, cbind(male = d$male), failcode = 2, cencode = 0,
            gtol = 1e-12, maxiter = 50)
result <- list(d = d, coef1 = unname(fit1$coef), se1 = unname(sqrt(diag(fit1$var))),
               var1 = fit1$var, ll1 = fit1$loglik, conv1 = fit1$converged,
               coef2 = unname(fit2$coef), se2 = unname(sqrt(diag(fit2$var))))
"""


@pytest.fixture(scope="module")
def crr_r() -> dict[str, Any]:
    """R code::

    etime <- with(mgus2, ifelse(pstat == 0, futime, ptime))
    event <- with(mgus2, ifelse(pstat == 0, 2 * death, 1))
    crr(etime, event, cbind(age, male), failcode = 1, cencode = 0, gtol = 1e-12)
    crr(etime, event, cbind(male), failcode = 2, cencode = 0, gtol = 1e-12)
    """
    return run_r(R_CRR)


@pytest.mark.r_oracle
def test_mgus2_progression(crr_r: dict[str, Any]) -> None:
    """Coefficients, sandwich variance (with the censoring-weight term) and the
    log pseudo-likelihood of the PCM model with age and sex."""
    d = crr_r["d"]
    assert crr_r["conv1"] is True
    fg = FineGray(cause=1).fit(d["etime"], d["event"], d[["age", "male"]])
    np.testing.assert_allclose(fg.coef_, crr_r["coef1"], rtol=RTOL)
    np.testing.assert_allclose(fg.se_, crr_r["se1"], rtol=RTOL)
    np.testing.assert_allclose(fg.var_, np.array(crr_r["var1"]), rtol=RTOL)
    # crr reports the negative of its minimised objective: the log pseudo-likelihood
    np.testing.assert_allclose(fg.loglik_, crr_r["ll1"], rtol=1e-9)
    assert fg.names_ == ["age", "male"]
    res = fg.results_[1]
    assert res.lower < res.shr < res.upper


@pytest.mark.r_oracle
def test_mgus2_death_as_cause(crr_r: dict[str, Any]) -> None:
    """The other cause as the event of interest, one covariate."""
    d = crr_r["d"]
    fg = FineGray(cause=2).fit(d["etime"], d["event"], d[["male"]])
    np.testing.assert_allclose(fg.coef_, [crr_r["coef2"]], rtol=RTOL)
    np.testing.assert_allclose(fg.se_, [crr_r["se2"]], rtol=RTOL)


def test_bad_input() -> None:
    t = [1.0, 2.0, 3.0]
    with pytest.raises(InputDataError, match="events"):
        FineGray().fit(t, [1, -1, 0], pd.DataFrame({"x": [0.0, 1.0, 0.0]}))
    with pytest.raises(NotEstimable, match="no event of cause 1"):
        FineGray().fit(t, [2, 0, 0], pd.DataFrame({"x": [0.0, 1.0, 0.0]}))
    with pytest.raises(InputDataError, match="'x'"):
        FineGray().fit(t, [1, 2, 0], pd.DataFrame({"x": [0.0, None, 0.0]}))
