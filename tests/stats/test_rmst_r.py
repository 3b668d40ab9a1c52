"""RMST per arm and the between-arm difference / ratio against R survival.

R code::

    library(survival)
    f <- survfit(Surv(time, status) ~ sex, data = lung)
    tab <- summary(f, rmean = 365)$table[, c("rmean", "se(rmean)")]
    # print(f, rmean = 365) shows the same numbers
    d <- tab[2, 1] - tab[1, 1]; se <- sqrt(tab[1, 2]^2 + tab[2, 2]^2)
    # survRM2::rmst2 semantics: difference +/- 1.96 se; ratio on the log scale
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.stats.r_oracle import run_r

from cohort_etl.errors import InputDataError
from cohort_etl.outcomes.rmst import rmst_compare

R_RMST = r"""
library(survival)
f <- survfit(Surv(time, status) ~ sex, data = lung)
tab <- summary(f, rmean = 365)$table[, c("rmean", "se(rmean)")]
d <- tab[2, 1] - tab[1, 1]
se <- sqrt(tab[1, 2]^2 + tab[2, 2]^2)
lr <- log(tab[2, 1] / tab[1, 1])
selr <- sqrt((tab[1, 2] / tab[1, 1])^2 + (tab[2, 2] / tab[2, 1])^2)
z <- qnorm(0.975)
result <- list(d = data.frame(time = lung$time, status = lung$status - 1,
                              female = as.numeric(lung$sex == 2)),
               rmean = unname(tab[, 1]), se = unname(tab[, 2]),
               diff = c(d, d - z * se, d + z * se, 2 * pnorm(-abs(d / se))),
               ratio = c(exp(lr), exp(lr - z * selr), exp(lr + z * selr)))
"""


@pytest.fixture(scope="module")
def lung_rmst() -> dict[str, Any]:
    return run_r(R_RMST)


@pytest.mark.r_oracle
def test_lung_rmst_by_sex(lung_rmst: dict[str, Any]) -> None:
    """Per-arm RMST at 365 days with survfit's SE; women (sex 2) vs men."""
    d = lung_rmst["d"]
    cmp = rmst_compare(d["time"], d["status"], d["female"], tau=365)
    assert [cmp.arm0.mean, cmp.arm1.mean] == pytest.approx(lung_rmst["rmean"], rel=1e-9)
    assert [cmp.arm0.se, cmp.arm1.se] == pytest.approx(lung_rmst["se"], rel=1e-9)
    got = [cmp.difference, cmp.difference_lower, cmp.difference_upper, cmp.difference_p]
    assert got == pytest.approx(lung_rmst["diff"], rel=1e-9)
    assert [cmp.ratio, cmp.ratio_lower, cmp.ratio_upper] == pytest.approx(
        lung_rmst["ratio"], rel=1e-9
    )


def test_tau_beyond_follow_up() -> None:
    with pytest.raises(InputDataError, match="exceeds the largest follow-up time of arm 1"):
        rmst_compare([1.0, 2.0, 3.0, 9.0], [1, 0, 1, 1], [1, 1, 0, 0], tau=5)
    with pytest.raises(InputDataError, match="arm: must be 0/1"):
        rmst_compare([1.0, 2.0], [1, 0], [1, 2], tau=1)
