"""Binary-outcome statistics against R (``prop.test``, ``chisq.test``, ``fisher.test``) and
against published numbers (Newcombe 1998) where R has no function for the method.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from tests.stats.r_oracle import run_r

from cohort_etl.errors import InputDataError
from cohort_etl.outcomes.binary import (
    association_test,
    chi_square_test,
    compare_proportions,
    fisher_test,
    wilson_interval,
)

RTOL = 1e-9

# (events_1, n_1, events_0, n_0): study A, Newcombe's examples, small and extreme tables
PAIRS = [(97, 122, 68, 122), (56, 70, 48, 80), (9, 10, 3, 10), (28, 46, 4, 21), (5, 56, 1, 29)]


def close(ours: Any, theirs: Any, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(
        np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float), rtol=rtol, atol=0
    )


R_PROP = r"""
pairs <- list(c(97, 122, 68, 122), c(56, 70, 48, 80), c(9, 10, 3, 10), c(28, 46, 4, 21),
              c(5, 56, 1, 29))
out <- list()
for (i in seq_along(pairs)) {
  p <- pairs[[i]]
  tab <- matrix(c(p[1], p[2] - p[1], p[3], p[4] - p[3]), 2, byrow = TRUE)
  u <- prop.test(c(p[1], p[3]), c(p[2], p[4]), correct = FALSE)
  y <- prop.test(c(p[1], p[3]), c(p[2], p[4]), correct = TRUE)
  w1 <- prop.test(p[1], p[2], correct = FALSE)$conf.int
  w0 <- prop.test(p[3], p[4], correct = FALSE)$conf.int
  cu <- suppressWarnings(chisq.test(tab, correct = FALSE))
  cy <- suppressWarnings(chisq.test(tab, correct = TRUE))
  out[[i]] <- list(stat_u = unname(u$statistic), p_u = u$p.value, ci_u = as.vector(u$conf.int),
    stat_y = unname(y$statistic), p_y = y$p.value,
    chi_u = unname(cu$statistic), chip_u = cu$p.value,
    chi_y = unname(cy$statistic), chip_y = cy$p.value, expected = cu$expected,
    wilson1 = as.vector(w1), wilson0 = as.vector(w0))
}
result <- list(pairs = out)
"""


@pytest.fixture(scope="module")
def prop_r() -> dict[str, Any]:
    """prop.test / chisq.test with and without continuity correction on five 2x2 tables.

    R code::

        pairs <- list(c(97, 122, 68, 122), c(56, 70, 48, 80), c(9, 10, 3, 10),
                      c(28, 46, 4, 21), c(5, 56, 1, 29))
        for each p: tab <- matrix(c(p[1], p[2] - p[1], p[3], p[4] - p[3]), 2, byrow = TRUE)
          prop.test(c(p[1], p[3]), c(p[2], p[4]), correct = FALSE / TRUE)
          prop.test(p[1], p[2], correct = FALSE)$conf.int      # Wilson, arm 1
          chisq.test(tab, correct = FALSE / TRUE)
    """
    return run_r(R_PROP)


@pytest.mark.r_oracle
@pytest.mark.parametrize("i", range(len(PAIRS)))
def test_prop_and_chisq(prop_r: dict[str, Any], i: int) -> None:
    """Chi-square (= prop.test statistic) with/without Yates, its p, the unpooled Wald RD
    interval (prop.test correct = FALSE), z^2 = chi-square, Wilson limits per arm."""
    a, n1, c, n0 = PAIRS[i]
    r = prop_r["pairs"][i]
    table = [[a, n1 - a], [c, n0 - c]]
    cu = chi_square_test(table, correct=False)
    cy = chi_square_test(table, correct=True)
    close([cu.statistic, cu.p_value], [r["chi_u"], r["chip_u"]])
    close([cy.statistic, cy.p_value], [r["chi_y"], r["chip_y"]])
    close([cu.statistic, cy.statistic], [r["stat_u"], r["stat_y"]])
    close([cu.p_value, cy.p_value], [r["p_u"], r["p_y"]])
    close(cu.expected, r["expected"])
    assert cu.df == 1
    cmp = compare_proportions(a, n1, c, n0)
    close([cmp.risk_difference.lower, cmp.risk_difference.upper], r["ci_u"])
    close(cmp.z_statistic**2, r["stat_u"])
    close(cmp.p_value, r["p_u"])
    close([cmp.risk_1.lower, cmp.risk_1.upper], r["wilson1"])
    close([cmp.risk_0.lower, cmp.risk_0.upper], r["wilson0"])


@pytest.mark.r_oracle
def test_wilson_edges() -> None:
    """Wilson interval at 0 and n events and for 90% level: prop.test(x, n, correct = FALSE,
    conf.level = cl)$conf.int for (0, 20), (20, 20), (1, 3), (7, 9) at 0.95 and 0.90."""
    cases = [(0, 20), (20, 20), (1, 3), (7, 9)]
    r = run_r(
        """
        cases <- list(c(0, 20), c(20, 20), c(1, 3), c(7, 9))
        out <- list()
        for (cl in c(0.95, 0.90)) for (cc in cases)
          out[[length(out) + 1]] <- as.vector(prop.test(cc[1], cc[2], correct = FALSE,
                                                        conf.level = cl)$conf.int)
        result <- list(ci = out)
        """
    )
    ours = [
        [w.lower, w.upper]
        for cl in (0.95, 0.90)
        for w in (wilson_interval(x, n, cl) for x, n in cases)
    ]
    close(ours, r["ci"])


def test_newcombe_published() -> None:
    """Newcombe's hybrid score interval (method 10), Newcombe RG, Stat Med 1998;17:873-890,
    Table II: (a) 56/70 - 48/80 = 0.2000, 95% CI 0.0524 to 0.3339;
    (b) 9/10 - 3/10 = 0.6000, 0.1705 to 0.8090 (published to 4 decimals)."""
    a = compare_proportions(56, 70, 48, 80).risk_difference_newcombe
    assert (round(a.lower, 4), round(a.upper, 4)) == (0.0524, 0.3339)
    b = compare_proportions(9, 10, 3, 10).risk_difference_newcombe
    assert (round(b.lower, 4), round(b.upper, 4)) == (0.1705, 0.8090)


@pytest.mark.r_oracle
@pytest.mark.parametrize("i", range(len(PAIRS)))
def test_newcombe_from_r_wilson(prop_r: dict[str, Any], i: int) -> None:
    """Newcombe limits rebuilt from R's own Wilson limits (prop.test correct = FALSE):
    L = d - sqrt((p1 - l1)^2 + (u0 - p0)^2), U = d + sqrt((u1 - p1)^2 + (p0 - l0)^2)."""
    a, n1, c, n0 = PAIRS[i]
    r = prop_r["pairs"][i]
    p1, p0 = a / n1, c / n0
    (l1, u1), (l0, u0) = r["wilson1"], r["wilson0"]
    lower = p1 - p0 - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    upper = p1 - p0 + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    nc = compare_proportions(a, n1, c, n0).risk_difference_newcombe
    close([nc.lower, nc.upper], [lower, upper])


@pytest.mark.r_oracle
def test_risk_ratio_odds_ratio_wald() -> None:
    """Wald log-scale intervals evaluated in R from the textbook formulas:
    RR = (a/n1)/(c/n0), SE = sqrt(1/a - 1/n1 + 1/c - 1/n0);
    OR = ad/(bc), SE = sqrt(1/a + 1/b + 1/c + 1/d); limits exp(log(.) -/+ qnorm(.975) SE)."""
    r = run_r(
        """
        a <- 97; n1 <- 122; c <- 68; n0 <- 122; b <- n1 - a; d <- n0 - c; z <- qnorm(0.975)
        rr <- (a / n1) / (c / n0); se_rr <- sqrt(1 / a - 1 / n1 + 1 / c - 1 / n0)
        or <- (a * d) / (b * c); se_or <- sqrt(1 / a + 1 / b + 1 / c + 1 / d)
        result <- list(rr = c(rr, exp(log(rr) - z * se_rr), exp(log(rr) + z * se_rr)),
                       or = c(or, exp(log(or) - z * se_or), exp(log(or) + z * se_or)))
        """
    )
    cmp = compare_proportions(97, 122, 68, 122)
    close([cmp.risk_ratio.estimate, cmp.risk_ratio.lower, cmp.risk_ratio.upper], r["rr"])
    close([cmp.odds_ratio.estimate, cmp.odds_ratio.lower, cmp.odds_ratio.upper], r["or"])


TABLES_2X2 = [[[3, 1], [1, 3]], [[10, 3], [2, 15]], [[28, 18], [4, 17]], [[0, 10], [6, 4]],
              [[12, 0], [5, 7]], [[97, 25], [68, 54]]]  # fmt: skip
TABLES_RXC = [
    [[11, 7], [10, 4], [7, 7], [4, 17]],  # study B: modality x CR (67 patients)
    [[3, 1, 2], [1, 5, 0], [2, 2, 6]],
    [[2, 3, 4, 1, 0], [4, 1, 1, 3, 5]],
    [[8, 2], [1, 5], [0, 6], [6, 0]],  # 4 x 2 relapse site x CR
    # R's ?fisher.test Job satisfaction table (4 x 4, n = 104): ~10 s here, marked slow
    [[1, 2, 1, 0], [3, 3, 6, 1], [10, 10, 14, 9], [6, 7, 12, 11]],
]

R_FISHER = r"""
to_m <- function(t) matrix(unlist(t), nrow = length(t), byrow = TRUE)
out2 <- lapply(t2, function(t) { f <- fisher.test(to_m(t))
  list(p = f$p.value, est = unname(f$estimate), ci = as.vector(f$conf.int)) })
