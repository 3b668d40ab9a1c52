"""Study-A cohorts drawn straight from the generator's natural-history model.

The simulation harness (bench/bench_target_trial_simulation.py, tests/designs) needs
hundreds of study-A data sets with their counterfactual truth. Writing a CDM and running
dbt per seed would take minutes each, so :func:`draw_study_a` runs the generator's
patient simulator (:class:`cohort_etl.synthetic.natural_history.Simulator`, the code that
writes the CDM) and reads the analysis columns from its ground-truth rows. The columns and
their definitions are those of the dbt mart ``analysis_hsct_after_cart``;
tests/designs/test_simulation_vs_mart.py compares the two paths on generated CDMs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cohort_etl.synthetic.natural_history import Simulator
from cohort_etl.synthetic.params import EPOCH, SynthParams
from cohort_etl.synthetic.truth_hsct import HsctTruth, covariates_of, hsct_truth

#: columns of the drawn data set (a subset of the mart's, same names and meaning)
COLUMNS = (
    "person_id",
    "index_date",
    "hsct_date",
    "relapse_date",
    "death_date",
    "end_of_followup_date",
    "age_at_index",
    "female",
    "ph_positive",
    "prior_lines",
    "cr_after_cart",
    "mrd_negative_after_cart",
)


@dataclass(frozen=True)
class StudyADraw:
    """One simulated study-A cohort and the generator's truth for it."""

    data: pd.DataFrame
    truth: HsctTruth
    params: SynthParams


def _date(day: float | None) -> dt.date | None:
    if day is None or (isinstance(day, float) and np.isnan(day)):
        return None
    return EPOCH + dt.timedelta(days=int(day))


def draw_study_a(params: SynthParams, truth_n: int = 200_000) -> StudyADraw:
    """The study-A analysis data set of generator ``params`` (see the module docstring).

    Persons: the generator's study-A population (core CAR-T patients and the autologous-
    HSCT group; ``expected_in_cohort_a``). ``hsct_date``: allogeneic HSCT within
    ``hsct_window_days`` of the infusion and before relapse. ``relapse_date``: the first
    recorded relapse after the infusion. Covariates as recorded at the index (true values).
    """
    sim = Simulator(params, first_person_id=1)
    sim.simulate()
    cov = sim.core_covariates
    truth = hsct_truth(
        params,
        covariates_of([c[0] for c in cov], [c[1] for c in cov], [c[2] for c in cov]),
        truth_n,
    )
    rows = []
    for t in sim.truths:
        if not t.expected_in_cohort_a:
            continue
        assert t.car_t_date is not None
        index = t.car_t_date
        rel = t.relapse_after_cart_date
        hsct = None
        if (
            t.hsct_type == "allogeneic"
            and t.hsct_date is not None
            and t.hsct_date - index <= params.hsct_window_days
            and (rel is None or t.hsct_date < rel)
        ):
            hsct = t.hsct_date
        rows.append(
            {
                "person_id": t.person_id,
                "index_date": _date(index),
                "hsct_date": _date(hsct),
                "relapse_date": _date(rel),
                "death_date": _date(t.death_date),
                "end_of_followup_date": _date(t.end_of_followup),
                "age_at_index": (EPOCH + dt.timedelta(days=index)).year - t.year_of_birth,
                "female": int(t.sex == "F"),
                "ph_positive": int(t.bcr_abl1 == "positive"),
                "prior_lines": t.n_lines_before_cart,
                "cr_after_cart": int(t.car_t_response == "CR"),
                "mrd_negative_after_cart": int(bool(t.mrd_negative_after_cart)),
            }
        )
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return StudyADraw(frame, truth, params)
