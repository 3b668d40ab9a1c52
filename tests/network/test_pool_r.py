"""Pooling site packages equals the analysis of the pooled person-level data (R survival).

Three synthetic sites are reduced to packages (aggregates only), pooled by the
coordinator, and compared with R run on the pooled person-level data: the site-stratified
log-rank with ``survdiff(Surv(time, event) ~ arm + strata(site))``, the pooled grid KM with
``survfit`` on the interval-grouped times.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.network.sites import all_sites, write_site_packages
from tests.stats.r_oracle import run_r

from cohort_etl.network.pool import pool_packages

RTOL = 1e-9
D = 90

R_POOLED = r"""
library(survival)
d$arm <- factor(d$arm_role, levels = c("control", "treated"))
s <- survdiff(Surv(time, event) ~ arm + strata(site), data = d)
d$g <- pmax(1, ceiling(d$time / D$d)) * D$d
km <- list()
for (a in levels(d$arm)) {
  f <- survfit(Surv(g, event) ~ 1, data = d[d$arm == a, ])
  grid <- seq(D$d, max(d$g[d$arm == a]), by = D$d)
  x <- summary(f, times = grid)
  km[[a]] <- data.frame(time = x$time, n_risk = x$n.risk, n_event = x$n.event,
                        surv = x$surv, std_err = x$std.err, lower = x$lower,
                        upper = x$upper)
}
result <- list(chisq = s$chisq, obs = rowSums(as.matrix(s$obs)),
               exp = rowSums(as.matrix(s$exp)), var = unname(s$var), km = km)
"""


@pytest.fixture(scope="module")
def r_pooled() -> dict[str, Any]:
    return run_r(R_POOLED, {"d": all_sites(), "D": pd.DataFrame({"d": [D]})})


def _pool(tmp: Path, min_cell: int) -> tuple[dict[str, Any], pd.DataFrame]:
    paths = write_site_packages(tmp / "packages", min_cell=min_cell, interval_days=D)
    pooled = pool_packages(paths, tmp / "pooled")
    km = pd.read_csv(tmp / "pooled" / "pooled_km.csv")
    assert json.loads((tmp / "pooled" / "pooled.json").read_text()) == pooled
    return pooled, km


@pytest.mark.r_oracle
@pytest.mark.parametrize("min_cell", [1, 5])
def test_stratified_logrank_equals_survdiff(
    r_pooled: dict[str, Any], tmp_path: Path, min_cell: int
) -> None:
    pooled, _ = _pool(tmp_path, min_cell)
    lr = pooled["logrank_stratified_by_site"]["os"]
    assert lr["groups"] == ["control", "treated"] and lr["df"] == 1
    # pooled.json rounds to 10 significant digits
    np.testing.assert_allclose(lr["chi_square"], r_pooled["chisq"], rtol=1e-9)
    np.testing.assert_allclose(lr["observed"], r_pooled["obs"], rtol=1e-9)
    np.testing.assert_allclose(lr["expected"], r_pooled["exp"], rtol=1e-9)
    np.testing.assert_allclose(lr["variance"], r_pooled["var"], rtol=1e-9)
    assert lr["chi_square"] > 3.84, "the synthetic HR 0.6 should be detected"


@pytest.mark.r_oracle
def test_pooled_grid_km_equals_survfit_on_grouped_data(
    r_pooled: dict[str, Any], tmp_path: Path
) -> None:
    """min_cell 1: nothing withheld, the whole pooled curve is R's."""
    _, km = _pool(tmp_path, 1)
    for arm in ("control", "treated"):
        ours = km[(km["outcome"] == "os") & (km["arm_role"] == arm)].reset_index(drop=True)
        theirs = r_pooled["km"][arm]
        assert len(ours) == len(theirs)
        assert ours["reason"].isna().all()
        np.testing.assert_array_equal(ours["time"], theirs["time"])
        np.testing.assert_array_equal(ours["n_risk"], theirs["n_risk"])
        np.testing.assert_array_equal(ours["n_event"], theirs["n_event"])
        for col in ("surv", "std_err", "lower", "upper"):
            np.testing.assert_allclose(ours[col], theirs[col], rtol=RTOL, err_msg=col)


@pytest.mark.r_oracle
def test_withheld_cells_end_the_pooled_curve_with_a_reason(
    r_pooled: dict[str, Any], tmp_path: Path
) -> None:
    """min_cell 5: the estimable prefix is still exactly R's; after the first interval a
    site withheld, surv is null with the sites named, never a wrong number."""
    _, km = _pool(tmp_path, 5)
    for arm in ("control", "treated"):
        ours = km[(km["outcome"] == "os") & (km["arm_role"] == arm)].reset_index(drop=True)
        theirs = r_pooled["km"][arm]
        ok = ours["reason"].isna()
        assert ok.sum() >= 2, "the first intervals should survive suppression"
        assert (~ok).sum() >= 1, "the tail must be withheld"
        first_bad = int(np.flatnonzero(~ok)[0])
        assert ok[:first_bad].all() and (~ok[first_bad:]).all()
        assert ours["surv"][~ok].isna().all()
        assert "site" in ours["reason"][first_bad]
        np.testing.assert_allclose(ours["surv"][ok], theirs["surv"][: int(ok.sum())], rtol=RTOL)