outr <- lapply(trc, function(t) list(p = fisher.test(to_m(t))$p.value,
  chi = unname(suppressWarnings(chisq.test(to_m(t)))$statistic),
  chip = suppressWarnings(chisq.test(to_m(t)))$p.value))
result <- list(t2 = out2, trc = outr)
"""


@pytest.fixture(scope="module")
def fisher_r() -> dict[str, Any]:
    """fisher.test on 2x2 and r x c tables, chisq.test on the r x c ones.

    R code (t2, trc: the tables above as lists of rows)::

        to_m <- function(t) matrix(unlist(t), nrow = length(t), byrow = TRUE)
        lapply(t2, function(t) { f <- fisher.test(to_m(t))
          list(p = f$p.value, est = unname(f$estimate), ci = as.vector(f$conf.int)) })
        lapply(trc, function(t) list(p = fisher.test(to_m(t))$p.value,
          chi = chisq.test(to_m(t))$statistic, chip = chisq.test(to_m(t))$p.value))
    """
    prelude = f"t2 <- {_r_list(TABLES_2X2)}\ntrc <- {_r_list(TABLES_RXC)}\n"
    return run_r(prelude + R_FISHER)


def _r_list(tables: list[list[list[int]]]) -> str:
    return (
        "list("
        + ", ".join(
            "list(" + ", ".join("c(" + ", ".join(map(str, row)) + ")" for row in t) + ")"
            for t in tables
        )
        + ")"
    )


@pytest.mark.r_oracle
@pytest.mark.parametrize("i", range(len(TABLES_2X2)))
def test_fisher_2x2(fisher_r: dict[str, Any], i: int) -> None:
    """fisher.test 2x2: p to 1e-9; conditional MLE odds ratio and exact CI to R's uniroot
    tolerance (R solves with tol = .Machine$double.eps^0.25 ~ 1.2e-4 on the ncp or 1/ncp
    scale, so R itself is only accurate to ~1e-3 relative); exactness of our roots is
    checked in R next (test_fisher_2x2_roots_exact_in_r)."""
    r = fisher_r["t2"][i]
    res = fisher_test(TABLES_2X2[i])
    close(res.p_value, r["p"])
    assert res.conf_int is not None and res.estimate is not None
    for ours, theirs in ((res.estimate, r["est"]), *zip(res.conf_int, r["ci"], strict=True)):
        if math.isinf(ours) or ours == 0:
            assert ours == theirs
        else:
            assert math.isclose(ours, theirs, rel_tol=1e-2)


@pytest.mark.r_oracle
def test_fisher_2x2_roots_exact_in_r() -> None:
    """Our MLE / limits solve R's own equations to 1e-9: with dnhyper(psi) the noncentral
    hypergeometric density built from dhyper (as in fisher.test), mean(psi_hat) = x,
    P(X >= x; lower) = 0.025 and P(X <= x; upper) = 0.025.

    R code::

        f <- function(t, est, lo, up) { m <- sum(t[, 1]); n <- sum(t[, 2]); k <- sum(t[1, ])
          x <- t[1, 1]; s <- max(0, k - n):min(k, m); ld <- dhyper(s, m, n, k, log = TRUE)
          dn <- function(psi) { d <- ld + log(psi) * s; d <- exp(d - max(d)); d / sum(d) }
          c(sum(s * dn(est)) - x, sum(dn(lo)[s >= x]) - 0.025, sum(dn(up)[s <= x]) - 0.025) }
    """
    tabs = [t for t in TABLES_2X2 if 0 not in (t[0][0], t[0][1], t[1][0], t[1][1])]
    fits = [fisher_test(t) for t in tabs]
    calls = ", ".join(
        f"f(matrix(c({t[0][0]}, {t[0][1]}, {t[1][0]}, {t[1][1]}), 2, byrow = TRUE), "
        f"{r.estimate!r}, {r.conf_int[0]!r}, {r.conf_int[1]!r})"  # type: ignore[index]
        for t, r in zip(tabs, fits, strict=True)
    )
    r = run_r(
        """
        f <- function(t, est, lo, up) { m <- sum(t[, 1]); n <- sum(t[, 2]); k <- sum(t[1, ])
          x <- t[1, 1]; s <- max(0, k - n):min(k, m); ld <- dhyper(s, m, n, k, log = TRUE)
          dn <- function(psi) { d <- ld + log(psi) * s; d <- exp(d - max(d)); d / sum(d) }
          c(sum(s * dn(est)) - x, sum(dn(lo)[s >= x]) - 0.025, sum(dn(up)[s <= x]) - 0.025) }
        """
        + f"result <- list(res = list({calls}))"
    )
    np.testing.assert_allclose(np.asarray(r["res"], dtype=float), 0.0, atol=1e-9)


@pytest.mark.r_oracle
@pytest.mark.parametrize(
    "i",
    [*range(len(TABLES_RXC) - 1), pytest.param(len(TABLES_RXC) - 1, marks=pytest.mark.slow)],
)
def test_fisher_and_chisq_rxc(fisher_r: dict[str, Any], i: int) -> None:
    """fisher.test r x c (FEXACT network algorithm in R) p to 1e-8; chisq.test r x c."""
    r = fisher_r["trc"][i]
    close(fisher_test(TABLES_RXC[i]).p_value, r["p"], rtol=1e-8)
    ch = chi_square_test(TABLES_RXC[i])
    close([ch.statistic, ch.p_value], [r["chi"], r["chip"]])
    assert ch.method == "pearson-chi-square"  # no Yates beyond 2x2, as R


def test_association_test_choice() -> None:
    """Fisher when an expected count is < 5 (and says so), chi-square otherwise."""
    small = association_test([[3, 1], [1, 3]])
    assert small.method == "fisher-exact"
    assert small.reason is not None and "expected count 2 < 5" in small.reason
    big = association_test([[97, 25], [68, 54]])
    assert big.method == "pearson-chi-square-yates"
    assert big.reason is not None and big.reason.startswith("chi-square")
    raw = association_test([[97, 25], [68, 54]], correct=False)
    assert raw.method == "pearson-chi-square"


def test_not_estimable_cases() -> None:
    """Empty arm, zero cells and all-or-none outcomes give reasons, never NaN."""
    empty = compare_proportions(3, 10, 0, 0)
    assert empty.risk_difference.estimate is None
    assert empty.reason is not None and "n_0 = 0" in empty.reason
    assert empty.risk_0.reason is not None
    zero = compare_proportions(0, 10, 4, 12)
    assert zero.risk_ratio.estimate == 0.0 and zero.risk_ratio.lower is None
    assert zero.risk_ratio.reason is not None and "arm 1" in zero.risk_ratio.reason
    assert zero.odds_ratio.reason is not None and "a" in zero.odds_ratio.reason
    assert zero.risk_difference.estimable
    allev = compare_proportions(10, 10, 12, 12)
    assert allev.p_value is None and allev.reason is not None
    for value in vars(allev).values():
        assert not (isinstance(value, float) and math.isnan(value))
    assert chi_square_test([[0, 0], [3, 4]]).reason is not None
    assert fisher_test([[0, 0], [3, 4]]).reason is not None


def test_bad_inputs() -> None:
    """Clear InputDataError naming the argument."""
    with pytest.raises(InputDataError, match="events_1: 12 exceeds n_1 = 10"):
        compare_proportions(12, 10, 3, 10)
    with pytest.raises(InputDataError, match="n_0: must be a non-negative whole number"):
        compare_proportions(1, 10, 3, -1)
    with pytest.raises(InputDataError, match="events_0: not a number"):
        compare_proportions(1, 10, "x", 10)
    with pytest.raises(InputDataError, match="table: counts must be"):
        fisher_test([[1.5, 2], [3, 4]])
    with pytest.raises(InputDataError, match="table: needs at least 2 rows"):
        chi_square_test([[1, 2]])
    with pytest.raises(InputDataError, match="conf_level"):
        wilson_interval(1, 10, conf_level=1.5)
