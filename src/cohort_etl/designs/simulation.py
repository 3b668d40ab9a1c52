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

from cohort_etl.synthetic import vocabulary as v
from cohort_etl.synthetic.natural_history import Simulator
from cohort_etl.synthetic.params import EPOCH, SynthParams
from cohort_etl.synthetic.truth_hsct import HsctTruth, covariates_of, hsct_truth

#: columns of the drawn data set (a subset of the mart's, same names and meaning)
COLUMNS = (
    "person_id",
    "index_date",
    "hsct_date",
    "allo_hsct_any_date",
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

#: the mart's dbt var ``response_window_days``
RESPONSE_WINDOW_DAYS = 60


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


def _recorded(sim: Simulator, window: int) -> dict[int, dict[str, int | None]]:
    """Per person, what the mart reads from the recorded CDM rows (see ``draw_study_a``)."""
    rel_codes = {v.ALL_RELAPSE, v.ALL_REFRACTORY, v.ICD10CM_C91_02, v.ICD9CM_204_02}
    rem_codes = {v.ALL_REMISSION, v.B_ALL_REMISSION, v.ICD10CM_C91_01, v.ICD9CM_204_01}
    cart = {t.person_id: t.car_t_date for t in sim.truths if t.expected_in_cohort_a}
    out: dict[int, dict[str, int | None]] = {
        pid: {"relapse": None, "remission": 0, "mrd_negative": 0, "ph": 0} for pid in cart
    }
    for row in sim.rec.rows["condition_occurrence"]:
        pid = row["person_id"]
        if pid not in cart:
            continue
        c = cart[pid]
        assert c is not None
        day, codes = (
            row["condition_start_date"],
            {row["condition_concept_id"], row["condition_source_concept_id"]},
        )
        o = out[pid]
        if codes & rel_codes and day > c and (o["relapse"] is None or day < o["relapse"]):
            o["relapse"] = day
        if codes & rem_codes and c < day <= c + window:
            o["remission"] = 1
        if v.PH_POS_B_ALL in codes and day <= c:
            o["ph"] = 1
    for row in sim.rec.rows["measurement"]:
        pid = row["person_id"]
        if pid not in cart:
            continue
        c = cart[pid]
        assert c is not None
        day, concept, value = (
            row["measurement_date"],
            row["measurement_concept_id"],
            row.get("value_as_concept_id"),
        )
        if concept == v.BCR_ABL1_PRESENCE and value == v.POSITIVE and day <= c:
            out[pid]["ph"] = 1
        if (
            concept in (v.MRD_B_ALL_FLOW, v.MRD_T_ALL_FLOW)
            and value == v.NOT_DETECTED
            and c < day <= c + window
        ):
            out[pid]["mrd_negative"] = 1
    return out


def draw_study_a(params: SynthParams, truth_n: int = 200_000) -> StudyADraw:
    """The study-A analysis data set of generator ``params`` (see the module docstring).

    Persons: the generator's study-A population (core CAR-T patients and the autologous-
    HSCT group; ``expected_in_cohort_a``). ``hsct_date``: allogeneic HSCT within
    ``hsct_window_days`` of the infusion and before relapse; ``allo_hsct_any_date``: the same
    at any time. ``relapse_date``: the first
    recorded relapse after the infusion: a relapse or refractory code (standard or source
    concept) or the start of salvage therapy, whichever is first. ``ph_positive``: a Ph+ ALL
    code or a positive BCR-ABL1 test on or before the index; ``cr_after_cart`` /
    ``mrd_negative_after_cart``: a remission code / an undetectable MRD test within
    ``response_window_days`` (60) after it. Everything else from the ground-truth row
    (``prior_lines``: the generator's number of lines, which the mart's regimen algorithm
    reproduces for all but about 1 in 500 persons).
    """
    sim = Simulator(params, first_person_id=params.persons + 1)
    sim.simulate()
    cov = sim.core_covariates
    truth = hsct_truth(
        params,
        covariates_of([c[0] for c in cov], [c[1] for c in cov], [c[2] for c in cov]),
        truth_n,
    )
    recorded = _recorded(sim, RESPONSE_WINDOW_DAYS)
    rows = []
    for t in sim.truths:
        if not t.expected_in_cohort_a:
            continue
        assert t.car_t_date is not None
        index = t.car_t_date
        rec = recorded[t.person_id]
        rel = rec["relapse"]
        if t.salvage_start_date is not None and (rel is None or t.salvage_start_date < rel):
            rel = t.salvage_start_date
        hsct = None
        if (
            t.hsct_type == "allogeneic"
            and t.hsct_date is not None
            and t.hsct_date - index <= params.hsct_window_days
            and (rel is None or t.hsct_date < rel)
        ):
            hsct = t.hsct_date
        any_allo = None
        if (
            t.hsct_type == "allogeneic"
            and t.hsct_date is not None
            and (rel is None or t.hsct_date < rel)
        ):
            any_allo = t.hsct_date
        rows.append(
            {
                "person_id": t.person_id,
                "index_date": _date(index),
                "hsct_date": _date(hsct),
                "allo_hsct_any_date": _date(any_allo),
                "relapse_date": _date(rel),
                "death_date": _date(t.death_date),
                "end_of_followup_date": _date(t.end_of_followup),
                "age_at_index": (EPOCH + dt.timedelta(days=index)).year - t.year_of_birth,
                "female": int(t.sex == "F"),
                "ph_positive": rec["ph"],
                "prior_lines": t.n_lines_before_cart,
                "cr_after_cart": rec["remission"],
                "mrd_negative_after_cart": rec["mrd_negative"],
            }
        )
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return StudyADraw(frame, truth, params)
