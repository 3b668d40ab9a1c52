"""Diagnostics of the target-trial (clone-censor-weight) estimate on a generator draw of
study A with the generator's control outcomes: every control through the emulation,
calibration from its own negative controls, the checks, and the report pieces that put
them beside the published design's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cohort_etl.designs.section import TargetTrialSection, clone_data, run_section
from cohort_etl.designs.simulation import draw_study_a
from cohort_etl.designs.target_trial import TargetTrial, TargetTrialOptions
from cohort_etl.diagnostics import diagnose_estimate, mdrr
from cohort_etl.diagnostics import report as diag_report
from cohort_etl.diagnostics.results import DesignDiagnostics, design_diagnostics
from cohort_etl.diagnostics.simulation import (
    TT_COVARIATES,
    add_control_dates,
    target_trial_calibration,
)
from cohort_etl.diagnostics.spec import DiagnosticsSpec
from cohort_etl.diagnostics.target_trial import evaluate_target_trial, weighted_balance
from cohort_etl.synthetic.controls import NEGATIVE_CONTROLS, POSITIVE_CONTROLS
from cohort_etl.synthetic.params import SynthParams

pytestmark = pytest.mark.slow  # a generator draw and 36 emulations


def _spec():
    from cohort_etl.designs.section import TargetTrialSpec

    return TargetTrialSpec(
        exposure_date="hsct_date",
        exposure_any_date="allo_hsct_any_date",
        eligibility_end_date="relapse_date",
        event_date="death_date",
        censor_date="end_of_followup_date",
        covariates=list(TT_COVARIATES),
        bootstrap=40,
        seed=3,
    )


DIAG = DiagnosticsSpec(
    outcome="os",
    negative_controls=[c.key for c in NEGATIVE_CONTROLS],
    positive_controls={c.key: c.true_hr for c in POSITIVE_CONTROLS},
)


@pytest.fixture(scope="module")
def run() -> tuple[object, TargetTrialSection, DesignDiagnostics]:
    draw = draw_study_a(SynthParams(seed=7), truth_n=2000)
    data = add_control_dates(draw.data, 7)
    section, _, _ = run_section(_spec(), data)
    return data, section, evaluate_target_trial(DIAG, _spec(), data, section)


def test_every_control_through_the_emulation(run) -> None:
    _data, section, d = run
    assert d.negative_controls == 30 and d.negative_controls_estimable >= 25
    neg = [c for c in d.controls if c.kind == "negative"]
    assert all(c.hr is not None and c.lower < c.hr < c.upper for c in neg)
    # the generator's positive controls: estimates increase with the true HR
    pos = {c.name: c.hr for c in d.controls if c.kind == "positive"}
    for base in ("dental_caries", "allergic_rhinitis"):
        hrs = [pos[f"pc_{base}_hr{h}"] for h in ("1_5", "2", "4")]
        assert hrs == sorted(hrs)
    # their true HR is not the strategy contrast: the error model is the null's
    assert d.error_model is not None and d.error_model.source == "negative controls"
    assert any("positive control(s) estimated but not used" in n for n in d.notes)
    # the headline estimate (bootstrap SE) is the one calibrated
    (cal,) = d.calibrated
    assert cal.hr == pytest.approx(section.hr, rel=1e-12)
    z = 1.959963984540054
    assert math.log(cal.upper / cal.lower) == pytest.approx(2 * z * section.log_hr_se)
    assert cal.calibrated_lower < cal.calibrated_hr < cal.calibrated_upper
    assert d.estimate_variance.startswith("percentile bootstrap")
    assert "cluster" in d.control_variance and d.estimate_se_control_variance > 0


def test_checks_and_verdicts(run) -> None:
    _data, section, d = run
    checks = {c.name: c for c in d.checks}
    assert set(checks) == {
        "balance_max_abs_smd", "equipoise", "mdrr", "ease", "ph_test_global_p",
        "share_treated_matched", "immortal_time",
    }  # fmt: skip
    # no propensity score and no matching: said so, not passed
    for name in ("equipoise", "share_treated_matched"):
        assert checks[name].verdict == "not evaluated" and checks[name].detail
    assert checks["immortal_time"].verdict == "pass"
    events = section.counts["events_never"] + section.counts["events_within_grace"]
    n = section.n_eligible
    assert checks["mdrr"].value == pytest.approx(mdrr(n, n, events))
    assert checks["ease"].value == pytest.approx(d.ease)
    assert 0 <= checks["ph_test_global_p"].value <= 1
    assert d.verdict == ("fail" if d.failed else "pass")


def test_weighting_removes_the_imbalance_the_artificial_censoring_creates(run) -> None:
    data, _section, _d = run
    clones = clone_data(_spec(), data)
    tt = TargetTrial(clones, TargetTrialOptions(ci="robust"))
    w = tt.weights(coefs=tt.model_coefficients(np.ones(clones.n)))
    day = 181.0
    weighted = weighted_balance(tt, w, day)
    unweighted = weighted_balance(tt, (w > 0).astype(float), day)
    # at time zero the clones are identical
    assert max(weighted_balance(tt, w, 1.0).values()) == pytest.approx(0.0, abs=1e-12)
    # after the grace period the clones left uncensored differ between the strategies
    # (the transplanted are younger, in MRD-negative remission); the weights restore the
    # balance with the cohort
    assert max(unweighted.values()) > 0.2
    assert max(weighted.values()) < 0.1
    assert max(weighted.values()) < max(unweighted.values()) / 3


def test_report_sets_the_designs_beside_each_other(run) -> None:
    _data, _section, emulation = run
    published = design_diagnostics(
        "published design (trinetx)",
        "os",
        diagnose_estimate("published: os", max_abs_smd=0.12, ease=0.03, immortal_time=True),
    )
    table = diag_report.side_by_side_table([emulation, published])
    assert list(table.columns[2:]) == [
        f"{emulation.design}: value", f"{emulation.design}: verdict",
        "published design (trinetx): value", "published design (trinetx): verdict",
    ]  # fmt: skip
    row = table.set_index("diagnostic").loc[diag_report.LABELS["immortal_time"]]
    assert row[f"{emulation.design}: verdict"] == "PASS"
    assert row["published design (trinetx): verdict"] == "FAIL"
    text = diag_report.reading_sentence(published, emulation)
    assert text.startswith(f"The {emulation.design} estimate")
    assert "answers the question" in text and "do not use it as the effect" in text
    rows = [("Hazard ratio of death (target trial)", "HR = 0.5"), ("Other", "x")]
    marked = diag_report.mark_headline(rows, emulation, "(target trial)")
    assert marked[1] == rows[1] and marked[0][1].startswith("HR = 0.5 — ")
    assert "calibrated HR" in marked[0][1]


def test_without_bias_calibration_changes_the_target_trial_little() -> None:
    """Generator draws without injected bias: the negative controls' null is near 0, so
    the calibrated HR and CI stay close to the uncalibrated ones (docs/diagnostics.md
    records 30 seeds)."""
    rows = [target_trial_calibration(seed, truth_n=2000) for seed in (11, 12)]
    for r in rows:
        assert r.negative_controls == 30
        assert r.ease < 0.25
        assert abs(r.calibrated_log_hr - r.log_hr) < 0.15
        assert 1.0 <= r.width_ratio < 1.3
