"""The results.json ``target_trial`` section assembled from the emulation's parts."""

from __future__ import annotations

import math

import pytest
from tests.designs.conftest import COVARIATES

from cohort_etl.designs.landmark import landmark_cox
from cohort_etl.designs.section import TargetTrialSpec, run_section
from cohort_etl.designs.simulation import StudyADraw
from cohort_etl.designs.target_trial import clone_data_from_frame, run_target_trial


def _spec(**kw: object) -> TargetTrialSpec:
    base: dict[str, object] = dict(
        exposure_date="hsct_date",
        exposure_any_date="allo_hsct_any_date",
        eligibility_end_date="relapse_date",
        event_date="death_date",
        censor_date="end_of_followup_date",
        covariates=COVARIATES,
        ci="robust",
        supermodel_days=[60, 100, 140],
    )
    base.update(kw)
    return TargetTrialSpec.model_validate(base)


def test_section_reports_the_emulation_and_flags_only_the_published_design(
    draw7: StudyADraw,
) -> None:
    spec = _spec()
    section, curves, at_risk = run_section(spec, draw7.data)
    data = clone_data_from_frame(
        draw7.data, exposure_any_col="allo_hsct_any_date", covariates=COVARIATES
    )
    direct = run_target_trial(data, spec.options())
    assert section.hr == pytest.approx(direct.hr, rel=1e-12)
    assert section.horizons[1].difference == pytest.approx(direct.survival_difference[1])
    assert section.immortal_time["published_design"].flagged
    assert not section.immortal_time["target_trial"].flagged
    assert at_risk["never"][0] == at_risk["within_grace"][0] == data.n
    lm = landmark_cox(data, [100.0])
    assert section.landmark[0].hr == pytest.approx(lm.hr)
    assert section.landmark[1].landmarks == [60.0, 100.0, 140.0]
    assert set(curves) == {"never", "within_grace"}
    # JSON round trip
    again = type(section).model_validate_json(section.model_dump_json())
    assert again == section


def test_require_restricts_eligibility(draw7: StudyADraw) -> None:
    section, _, _ = run_section(_spec(require="cr_after_cart"), draw7.data)
    assert section.n_excluded_require == int((draw7.data["cr_after_cart"] != 1).sum())
    assert section.n_eligible == int((draw7.data["cr_after_cart"] == 1).sum())
    assert section.hr is not None and math.isfinite(section.hr)


def test_spec_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        _spec(grace=10)


def test_report_parts_lead_with_the_emulation(draw7: StudyADraw, tmp_path: object) -> None:
    from pathlib import Path

    from cohort_etl.designs import report as ttr
    from cohort_etl.report.html import Report, render

    spec = _spec()
    section, curves, at_risk = run_section(spec, draw7.data)
    rows = ttr.headline_rows(section)
    assert rows[1][0].startswith("5-year overall survival, difference")
    assert "HR = " in rows[-1][1]
    truth = dict(draw7.truth.as_rows())
    secs, fig = ttr.sections(
        section, curves, at_risk, [0, 365, 1826], Path(str(tmp_path)), 5, truth
    )
    assert fig.exists()
    pub, warning = ttr.published_section(section, [("HR", "0.35")])
    assert warning.startswith("Immortal-time bias: exposure defined after time zero")
    html = render(Report("t", "s", rows, [*secs, pub]))
    assert html.index("Target-trial emulation") < html.index(ttr.PUBLISHED_TITLE)
    assert "Estimate vs known truth" in html
    # the truth cells are the generator's values
    assert f"{float(truth['truth.hsct_os_hr_strategy_study_followup']):.3f}" in html
