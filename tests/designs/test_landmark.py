"""Landmark analysis (alive and relapse-free at the landmark) and the supermodel vs R."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.designs.conftest import COVARIATES
from tests.stats.r_oracle import run_r

from cohort_etl.designs.landmark import landmark_cox, landmark_rows
from cohort_etl.designs.simulation import StudyADraw
from cohort_etl.designs.target_trial import clone_data_from_frame


def test_landmark_population_is_alive_and_relapse_free(draw7: StudyADraw) -> None:
    data = clone_data_from_frame(draw7.data, covariates=COVARIATES)
    rows = landmark_rows(data, 100.0)
    idx = np.searchsorted(data.person, rows["id"].to_numpy())
    assert np.all(data.time[idx] > 100)
    rel = data.relapse[idx]
    assert np.all(np.isnan(rel) | (rel > 100))
    # exposure fixed at the landmark
    expo = data.exposure[idx]
    assert np.array_equal(rows["exposed"].to_numpy() == 1, ~np.isnan(expo) & (expo <= 100))
    # the option: alive only keeps more persons (those relapsed before day 100)
    alive_only = landmark_rows(data, 100.0, relapse_free=False)
    assert len(alive_only) > len(rows)
    assert np.all(rows["time"].to_numpy() == data.time[idx] - 100)


@pytest.mark.r_oracle
def test_landmark_and_supermodel_match_r(draw7: StudyADraw) -> None:
    data = clone_data_from_frame(draw7.data, covariates=COVARIATES)
    one = landmark_cox(data, [100.0])
    marks = [60.0, 100.0, 140.0, 180.0]
    sm = landmark_cox(data, marks, window=1826.0)
    import pandas as pd

    frame1 = landmark_rows(data, 100.0)
    stacked = pd.concat([landmark_rows(data, s, window=1826.0) for s in marks], ignore_index=True)
    out = run_r(
        """
        library(survival)
        f1 <- coxph(Surv(time, event) ~ exposed, data = d1, cluster = id)
        f2 <- coxph(Surv(time, event) ~ exposed + strata(landmark), data = d2, cluster = id)
        result <- list(b1 = unname(coef(f1)), se1 = unname(sqrt(diag(vcov(f1)))),
                       b2 = unname(coef(f2)), se2 = unname(sqrt(diag(vcov(f2)))))
        """,
        {"d1": frame1, "d2": stacked},
    )
    assert math.log(one.hr) == pytest.approx(out["b1"], abs=1e-8)
    assert math.log(sm.hr) == pytest.approx(out["b2"], abs=1e-8)
    z = 1.959963984540054
    assert math.log(sm.hr_upper) - math.log(sm.hr) == pytest.approx(z * out["se2"], abs=1e-8)
    assert math.log(one.hr_upper) - math.log(one.hr) == pytest.approx(z * out["se1"], abs=1e-8)
