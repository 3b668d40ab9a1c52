"""The seed studies' derivable numbers, recomputed from their published counts.

Sources: /work/shared/seeds/study_a_hsct_after_cart.txt (TriNetX, 122 vs 122 after PSM)
and study_b_salvage_after_cart_relapse.txt (67 salvage patients), quoted below.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest
from tests.stats.r_oracle import run_r

from cohort_etl.outcomes.binary import (
    association_test,
    chi_square_test,
    compare_proportions,
    fisher_test,
)
from cohort_etl.outcomes.km import KaplanMeier


def test_study_a_risk_difference() -> None:
    """Study A: "79.5% for HSCT+ vs. 55.7% for HSCT-; risk difference 23.8%, 95% CI:
    12.4%-35.1%; P < 0.0001". With 97/122 and 68/122 (METHODS.md) the Wald interval with
    unpooled variance, RD -/+ 1.96 sqrt(p1 q1 / n1 + p0 q0 / n0), gives 23.77%
    (12.41%-35.13%), which rounds to the published figures; the z-test p is 7.3e-5."""
    r = compare_proportions(97, 122, 68, 122)
    assert round(100 * r.risk_1.estimate, 1) == 79.5
    assert round(100 * r.risk_0.estimate, 1) == 55.7
    rd = r.risk_difference
    assert rd.method == "wald-unpooled"
    assert (round(100 * rd.estimate, 2), round(100 * rd.lower, 2), round(100 * rd.upper, 2)) == (
        23.77,
        12.41,
        35.13,
    )
    assert (round(100 * rd.estimate, 1), round(100 * rd.lower, 1), round(100 * rd.upper, 1)) == (
        23.8,
        12.4,
        35.1,
    )
    assert r.p_value is not None and r.p_value < 0.0001
    # a pooled-variance Wald interval would not reproduce the published limits
    p = (97 + 68) / 244
    se_pooled = math.sqrt(p * (1 - p) * (2 / 122))
    assert round(100 * (rd.estimate - 1.959964 * se_pooled), 1) != 12.4


def study_b_candidates() -> list[tuple[int, int, int, int]]:
    """All (CR targeted, n targeted, CR chemo, n chemo) consistent with the abstract:
    67 patients in the two groups, 32 CR/CRi in all ("32 patients (47.8%) achieved
    complete remission"), 61% and 19% after rounding to whole percents."""
    out = []
    for n1 in range(1, 67):
        n0 = 67 - n1
        for a in range(n1 + 1):
            c = 32 - a
            if 0 <= c <= n0 and round(100 * a / n1) == 61 and round(100 * c / n0) == 19:
                out.append((a, n1, c, n0))
    return out


def test_study_b_counts_are_unique() -> None:
    """Study B: "32 patients (47.8%) achieved complete remission ... 61% for targeted
    treatment (CAR-T reinfusion 61%, monoclonal antibodies 71%, chemotherapy combined
    with TKi 50%), 19% for chemotherapy (P=0.0035)". Only 28/46 vs 4/21 fits 67 patients,
    32 CRs, 61% and 19%; the targeted subgroups can be e.g. 11/18, 10/14 and 7/14."""
    assert study_b_candidates() == [(28, 46, 4, 21)]
    assert round(100 * 32 / 67, 1) == 47.8
    splits = [
        (x1, n1, x2, n2, 28 - x1 - x2, 46 - n1 - n2)
        for n1 in range(1, 45)
        for n2 in range(1, 46 - n1)
        for x1 in range(n1 + 1)
        for x2 in range(n2 + 1)
        if 0 <= 28 - x1 - x2 <= 46 - n1 - n2
        and round(100 * x1 / n1) == 61
        and round(100 * x2 / n2) == 71
        and (46 - n1 - n2) > 0
        and round(100 * (28 - x1 - x2) / (46 - n1 - n2)) == 50
    ]
    assert (11, 18, 10, 14, 7, 14) in splits


@pytest.mark.r_oracle
def test_study_b_which_test_gives_p_0035() -> None:
    """On 28/46 vs 4/21 the published P = 0.0035 is Pearson's chi-square WITH Yates'
    continuity correction (R chisq.test default, SPSS "Continuity Correction"):
    p = 0.003550 (0.0035 to four decimals, truncated). Without correction p = 0.00148 and
    Fisher's exact p = 0.00170: neither is 0.0035. (The brief's guess that the uncorrected
    chi-square gives 0.0035 does not hold for counts that fit the abstract; it does for
    e.g. 11/18 vs 5/27, which contradicts the abstract's 67 patients and 32 CRs.)
    Also "CNS relapse ... higher CR rates than non-CNS EMD (100% vs. 17%; P=0.003)"
    with 8 CNS and 6 non-CNS EMD relapses is 8/8 vs 1/6, where Fisher gives 0.002997
    (chi-square: 0.0079 Yates, 0.0013 uncorrected): the authors used Fisher there, as
    the expected-count rule picks. association_test reproduces both published p values.

    R code::

        x <- matrix(c(28, 18, 4, 17), 2, byrow = TRUE)
        chisq.test(x)$p.value                    # 0.003550046
        chisq.test(x, correct = FALSE)$p.value   # 0.001476697
        fisher.test(x)$p.value                   # 0.001701390
        y <- matrix(c(8, 0, 1, 5), 2, byrow = TRUE)
        fisher.test(y)$p.value                   # 0.002997003
    """
    r: dict[str, Any] = run_r(
        """
        x <- matrix(c(28, 18, 4, 17), 2, byrow = TRUE)
        y <- matrix(c(8, 0, 1, 5), 2, byrow = TRUE)
        result <- list(yates = chisq.test(x)$p.value,
                       raw = chisq.test(x, correct = FALSE)$p.value,
                       fisher = fisher.test(x)$p.value,
                       cns = fisher.test(y)$p.value)
        """
    )
    table = [[28, 18], [4, 17]]
    yates = chi_square_test(table, correct=True).p_value
    raw = chi_square_test(table, correct=False).p_value
    fisher = fisher_test(table).p_value
    assert yates is not None and raw is not None and fisher is not None
    for ours, key in ((yates, "yates"), (raw, "raw"), (fisher, "fisher")):
        assert math.isclose(ours, r[key], rel_tol=1e-9)
    assert math.floor(yates * 1e4) / 1e4 == 0.0035
    assert abs(yates - 0.0035) < 0.0001
    assert abs(raw - 0.0035) > 0.001
    assert abs(fisher - 0.0035) > 0.001
    chosen = association_test(table)
    assert chosen.method == "pearson-chi-square-yates"
    cns = association_test([[8, 0], [1, 5]])
    assert cns.method == "fisher-exact"
    assert cns.p_value is not None and math.isclose(cns.p_value, r["cns"], rel_tol=1e-9)
    assert round(cns.p_value, 3) == 0.003


def test_spss_median_ci_hand_derived() -> None:
    """SPSS symmetric median CI, derived by hand on 8 patients.

    Data (months, + = censored): 1, 2, 3, 3+, 4, 5, 6, 7.

    Kaplan-Meier (n at risk, deaths):
      t=1: 8, 1 -> S = 7/8 = 0.875
      t=2: 7, 1 -> S = 0.875 * 6/7 = 0.75
      t=3: 6, 1 -> S = 0.75 * 5/6 = 0.625      (the 3+ is still at risk at 3)
      t=4: 4, 1 -> S = 0.625 * 3/4 = 0.46875
      t=5: 3, 1 -> S = 0.46875 * 2/3 = 0.3125
      t=6: 2, 1 -> S = 0.15625;  t=7: 1, 1 -> S = 0
    Median = first time with S <= 0.5: t = 4.
    Greenwood at 4: sum d/(n(n-d)) = 1/56 + 1/42 + 1/30 + 1/12 = 133/840;
      Var S(4) = 0.46875^2 * 133/840, SE = 0.46875 * sqrt(133/840) = 0.186521.
    Density: u = last time with S >= 0.55 -> 3 (S 0.625); l = first time with S <= 0.45
      -> 5 (S 0.3125); f = (0.625 - 0.3125) / (5 - 3) = 0.15625.
    SE(median) = 0.186521 / 0.15625 = 1.193734;
    95% CI = 4 -/+ 1.959964 * 1.193734 = (1.660325, 6.339675).
    """
    s4 = Fraction(7, 8) * Fraction(6, 7) * Fraction(5, 6) * Fraction(3, 4)
    greenwood = Fraction(1, 56) + Fraction(1, 42) + Fraction(1, 30) + Fraction(1, 12)
    assert s4 == Fraction(15, 32) and greenwood == Fraction(133, 840)
    se_s = float(s4) * math.sqrt(float(greenwood))
    f = (0.625 - 0.3125) / (5 - 3)
    se_med = se_s / f
    z = 1.959963984540054
    assert round(se_s, 6) == 0.186521
    assert round(se_med, 6) == 1.193734

    km = KaplanMeier().fit([1, 2, 3, 3, 4, 5, 6, 7], [1, 1, 1, 0, 1, 1, 1, 1])
    m = km.median_spss()
    assert m.median == 4.0
    assert (m.t_s_ge_055, m.t_s_le_045) == (3.0, 5.0)
    assert m.density is not None and math.isclose(m.density, f, rel_tol=1e-12)
    assert m.se is not None and math.isclose(m.se, se_med, rel_tol=1e-12)
    assert m.lower is not None and math.isclose(m.lower, 4 - z * se_med, rel_tol=1e-12)
    assert m.upper is not None and math.isclose(m.upper, 4 + z * se_med, rel_tol=1e-12)
    assert (round(m.lower, 6), round(m.upper, 6)) == (1.660325, 6.339675)
    # the interval is symmetric, unlike R's Brookmeyer-Crowley one
    assert math.isclose(m.upper - m.median, m.median - m.lower)


def test_spss_median_not_estimable() -> None:
    """No SE when survival never falls to 0.45; nothing when the median is not reached."""
    m = KaplanMeier().fit([1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 0, 0]).median_spss()
    assert m.median == 3.0 and m.se is None
    assert m.reason is not None and "0.45" in m.reason
    m = KaplanMeier().fit([1, 2, 3, 4], [1, 0, 0, 0]).median_spss()
    assert m.median is None and m.reason is not None and "not reached" in m.reason
