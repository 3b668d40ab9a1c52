"""Nearest-neighbour matching and balance against R MatchIt 4.5.1 on ``lalonde``.

R is the oracle, run in each test (tests/stats/r_oracle.py). The data come from R
(``data("lalonde", package = "MatchIt")``), our PS model is fitted in Python, and the
matches, weights, distances and ``summary()`` balance numbers are compared with R's.

MatchIt 4.5.1 finding: its fast vector matcher (``nn_matchC_vec``, new in 4.5.1) compares
distance differences with C's integer ``abs()``, which truncates them toward zero. On the
probability scale every difference is then 0, so (a) the caliper never binds and (b) the
lower-PS neighbour always wins over a closer higher-PS one; with replacement and
``ratio > 1`` it also fails to skip controls already in a unit's set. Our ``matchit451``
preset (``legacy_int_abs=True``) reproduces that release bit for bit (asserted below for
six configurations); the ``matchit`` preset applies the intended rule and is checked
against MatchIt's distance-matrix matcher (``nn_matchC``, real-valued distances).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.stats.r_oracle import run_r

from cohort_etl.matching import (
    PropensityModel,
    balance_table,
    make_matcher,
    run_matching,
)

pytestmark = pytest.mark.r_oracle

COVARIATES = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]
FORMULA = "treat ~ age + educ + race + married + nodegree + re74 + re75"

# name -> (R matchit() extra arguments, our matcher overrides)
CONFIGS = {
    "default": ("", {}),
    "caliper": (", caliper = 0.1, std.caliper = TRUE", {"caliper": 0.1}),
    "ratio2": (", ratio = 2", {"ratio": 2}),
    "ratio2_caliper": (", ratio = 2, caliper = 0.1", {"ratio": 2, "caliper": 0.1}),
    "replace_ratio2": (", ratio = 2, replace = TRUE", {"ratio": 2, "replace": True}),
    "smallest_caliper": (
        ', m.order = "smallest", caliper = 0.05',
        {"order": "smallest", "caliper": 0.05},
    ),
    "data_order_ratio3": (', m.order = "data", ratio = 3', {"order": "data", "ratio": 3}),
    "exact": (", exact = ~ married + nodegree", {"exact": ["married", "nodegree"]}),
    "exact_ratio2": (
        ", exact = ~ race, ratio = 2, caliper = 0.2",
        {"exact": ["race"], "ratio": 2, "caliper": 0.2},
    ),
}


@pytest.fixture(scope="module")
def lalonde() -> pd.DataFrame:
    out = run_r(
        """
        data("lalonde", package = "MatchIt")
        result <- list(d = cbind(data.frame(id = rownames(lalonde)), lalonde))
        """
    )
    return out["d"]


@pytest.fixture(scope="module")
def matchit_runs(lalonde: pd.DataFrame) -> dict:
    """R code (one matchit() call per configuration):

    m <- matchit(treat ~ age + educ + race + married + nodegree + re74 + re75,
                 data = lalonde, method = "nearest" <extra arguments>)
    s <- summary(m)   # s$sum.all, s$sum.matched, s$nn
    """
    calls = []
    for name, (extra, _) in CONFIGS.items():
        calls.append(
            f"""
            m <- matchit({FORMULA}, data = d, method = "nearest"{extra})
            s <- summary(m)
            mm <- matrix(match(m$match.matrix, rownames(d)), nrow(m$match.matrix))
            mm[is.na(mm)] <- 0
            res[["{name}"]] <- list(
              mm = mm, weights = unname(m$weights), distance = unname(m$distance),
              subclass = as.integer(as.character(m$subclass)),
              all = cbind(data.frame(term = rownames(s$sum.all)), as.data.frame(s$sum.all)),
              matched = cbind(data.frame(term = rownames(s$sum.matched)),
                              as.data.frame(s$sum.matched)),
              nn = as.data.frame(s$nn))
            """
        )
    script = (
        "library(MatchIt)\nd$race <- factor(d$race)\nres <- list()\n"
        + "\n".join(calls)
        + '\nresult <- c(res, list(version = as.character(packageVersion("MatchIt"))))'
    )
    return run_r(script, {"d": lalonde})


@pytest.fixture(scope="module")
def ps_model(lalonde: pd.DataFrame) -> PropensityModel:
    return PropensityModel(COVARIATES).fit(lalonde, "treat")


def _r_match_matrix(run: dict, n_treated: int) -> np.ndarray:
    return np.asarray(run["mm"], dtype=np.int64).reshape(n_treated, -1) - 1


def test_oracle_is_matchit_451(matchit_runs: dict) -> None:
    assert matchit_runs["version"] == "4.5.1"


def test_distance_equals_matchit_ps(matchit_runs: dict, ps_model: PropensityModel) -> None:
    r_ps = np.asarray(matchit_runs["default"]["distance"])
    np.testing.assert_allclose(ps_model.ps_, r_ps, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_matchit451_preset_reproduces_matchit(
    name: str, matchit_runs: dict, ps_model: PropensityModel, lalonde: pd.DataFrame
) -> None:
    run = matchit_runs[name]
    overrides = CONFIGS[name][1]
    res = (
        make_matcher("matchit451", **overrides)
        .fit(ps_model.ps_, lalonde["treat"], data=lalonde)
        .result_
    )
    r_mm = _r_match_matrix(run, res.n_treated)
    # identical treated -> control assignments, round by round
    np.testing.assert_array_equal(res.match_matrix, r_mm)
    np.testing.assert_allclose(res.weights, run["weights"], rtol=0, atol=1e-12)
    if res.subclass is not None:
        r_sub = np.asarray([0 if s is None else s for s in run["subclass"]])
        # same partition into matched sets (labels are numbered differently)
        ours = pd.Series(res.subclass)
        theirs = pd.Series(r_sub)
        assert ((ours == 0) == (theirs == 0)).all()
        pairs = pd.crosstab(ours[ours > 0], theirs[theirs > 0])
        assert ((pairs > 0).sum(axis=1) == 1).all() and ((pairs > 0).sum(axis=0) == 1).all()


def test_sample_sizes_match_methods_reference(
    matchit_runs: dict, ps_model: PropensityModel, lalonde: pd.DataFrame
) -> None:
    # METHODS.md: 429 control / 185 treated; matched 185 / 185; unmatched controls 244.
    nn = matchit_runs["default"]["nn"]
    assert list(nn["Control"]) == [429, 429, 185, 185, 244, 0]
    assert list(nn["Treated"]) == [185, 185, 185, 185, 0, 0]
    res = make_matcher("matchit451").fit(ps_model.ps_, lalonde["treat"]).result_
    assert (res.n_control, res.n_treated) == (429, 185)
    assert (res.n_treated_matched, res.n_control_matched) == (185, 185)
    assert res.n_control - res.n_control_matched == 244


@pytest.mark.parametrize("name", ["default", "ratio2", "replace_ratio2"])
def test_balance_equals_matchit_summary(
    name: str, matchit_runs: dict, ps_model: PropensityModel, lalonde: pd.DataFrame
) -> None:
    run = matchit_runs[name]
    res = make_matcher("matchit451", **CONFIGS[name][1]).fit(ps_model.ps_, lalonde["treat"]).result_
    bal = balance_table(
        lalonde,
        "treat",
        COVARIATES,
        res.weights,
        method="matchit",
        extra={"distance": ps_model.ps_},
    )
    for stage, key in (("before", "all"), ("after", "matched")):
        ref = run[key]
        assert list(bal["covariate"]) == list(ref["term"])
        for ours, theirs in (
            ("mean_treated", "Means Treated"),
            ("mean_control", "Means Control"),
            ("smd", "Std. Mean Diff."),
        ):
            np.testing.assert_allclose(
                bal[f"{ours}_{stage}"].to_numpy(dtype=float),
                ref[theirs].to_numpy(dtype=float),
                rtol=1e-6,
                atol=1e-8,
                err_msg=f"{ours} {stage}",
            )
        vr = pd.to_numeric(ref["Var. Ratio"]).to_numpy(dtype=float)
        np.testing.assert_allclose(
            bal[f"var_ratio_{stage}"].to_numpy(dtype=float), vr, rtol=1e-6, equal_nan=True
        )


@pytest.mark.parametrize(
    ("r_extra", "overrides"),
    [("", {}), (", caliper = cal, std.caliper = FALSE", {"caliper": 0.1}),
     (", ratio = 2, caliper = cal, std.caliper = FALSE", {"caliper": 0.1, "ratio": 2})],
)  # fmt: skip
def test_matchit_preset_equals_matchit_distance_matrix_matcher(
    r_extra: str, overrides: dict, ps_model: PropensityModel, lalonde: pd.DataFrame
) -> None:
    """The intended (real-valued) rule vs MatchIt's matrix-distance matcher.

    Rows are sorted by decreasing PS first so that MatchIt's m.order = "data" processes
    treated units largest first. R code:

        dm <- as.matrix(dist(d$ps)); cal <- 0.1 * sd(d$ps)
        m <- matchit(treat ~ ..., data = d, method = "nearest", distance = dm,
                     m.order = "data" <, caliper = cal, std.caliper = FALSE, ratio = 2>)

    Controls with identical PS (lalonde has duplicated control rows) are interchangeable:
    MatchIt's matrix matcher takes the first in data order, the sorted-order rule the
    nearest in sort position; so matched controls are compared by their PS, and by
    identity wherever no tie exists.
    """
    d = lalonde.assign(ps=ps_model.ps_)
    d = d.iloc[np.argsort(-d["ps"].to_numpy(), kind="stable")].reset_index(drop=True)
    out = run_r(
        f"""
        library(MatchIt)
        d$race <- factor(d$race)
        dm <- as.matrix(dist(d$ps)); cal <- 0.1 * sd(d$ps)
        m <- matchit({FORMULA}, data = d, method = "nearest", distance = dm,
                     m.order = "data"{r_extra})
        mm <- matrix(match(m$match.matrix, rownames(d)), nrow(m$match.matrix))
        mm[is.na(mm)] <- 0
        result <- list(mm = mm, weights = unname(m$weights))
        """,
        {"d": d},
    )
    res = make_matcher("matchit", **overrides).fit(d["ps"].to_numpy(), d["treat"]).result_
    r_mm = np.asarray(out["mm"], dtype=np.int64).reshape(res.n_treated, -1) - 1
    assert ((r_mm >= 0) == (res.match_matrix >= 0)).all()
    ps = d["ps"].to_numpy()
    both = r_mm >= 0
    np.testing.assert_array_equal(ps[r_mm[both]], ps[res.match_matrix[both]])
    tied = pd.Series(ps[d["treat"].to_numpy() == 0]).duplicated(keep=False)
    tied_ps = set(ps[d["treat"].to_numpy() == 0][tied.to_numpy()].tolist())
    untied = both & ~np.isin(ps[np.where(both, r_mm, 0)], list(tied_ps))
    assert untied.sum() > 0.75 * both.sum()
    np.testing.assert_array_equal(r_mm[untied], res.match_matrix[untied])
    np.testing.assert_allclose(res.weights, out["weights"], atol=1e-12)
    if overrides.get("caliper"):
        assert res.n_pairs < both.size  # the caliper really dropped some


def test_matchit_preset_pipeline_on_lalonde(lalonde: pd.DataFrame) -> None:
    """run_matching with the matchit preset: 185 sets of 2 rows and MatchIt-type SMDs."""
    run = run_matching(lalonde, "treat", COVARIATES, preset="matchit451")
    assert len(run.matched_data) == 370
    assert run.matched_data.groupby("set_id")["treat"].agg(["sum", "count"]).eq([1, 2]).all().all()
    assert run.balance["covariate"].iloc[0] == "distance"
