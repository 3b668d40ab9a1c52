"""Per-estimate diagnostics: MDRR (CohortMethod's formula, evaluated in R), E-value
(VanderWeele and Ding's published example), thresholds and verdicts."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError
from tests.stats.r_oracle import run_r

from cohort_etl.diagnostics.checks import (
    DiagnosticThresholds,
    diagnose_estimate,
    e_value_hr,
    mdrr,
)
from cohort_etl.errors import InputDataError


@pytest.mark.r_oracle
def test_mdrr_matches_cohortmethod_formula_in_r() -> None:
    """CohortMethod computeMdrrFromAggregateStats (cox): written out in R."""
    out = run_r(
        r"""
        m <- function(pT, E) exp(sqrt((-qnorm(1 - 0.8) + qnorm(1 - 0.05 / 2))^2 /
                                      (E * pT * (1 - pT))))
        result <- list(a = m(122 / 244, 165), b = m(30 / 130, 12), c = m(0.5, 3))
        """
    )
    assert mdrr(122, 122, 165) == pytest.approx(out["a"], rel=1e-12)
    assert mdrr(30, 100, 12) == pytest.approx(out["b"], rel=1e-12)
    assert mdrr(50, 50, 3) == pytest.approx(out["c"], rel=1e-12)
    assert mdrr(50, 50, 0) == math.inf


def test_e_value_published_example() -> None:
    """VanderWeele & Ding (Ann Intern Med 2017): RR 3.9 (1.8-8.7) -> E-values 7.26 and 3.0."""
    ev = e_value_hr(3.9, 1.8, 8.7)
    assert ev.point == pytest.approx(7.26, abs=0.005)
    assert ev.limit == pytest.approx(3.0, abs=0.005)
    # protective effects use 1 / HR and the upper limit
    ev = e_value_hr(1 / 3.9, 1 / 8.7, 1 / 1.8)
    assert ev.point == pytest.approx(7.26, abs=0.005)
    assert ev.limit == pytest.approx(3.0, abs=0.005)
    # an interval covering 1
    assert e_value_hr(0.8, 0.6, 1.1).limit == 1.0
    # closed form E = RR + sqrt(RR (RR - 1)) with RR = 1 / 0.594 (study A's published HR)
    rr = 1 / 0.594
    assert e_value_hr(0.594, 0.375, 0.939).point == pytest.approx(rr + math.sqrt(rr * (rr - 1)))
    with pytest.raises(InputDataError, match="lower <= hr <= upper"):
        e_value_hr(2.0, 2.5, 3.0)


def test_verdicts_and_thresholds() -> None:
    """CohortMethod defaults, each diagnostic with value, threshold and verdict."""
    th = DiagnosticThresholds()
    assert (th.max_sdm, th.min_equipoise, th.max_mdrr, th.max_ease) == (0.1, 0.2, 10.0, 0.25)
    diag = diagnose_estimate(
        "os_hr",
        max_abs_smd=0.12,
        equipoise=0.45,
        n_target=122,
        n_comparator=122,
        n_events=165,
        ease=0.08,
        ph_global_p=0.3,
        n_treated_before_matching=130,
        n_treated_matched=122,
        immortal_time=False,
    )
    by_name = {d.name: d for d in diag.diagnostics}
    assert by_name["balance_max_abs_smd"].verdict == "fail"
    assert by_name["equipoise"].verdict == "pass"
    assert by_name["mdrr"].verdict == "pass"
    assert by_name["ease"].verdict == "pass"
    assert by_name["share_treated_matched"].value == pytest.approx(122 / 130)
    assert diag.verdict == "fail" and diag.failed == ["balance_max_abs_smd"]
    # an override moves the verdict; missing inputs are "not evaluated", not "pass"
    loose = DiagnosticThresholds(max_sdm=0.15)
    d2 = diagnose_estimate("os_hr", thresholds=loose, max_abs_smd=0.12)
    assert d2.verdict == "pass"
    assert {d.verdict for d in d2.diagnostics} == {"pass", "not evaluated"}
    assert diagnose_estimate("x", immortal_time=True).failed == ["immortal_time"]
    with pytest.raises(ValidationError):
        DiagnosticThresholds(max_ease=-1)
    with pytest.raises(ValidationError):
        DiagnosticThresholds.model_validate({"max_smd": 0.1})  # typo: unknown key


def test_not_applicable_checks_say_why() -> None:
    d = diagnose_estimate(
        "target trial: os",
        equipoise=None,
        ease=0.01,
        not_applicable={"equipoise": "no propensity score", "ease": "unused when evaluated"},
    )
    checks = {c.name: c for c in d.diagnostics}
    assert checks["equipoise"].verdict == "not evaluated"
    assert checks["equipoise"].detail == "no propensity score"
    # a check that has a value keeps its verdict and detail
    assert checks["ease"].verdict == "pass" and checks["ease"].detail == ""
    with pytest.raises(InputDataError, match="unknown check"):
        diagnose_estimate("x", not_applicable={"equipose": "typo"})
