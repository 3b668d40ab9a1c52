"""A Cox design's diagnostics from plain frames, on data drawn with known truth: the
generator's control-outcome model on a cohort exposed at time zero, with an injected
systematic error of known size, which the fitted null must find."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohort_etl.diagnostics.design import evaluate_cox_design, outcome_extras
from cohort_etl.diagnostics.spec import DiagnosticsSpec, control_column
from cohort_etl.outcomes.cox import CoxPH
from cohort_etl.synthetic.controls import (
    CONTROL_OUTCOMES,
    NEGATIVE_CONTROLS,
    POSITIVE_CONTROLS,
    draw_biases,
    draw_control_events,
)


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    rng = np.random.default_rng(2026)
    n = 3000
    treated = (rng.random(n) < 0.5).astype(int)
    follow = np.floor(np.minimum(rng.exponential(4 * 365.25, n), 5 * 365.25)) + 1
    biases = draw_biases(rng, 0.4, 0.0)  # every control: log-HR bias 0.4
    events = draw_control_events(rng, np.where(treated == 1, 0.0, np.inf), follow, biases)
    start = pd.Timestamp("2020-01-01")
    frame = pd.DataFrame(
        {
            "t": treated,
            "start": start,
            "end": start + pd.to_timedelta(follow, unit="D"),
            "death_days": np.minimum(rng.exponential(3 * 365.25, n), follow),
        }
    )
    for c in CONTROL_OUTCOMES:
        d = events[c.key]
        frame[control_column(c.key)] = start + pd.to_timedelta(np.ceil(d), unit="D")
    return frame


def test_null_finds_injected_bias(cohort: pd.DataFrame) -> None:
    spec = DiagnosticsSpec(
        negative_controls=[c.key for c in NEGATIVE_CONTROLS],
        positive_controls={c.key: c.true_hr for c in POSITIVE_CONTROLS},
        immortal_time=False,
    )
    died = (cohort["death_days"] < (cohort["end"] - cohort["start"]).dt.days).astype(float)
    fit = CoxPH().fit(cohort["death_days"], died, cohort[["t"]])
    d = evaluate_cox_design(
        spec,
        design="test",
        outcome="os",
        frame=cohort,
        treat="t",
        start=cohort["start"],
        end=cohort["end"],
        cox_fit=fit,
        n_events=int(died.sum()),
        max_abs_smd=0.02,
        equipoise=0.6,
        n_treated_before=None,
        n_treated_after=None,
    )
    assert d.negative_controls_estimable == 30 and d.positive_controls_estimable == 6
    assert d.null is not None and d.null.mean == pytest.approx(0.4, abs=0.1)
    # EASE ~ |0.4| > 0.25: the design fails the systematic-error check, nothing else
    assert d.failed == ["ease"] and d.verdict == "fail"
    assert d.error_model is not None and d.error_model.source.startswith("negative and")
    (cal,) = d.calibrated
    # the calibrated HR removes the injected error (the true death HR is 1)
    assert cal.calibrated_hr == pytest.approx(cal.hr / np.exp(d.null.mean), rel=0.25)
    assert d.e_value is not None and d.e_value.point >= 1
    names = {c.name for c in d.controls}
    assert names == {c.key for c in CONTROL_OUTCOMES}


def test_outcome_extras(cohort: pd.DataFrame) -> None:
    follow = (cohort["end"] - cohort["start"]).dt.days.to_numpy(float)
    time = cohort["death_days"].to_numpy()
    event = (time < follow).astype(float)
    code = event.copy()
    code[(event == 1) & (np.arange(len(code)) % 3 == 0)] = 2  # a third compete
    treat = cohort["t"].to_numpy()
    fit = CoxPH().fit(time, (code == 1).astype(float), cohort[["t"]])
    rmst, ph, fg, reasons = outcome_extras(
        time, (code == 1).astype(float), code, treat, horizon=365.0, labels=("A", "B"),
        cox_fit=fit,
    )  # fmt: skip
    assert reasons == []
    assert rmst is not None and rmst.tau == 365.0 and rmst.arm_1 == "A"
    assert rmst.difference_lower < rmst.difference < rmst.difference_upper
    assert ph is not None and 0 <= ph.global_p <= 1 and [t.term for t in ph.terms] == ["t"]
    assert fg is not None and fg.n_competing == int((code == 2).sum())


def test_report_pieces(cohort: pd.DataFrame, tmp_path) -> None:
    """Tables, the calibration plot and the headline lines of a design's diagnostics."""
    from cohort_etl.diagnostics.report import (
        calibration_figure,
        controls_table,
        headline_lines,
        verdict_table,
    )
    from cohort_etl.diagnostics.results import DiagnosticsResult

    spec = DiagnosticsSpec(negative_controls=[c.key for c in NEGATIVE_CONTROLS])
    fit = CoxPH().fit(cohort["death_days"], np.ones(len(cohort)), cohort[["t"]])
    d = evaluate_cox_design(
        spec, design="published", outcome="os", frame=cohort, treat="t",
        start=cohort["start"], end=cohort["end"], cox_fit=fit, n_events=len(cohort),
        max_abs_smd=None, equipoise=None, n_treated_before=None, n_treated_after=None,
        immortal_time=True,
    )  # fmt: skip
    table = verdict_table(d)
    assert set(table["verdict"]) >= {"FAIL", "NOT EVALUATED"}
    assert len(controls_table(d)) == 30
    png = calibration_figure(d, tmp_path / "cal.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = dict(headline_lines(DiagnosticsResult(thresholds={}, designs={"published": d})))
    assert lines["Diagnostics (published, os)"].startswith("FAIL: ")
    assert "immortal time" in lines["Diagnostics (published, os)"]
