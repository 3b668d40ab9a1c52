"""Balance table: pooled-SD SMDs and variance ratios against R, love-plot data, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.stats.r_oracle import run_r

from cohort_etl.errors import InputDataError
from cohort_etl.matching import (
    PropensityModel,
    balance_table,
    imbalanced,
    make_matcher,
    max_abs_smd,
)

COVARIATES = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]


@pytest.mark.r_oracle
@pytest.mark.parametrize("replace", [False, True])
def test_pooled_smd_equals_r(replace: bool) -> None:
    """R computes the CohortMethod SMD on MatchIt's lalonde match (1:2) with weights:

    smd <- function(x, w, binary) {
      wm <- function(v, u) sum(u * v) / sum(u)
      wv <- function(v, u) if (binary) wm(v, u) * (1 - wm(v, u)) else
              cov.wt(cbind(v), u, method = "unbiased")$cov[1, 1]
      ... (wm(xt) - wm(xc)) / sqrt((wv(xt) + wv(xc)) / 2)
    }
    """
    data = run_r(
        """
        data("lalonde", package = "MatchIt")
        result <- list(d = cbind(data.frame(id = rownames(lalonde)), lalonde))
        """
    )["d"]
    ps = PropensityModel(COVARIATES).fit(data, "treat").ps_
    res = make_matcher("matchit", ratio=2, replace=replace).fit(ps, data["treat"]).result_
    data = data.assign(w=res.weights)
    out = run_r(
        """
        t <- d$treat == 1
        cols <- list(age = d$age, educ = d$educ, raceblack = as.numeric(d$race == "black"),
                     racehispan = as.numeric(d$race == "hispan"),
                     racewhite = as.numeric(d$race == "white"), married = d$married,
                     nodegree = d$nodegree, re74 = d$re74, re75 = d$re75)
        wm <- function(v, u) sum(u * v) / sum(u)
        wvar <- function(v, u, binary) {
          if (binary) { m <- wm(v, u); return(m * (1 - m)) }
          keep <- u > 0
          cov.wt(cbind(v[keep]), u[keep], method = "unbiased")$cov[1, 1]
        }
        one <- function(x, w) {
          binary <- all(x %in% c(0, 1))
          mt <- wm(x[t], w[t]); mc <- wm(x[!t], w[!t])
          vt <- wvar(x[t], w[t], binary); vc <- wvar(x[!t], w[!t], binary)
          c(smd = (mt - mc) / sqrt((vt + vc) / 2), vr = if (binary) NA else vt / vc)
        }
        before <- sapply(cols, one, w = rep(1, nrow(d)))
        after <- sapply(cols, one, w = d$w)
        result <- list(names = names(cols), smd_before = unname(before["smd", ]),
                       smd_after = unname(after["smd", ]), vr_before = unname(before["vr", ]),
                       vr_after = unname(after["vr", ]))
        """,
        {"d": data},
    )
    bal = balance_table(data, "treat", COVARIATES, res.weights, method="pooled")
    assert list(bal["covariate"]) == out["names"]
    for col, key in (("smd_before", "smd_before"), ("smd_after", "smd_after")):
        np.testing.assert_allclose(bal[col].to_numpy(dtype=float), out[key], rtol=1e-9)
    for col in ("vr_before", "vr_after"):
        ref = np.array([np.nan if v is None else v for v in out[col]], dtype=float)
        ours = bal[col.replace("vr", "var_ratio")].to_numpy(dtype=float)
        np.testing.assert_allclose(ours, ref, rtol=1e-9, equal_nan=True)


def test_hand_computed_smd_and_love_plot_columns() -> None:
    # treated x = 1, 2, 3 (mean 2, var 1); control x = 0, 1 (mean 0.5, var 0.5)
    # pooled SMD = 1.5 / sqrt(0.75) = 1.7320508; matchit SMD = 1.5 / 1 = 1.5
    d = pd.DataFrame({"t": [1, 1, 1, 0, 0], "x": [1.0, 2.0, 3.0, 0.0, 1.0]})
    pooled = balance_table(d, "t", ["x"])
    assert pooled.loc[0, "smd_before"] == pytest.approx(1.5 / np.sqrt(0.75))
    assert pooled.loc[0, "var_ratio_before"] == pytest.approx(2.0)
    assert np.isnan(pooled.loc[0, "smd_after"])
    mi = balance_table(d, "t", ["x"], method="matchit")
    assert mi.loc[0, "smd_before"] == pytest.approx(1.5)
    assert {"covariate", "smd_before", "smd_after"} <= set(pooled.columns)


def test_levels_threshold_helpers_and_errors() -> None:
    d = pd.DataFrame(
        {"t": [1, 1, 0, 0, 0, 1], "grp": ["a", "b", "b", "c", "c", "a"], "x": [1, 0, 1, 0, 1, 1]}
    )
    w = np.array([1, 1, 1, 1, 0, 0], dtype=float)
    bal = balance_table(d, "t", ["grp", "x"], w)
    assert list(bal["covariate"]) == ["grpa", "grpb", "grpc", "x"]
    assert list(bal["kind"]) == ["level", "level", "level", "binary"]
    # grpa: before 2/3 vs 0, SDs sqrt(2/9) and 0 -> 2.0; after 1/2 vs 0 -> 0.5 / sqrt(1/8)
    grpa = bal.set_index("covariate").loc["grpa"]
    assert grpa["smd_before"] == pytest.approx(2.0)
    assert grpa["smd_after"] == pytest.approx(0.5 / np.sqrt(1 / 8))
    assert max_abs_smd(bal, "before") == pytest.approx(bal["smd_before"].abs().max())
    assert "grpa" in imbalanced(bal, 0.1, "after")
    with pytest.raises(InputDataError, match="weights have length"):
        balance_table(d, "t", ["x"], np.ones(3))
    with pytest.raises(InputDataError, match="'x' has 1 missing"):
        balance_table(d.assign(x=[1, None, 0, 0, 1, 1]), "t", ["x"])
