"""Greedy matcher: equality with a plain O(n*m) reference, presets, calipers, bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from cohort_etl.errors import InputDataError, NotEstimable
from cohort_etl.matching import (
    NearestNeighborMatcher,
    make_matcher,
    max_abs_smd,
    run_matching,
)


def naive_greedy(
    d: list[float],
    treat: list[int],
    order: list[int] | None,
    ratio: int,
    caliper: float,
    reuse_max: int | None,
) -> list[list[int]]:
    """The greedy rule written plainly, scanning every control for every decision.

    A control c lies "left" of treated t when (d[c], c) < (d[t], t) (stable sort order).
    The left candidate is the available control with the largest (d, row) on the left, the
    right candidate the one with the smallest (d, row) on the right; a candidate beyond the
    caliper is dropped; the closer wins, the left one on a tie. ``order=None`` means
    closest-pair-first within each round (ties: lower treated index first).
    """
    t_rows = [i for i in range(len(d)) if treat[i] == 1]
    c_rows = [i for i in range(len(d)) if treat[i] == 0]
    uses = dict.fromkeys(c_rows, 0)
    mm = [[-1] * ratio for _ in t_rows]

    def candidate(ti: int) -> tuple[float, int] | None:
        t = t_rows[ti]
        avail = [
            c for c in c_rows if (reuse_max is None or uses[c] < reuse_max) and c not in mm[ti]
        ]
        left = [c for c in avail if (d[c], c) < (d[t], t)]
        right = [c for c in avail if (d[c], c) > (d[t], t)]
        best_left = max(left, key=lambda c: (d[c], c)) if left else None
        best_right = min(right, key=lambda c: (d[c], c)) if right else None
        dl = abs(d[t] - d[best_left]) if best_left is not None else math.inf
        dr = abs(d[t] - d[best_right]) if best_right is not None else math.inf
        if dl > caliper:
            best_left = None
        if dr > caliper:
            best_right = None
        if best_left is not None and (best_right is None or dl <= dr):
            return dl, best_left
        if best_right is not None:
            return dr, best_right
        return None

    for r in range(ratio):
        if order is not None:
            for ti in order:
                found = candidate(ti)
                if found is not None:
                    mm[ti][r] = found[1]
                    uses[found[1]] += 1
            continue
        pending = list(range(len(t_rows)))
        while pending:
            best = None
            for ti in pending:
                found = candidate(ti)
                if found is not None and (best is None or (found[0], ti) < (best[0], best[1])):
                    best = (found[0], ti, found[1])
            if best is None:
                break
            mm[best[1]][r] = best[2]
            uses[best[2]] += 1
            pending.remove(best[1])
    return mm


CASES = [
    # (n_treated, n_control, ratio, caliper (absolute), replace/reuse_max, order, rounding)
    (5, 20, 1, None, None, "largest", 3),
    (40, 40, 1, None, None, "largest", 2),
    (60, 30, 1, 0.05, None, "smallest", 2),
    (50, 150, 3, 0.02, None, "data", 2),
    (80, 200, 2, None, "unlimited", "largest", 2),
    (70, 100, 2, 0.03, 2, "random", 1),
    (30, 60, 1, 0.02, None, "closest", 2),
    (25, 70, 2, 0.05, None, "closest", 2),
    (20, 50, 3, None, "unlimited", "closest", 1),
    (120, 400, 1, 0.01, None, "random", 3),
]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_fast_matcher_equals_naive_reference(case: tuple, seed: int) -> None:
    n1, n0, ratio, caliper, reuse, order, digits = case
    rng = np.random.default_rng(seed)
    # rounded scores create many exact ties between and within arms
    d = np.round(rng.beta(2, 3, n1 + n0), digits)
    treat = np.zeros(n1 + n0, dtype=int)
    treat[rng.choice(n1 + n0, n1, replace=False)] = 1
    replace = reuse is not None
    reuse_max = None if reuse in (None, "unlimited") else reuse
    matcher = NearestNeighborMatcher(
        ratio=ratio,
        caliper=caliper,
        caliper_scale="absolute",
        replace=replace,
        reuse_max=reuse_max,
        order=order,
        seed=seed,
    ).fit(d, treat)
    res = matcher.result_
    if order == "closest":
        ref_order = None
    elif order == "random":
        ref_order = np.random.default_rng(seed).permutation(n1).tolist()
    else:
        dt = d[treat == 1]
        keyed = {
            "largest": sorted(range(n1), key=lambda i: (-dt[i], i)),
            "smallest": sorted(range(n1), key=lambda i: (dt[i], i)),
            "data": list(range(n1)),
        }
        ref_order = keyed[order]
    ref = naive_greedy(
        d.tolist(),
        treat.tolist(),
        ref_order,
        ratio,
        math.inf if caliper is None else caliper,
        1 if not replace else reuse_max,
    )
    np.testing.assert_array_equal(res.match_matrix, np.array(ref))


def _confounded(n: int, seed: int, share: float = 0.25) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 10, n)
    frail = rng.binomial(1, 0.3, n)
    stage = rng.choice(["I", "II", "III"], n, p=[0.4, 0.4, 0.2])
    lab = rng.normal(0, 1, n)
    eta = (
        np.log(share / (1 - share))
        + 0.06 * (age - 60)
        - 0.9 * frail
        + np.where(stage == "III", 0.8, np.where(stage == "II", 0.3, 0.0))
        + 0.4 * lab
    )
    t = (rng.random(n) < expit(eta)).astype(int)
    return pd.DataFrame({"age": age, "frail": frail, "stage": stage, "lab": lab, "t": t})


COVS = ["age", "frail", "stage", "lab"]


@pytest.mark.parametrize("preset", ["cohortmethod", "trinetx", "matchit"])
def test_matching_removes_confounding_imbalance(preset: str) -> None:
    data = _confounded(4000, seed=21)
    run = run_matching(data, "t", COVS, preset=preset, seed=7)
    bal = run.balance[run.balance["covariate"] != "distance"]
    assert bal["smd_before"].abs().max() > 0.2
    assert max_abs_smd(bal, "after") < 0.1
    assert run.result.n_treated_matched > 0.8 * run.result.n_treated


def test_cohortmethod_preset_deterministic_and_caliper_honoured() -> None:
    data = _confounded(3000, seed=4, share=0.4)
    a = run_matching(data, "t", COVS, preset="cohortmethod", seed=1)
    b = run_matching(data, "t", COVS, preset="cohortmethod", seed=1)
    np.testing.assert_array_equal(a.result.match_matrix, b.result.match_matrix)
    logit = a.model.logit_ps_
    caliper = 0.2 * np.std(logit, ddof=1)
    assert a.result.caliper == pytest.approx(caliper)
    pairs = a.result.pairs()
    assert (np.abs(logit[pairs["treated_row"]] - logit[pairs["control_row"]]) <= caliper).all()
    assert pairs["control_row"].is_unique
    assert a.result.n_treated_matched < a.result.n_treated  # the caliper dropped some


def test_trinetx_preset_seeded_order() -> None:
    data = _confounded(3000, seed=9, share=0.45)
    ps = run_matching(data, "t", COVS, preset="trinetx", seed=1).model.ps_
    t = data["t"].to_numpy()
    r1 = make_matcher("trinetx", seed=1).fit(ps, t).result_
    r1b = make_matcher("trinetx", seed=1).fit(ps, t).result_
    r2 = make_matcher("trinetx", seed=2).fit(ps, t).result_
    np.testing.assert_array_equal(r1.match_matrix, r1b.match_matrix)
    assert not np.array_equal(r1.match_matrix, r2.match_matrix)
    pooled = np.sqrt((np.var(ps[t == 1], ddof=1) + np.var(ps[t == 0], ddof=1)) / 2)
    assert r1.caliper == pytest.approx(0.1 * pooled)
    pairs = r1.pairs()
    assert pairs["control_row"].is_unique
    assert (pairs["distance_diff"] <= r1.caliper).all()
    assert r1.match_matrix.shape[1] == 1
    with pytest.raises(InputDataError, match="seed"):
        make_matcher("trinetx").fit(ps, t)


def test_one_to_k_without_and_with_replacement() -> None:
    rng = np.random.default_rng(3)
    ps = rng.beta(2, 5, 1000)
    t = (rng.random(1000) < 0.15).astype(int)
    res = NearestNeighborMatcher(ratio=3).fit(ps, t).result_
    has = res.match_matrix >= 0
    assert has.sum(axis=1).max() == 3
    assert len(np.unique(res.match_matrix[has])) == has.sum()  # no control reused
    # ATT weights: treated 1; controls scaled to sum to the number of distinct controls
    assert (res.weights[res.treated_rows[has.any(axis=1)]] == 1).all()
    assert res.weights[t == 0].sum() == pytest.approx(res.n_control_matched)
    rep = NearestNeighborMatcher(ratio=2, replace=True).fit(ps, t).result_
    used = rep.match_matrix[rep.match_matrix >= 0]
    assert len(np.unique(used)) < len(used)  # some control serves several treated
    assert rep.subclass is None
    for row in rep.match_matrix:
        assert row[0] != row[1]  # never the same control twice for one treated unit


def test_exact_matching_respects_strata() -> None:
    data = _confounded(2000, seed=5)
    run = run_matching(
        data, "t", COVS, preset="matchit", matcher_overrides={"exact": ["stage", "frail"]}
    )
    pairs = run.result.pairs()
    for col in ("stage", "frail"):
        assert (
            data[col].to_numpy()[pairs["treated_row"]] == data[col].to_numpy()[pairs["control_row"]]
        ).all()
    # equal to matching each stratum on its own
    ps = run.model.ps_
    t = data["t"].to_numpy()
    for (stage, frail), block in data.groupby(["stage", "frail"]):
        rows = block.index.to_numpy()
        sub = NearestNeighborMatcher().fit(ps[rows], t[rows]).result_
        expected = {
            (rows[a], rows[b])
            for a, b in zip(sub.pairs()["treated_row"], sub.pairs()["control_row"], strict=True)
        }
        got = {
            (a, b)
            for a, b in zip(pairs["treated_row"], pairs["control_row"], strict=True)
            if data.at[a, "stage"] == stage and data.at[a, "frail"] == frail
        }
        assert got == expected


def test_no_match_within_caliper_gives_empty_result_with_reason() -> None:
    ps = np.array([0.1, 0.12, 0.9, 0.91])
    t = np.array([0, 0, 1, 1])
    res = NearestNeighborMatcher(caliper=0.01, caliper_scale="absolute").fit(ps, t).result_
    assert res.n_pairs == 0
    assert res.reason is not None and "caliper" in res.reason
    assert (res.weights == 0).all()
    assert res.pairs().empty


def test_bad_input_errors() -> None:
    with pytest.raises(NotEstimable, match="both arms"):
        NearestNeighborMatcher().fit(np.array([0.2, 0.3]), np.array([1, 1]))
    with pytest.raises(InputDataError, match="2 missing"):
        NearestNeighborMatcher().fit(np.array([0.2, np.nan, np.nan]), np.array([1, 0, 0]))
    with pytest.raises(InputDataError, match="0/1"):
        NearestNeighborMatcher().fit(np.array([0.2, 0.3]), np.array([1, 2]))
    with pytest.raises(InputDataError, match="ratio"):
        NearestNeighborMatcher(ratio=0).fit(np.array([0.2, 0.3]), np.array([1, 0]))
    with pytest.raises(InputDataError, match="sd_logit"):
        NearestNeighborMatcher(caliper=0.2, caliper_scale="sd_logit", distance="ps").fit(
            np.array([0.2, 0.3]), np.array([1, 0])
        )
    with pytest.raises(InputDataError, match="exact-matching column"):
        NearestNeighborMatcher(exact=["site"]).fit(
            np.array([0.2, 0.3]), np.array([1, 0]), data=pd.DataFrame({"x": [1, 2]})
        )
