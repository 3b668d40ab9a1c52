"""Log-rank, G-rho, stratified and pooled log-rank, and Mantel-Byar against R survival 3.5.

The oracle for the log-rank family is ``survdiff``; for the Mantel-Byar test (an exposure
that starts during follow-up) it is the score test of ``coxph`` with the exposure as a
time-varying covariate on start/stop data with ``ties = "exact"``, whose information at
beta = 0 is the hypergeometric variance of the log-rank test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.stats.r_oracle import run_r

from cohort_etl.errors import InputDataError
from cohort_etl.outcomes.logrank import logrank_test, mantel_byar_test, pool_logrank

RTOL = 1e-9


def quotes_r(code: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Append the R code a fixture runs to its docstring (so the docstring quotes it)."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__doc__ = f"{fn.__doc__ or ''}\n\nR code::\n\n{code}"
        return fn

    return wrap


def close(ours: Any, theirs: Any, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(
        np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float), rtol=rtol, atol=0
    )


R_SURVDIFF = r"""
library(survival)
d <- lung[, c("time", "status", "sex", "ph.ecog")]
v <- veteran[, c("time", "status", "trt", "celltype")]; v$celltype <- as.character(v$celltype)
parts <- function(s) list(n = unname(s$n), obs = unname(as.matrix(s$obs)),
  exp = unname(as.matrix(s$exp)), var = unname(s$var), chisq = s$chisq,
  df = length(s$n) - 1, p = pchisq(s$chisq, sum(rowSums(as.matrix(s$exp)) > 0) - 1,
  lower.tail = FALSE))
result <- list(d = d, v = v,
  sex = parts(survdiff(Surv(time, status) ~ sex, data = d)),
  sex_rho1 = parts(survdiff(Surv(time, status) ~ sex, data = d, rho = 1)),
  ecog = parts(survdiff(Surv(time, status) ~ ph.ecog, data = d)),
  ecog_rho05 = parts(survdiff(Surv(time, status) ~ ph.ecog, data = d, rho = 0.5)),
  ecog_strat = parts(survdiff(Surv(time, status) ~ ph.ecog + strata(sex), data = d)),
  cell = parts(survdiff(Surv(time, status) ~ celltype, data = v)),
  trt_strat_cell = parts(survdiff(Surv(time, status) ~ trt + strata(celltype), data = v)))
"""


@pytest.fixture(scope="module")
@quotes_r(R_SURVDIFF)
def survdiff_r() -> dict[str, Any]:
    """survdiff on lung (by sex, by ph.ecog, stratified by sex, rho = 1 and 0.5) and on
    veteran (4 cell types; trt stratified by cell type)."""
    return run_r(R_SURVDIFF)


def check(res: Any, r: dict[str, Any]) -> None:
    close(res.n, r["n"])
    obs = np.asarray(r["obs"], dtype=float)
    exp = np.asarray(r["exp"], dtype=float)
    # survdiff returns one column per stratum when stratified: compare the sums
    close(res.observed, obs.sum(axis=1) if obs.ndim == 2 else obs)
    close(res.expected, exp.sum(axis=1) if exp.ndim == 2 else exp)
    close(res.variance, r["var"])
    close(res.chi_square, r["chisq"])
    close(res.p_value, r["p"])
    assert res.df == r["df"]


@pytest.mark.r_oracle
def test_lung_sex(survdiff_r: dict[str, Any]) -> None:
    """survdiff(Surv(time, status) ~ sex, lung): chi2 10.3267, p 0.00131 (METHODS.md)."""
    d = survdiff_r["d"]
    res = logrank_test(d["time"], d["status"] - 1, d["sex"])
    check(res, survdiff_r["sex"])
    assert round(res.chi_square, 4) == 10.3267
    assert round(res.p_value, 5) == 0.00131
    assert res.groups == [1, 2]


@pytest.mark.r_oracle
@pytest.mark.parametrize(("key", "rho"), [("sex_rho1", 1.0)])
def test_lung_sex_g_rho(survdiff_r: dict[str, Any], key: str, rho: float) -> None:
    """G-rho family, rho = 1 (Peto-Peto): weighted O, E, V and chi-square."""
    d = survdiff_r["d"]
    check(logrank_test(d["time"], d["status"] - 1, d["sex"], rho=rho), survdiff_r[key])


@pytest.mark.r_oracle
def test_lung_ecog_four_groups(survdiff_r: dict[str, Any]) -> None:
    """ph.ecog (0-3, one patient with 3, one NA dropped as R does): 3 df; rho = 0.5 too."""
    d = survdiff_r["d"].dropna(subset=["ph.ecog"])
    check(logrank_test(d["time"], d["status"] - 1, d["ph.ecog"]), survdiff_r["ecog"])
    check(logrank_test(d["time"], d["status"] - 1, d["ph.ecog"], rho=0.5), survdiff_r["ecog_rho05"])


@pytest.mark.r_oracle
def test_lung_ecog_stratified_by_sex(survdiff_r: dict[str, Any]) -> None:
    """survdiff(... ~ ph.ecog + strata(sex)): O, E, V summed over strata; and pooling the
    two per-sex results (as a coordinator pools sites) gives the same test."""
    d = survdiff_r["d"].dropna(subset=["ph.ecog"])
    res = logrank_test(d["time"], d["status"] - 1, d["ph.ecog"], strata=d["sex"])
    check(res, survdiff_r["ecog_strat"])
    assert res.stratified
    # one "site" per sex; sex = 2 has no ph.ecog = 3 patient: pooling aligns groups
    sites = [logrank_test(g["time"], g["status"] - 1, g["ph.ecog"]) for _, g in d.groupby("sex")]
    assert [len(r.groups) for r in sites] == [4, 3]
    check(pool_logrank(sites), survdiff_r["ecog_strat"])
    summed = res.per_stratum.groupby("group")[["observed", "expected"]].sum()
    close(summed["observed"], res.observed)
    close(summed["expected"], res.expected)


@pytest.mark.r_oracle
def test_veteran_celltype_and_pooling(survdiff_r: dict[str, Any]) -> None:
    """veteran (many tied times): 4 cell types; trt stratified by cell type equals pooling
    the four per-cell-type results with pool_logrank."""
    v = survdiff_r["v"]
    check(logrank_test(v["time"], v["status"], v["celltype"]), survdiff_r["cell"])
    strat = logrank_test(v["time"], v["status"], v["trt"], strata=v["celltype"])
    check(strat, survdiff_r["trt_strat_cell"])
    pooled = pool_logrank(
        [logrank_test(g["time"], g["status"], g["trt"]) for _, g in v.groupby("celltype")]
    )
    check(pooled, survdiff_r["trt_strat_cell"])


R_HEART = r"""
library(survival)
h <- heart[, c("id", "start", "stop", "event", "transplant")]
f <- coxph(Surv(start, stop, event) ~ transplant, data = h, ties = "exact")
f2 <- coxph(Surv(start, stop, event) ~ transplant + strata(surgery), data = heart,
            ties = "exact")
