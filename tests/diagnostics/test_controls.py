"""Control-outcome times and a design's calibration (engine-facing helpers)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cohort_etl.diagnostics.calibration import fit_null
from cohort_etl.diagnostics.controls import (
    ControlEstimate,
    calibrate_design,
    control_outcome_times,
)
from cohort_etl.errors import InputDataError


def test_control_outcome_times() -> None:
    start = pd.Series(pd.to_datetime(["2020-01-01", "2020-01-01", "2020-01-01"]))
    end = pd.Series(pd.to_datetime(["2020-12-31", "2020-06-30", "2020-03-01"]))
    first = pd.Series(pd.to_datetime(["2020-02-01", "2020-08-01", None]))
    t, e = control_outcome_times(start, end, first)
    assert t.tolist() == [31.0, 181.0, 60.0]  # event; after end -> censored; none
    assert e.tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(InputDataError, match="end of follow-up before"):
        control_outcome_times(end, start, first)


def _controls(rng: np.random.Generator, n_neg: int, n_pos: int) -> list[ControlEstimate]:
    out = []
    for i in range(n_neg):
        se = 0.1 + 0.05 * rng.random()
        out.append(
            ControlEstimate(
                f"nc{i}", "negative", 1.0, 0.2 + rng.normal(0, math.hypot(0.1, se)), se, 40
            )
        )
    for i in range(n_pos):
        se = 0.15
        hr = (1.5, 2.0, 4.0)[i % 3]
        out.append(
            ControlEstimate(
                f"pc{i}", "positive", hr, math.log(hr) + 0.2 + rng.normal(0, 0.2), se, 50
            )
        )
    return out


def test_calibrate_design_from_null_and_from_positive_controls() -> None:
    rng = np.random.default_rng(4)
    controls = _controls(rng, 30, 3)
    cal = calibrate_design(controls, {"os": (math.log(0.6), 0.2)})
    # fewer than 5 positive controls: the error model is the null's (CohortMethod's rule)
    null = fit_null([c.log_rr for c in controls[:30]], [c.se_log_rr for c in controls[:30]])
    assert cal.null is not None and cal.null.mean == pytest.approx(null.mean)
    assert cal.error_model is not None and cal.error_model.mean_slope == 1.0
    assert cal.ease == pytest.approx(null.ease())
    (res,) = cal.calibrated
    assert res.calibrated_hr == pytest.approx(math.exp(math.log(0.6) - null.mean))
    d = cal.to_dict()
    assert d["negative_controls"] == 30 and len(d["controls"]) == 33
    # with >= 5 positive controls the model is fitted to negative + positive controls
    cal2 = calibrate_design(_controls(rng, 30, 9), {"os": (math.log(0.6), 0.2)})
    assert cal2.error_model is not None and cal2.error_model.source.startswith("negative and")


def test_too_few_negative_controls() -> None:
    rng = np.random.default_rng(5)
    controls = _controls(rng, 4, 0) + [
        ControlEstimate("nc_none", "negative", 1.0, math.nan, math.nan, 0, "no events")
    ]
    cal = calibrate_design(controls, {"os": (0.1, 0.2)})
    assert cal.null is None and cal.calibrated == ()
    assert any("no empirical calibration" in n for n in cal.notes)
    assert any("nc_none" in n for n in cal.notes)
