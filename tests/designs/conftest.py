"""Shared fixtures: one study-A cohort drawn from the generator's natural-history model."""

from __future__ import annotations

import pytest

from cohort_etl.designs.simulation import StudyADraw, draw_study_a
from cohort_etl.synthetic.params import SynthParams

COVARIATES = [
    "age_at_index",
    "prior_lines",
    "ph_positive",
    "mrd_negative_after_cart",
    "cr_after_cart",
]


@pytest.fixture(scope="session")
def draw7() -> StudyADraw:
    return draw_study_a(SynthParams(seed=7), truth_n=20_000)