result <- list(h = heart[, c("id", "start", "stop", "event", "transplant", "surgery")],
  score = unname(f$score), p = pchisq(unname(f$score), 1, lower.tail = FALSE),
  score_strat = unname(f2$score))
"""


@pytest.fixture(scope="module")
@quotes_r(R_HEART)
def heart_r() -> dict[str, Any]:
    """Stanford heart transplant (survival::heart, start/stop rows per patient)."""
    return run_r(R_HEART)


def heart_per_patient(h: pd.DataFrame) -> pd.DataFrame:
    """One row per patient: follow-up end, death, transplant time (NaN if none)."""
    rows = []
    for pid, g in h.groupby("id"):
        g = g.sort_values("stop")
        tx = g.loc[g["transplant"].astype(int) == 1, "start"]
        rows.append(
            {
                "id": pid,
                "time": float(g["stop"].iloc[-1]),
                "event": int(g["event"].iloc[-1]),
                "switch": float(tx.iloc[0]) if len(tx) else np.nan,
                "surgery": int(g["surgery"].iloc[0]),
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.r_oracle
def test_mantel_byar_heart(heart_r: dict[str, Any]) -> None:
    """Mantel-Byar on heart (transplant as time-varying exposure) equals the score test of
    coxph(Surv(start, stop, event) ~ transplant, ties = "exact"), also stratified."""
    p = heart_per_patient(heart_r["h"])
    res = mantel_byar_test(p["time"], p["event"], p["switch"])
    close(res.chi_square, heart_r["score"])
    close(res.p_value, heart_r["p"])
    assert res.groups == [0, 1]
    assert res.n[1] == int(p["switch"].notna().sum())
    strat = mantel_byar_test(p["time"], p["event"], p["switch"], strata=p["surgery"])
    close(strat.chi_square, heart_r["score_strat"])


def test_bad_inputs() -> None:
    """Clear InputDataError naming the argument; no events -> not estimable with reason."""
    with pytest.raises(InputDataError, match="groups: only one group"):
        logrank_test([1, 2, 3], [1, 0, 1], ["a", "a", "a"])
    with pytest.raises(InputDataError, match="groups: has 2 values"):
        logrank_test([1, 2, 3], [1, 0, 1], ["a", "b"])
    with pytest.raises(InputDataError, match="events: must be coded 0/1"):
        logrank_test([1, 2, 3], [1, 2, 1], ["a", "b", "a"])
    with pytest.raises(InputDataError, match="durations: 1 negative"):
        logrank_test([1, -2, 3], [1, 0, 1], ["a", "b", "a"])
    with pytest.raises(InputDataError, match="durations: 1 missing"):
        logrank_test([1, np.nan, 3], [1, 0, 1], ["a", "b", "a"])
    with pytest.raises(InputDataError, match="rho"):
        logrank_test([1, 2, 3], [1, 0, 1], ["a", "b", "a"], rho=-1)
    with pytest.raises(InputDataError, match="switch_times"):
        mantel_byar_test([1, 2, 3], [1, 0, 1], [np.nan, np.nan, np.nan])
    res = logrank_test([1, 2, 3, 4], [0, 0, 0, 0], ["a", "b", "a", "b"])
    assert not res.estimable
    assert res.p_value is None
    assert res.reason is not None and "no events" in res.reason
