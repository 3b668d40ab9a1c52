"""Negative- and positive-control outcomes written by the generator.

- At least 25 negative controls (true HR 1) and a handful of positive controls (known true
  HR) have condition rows, each a first occurrence after the CAR-T date inside follow-up
  of a study-A patient; their truth is in ``synthetic_truth.parameters``.
- They come from their own random stream: a CDM generated without them is identical
  table by table, and its condition rows are exactly the first rows of the CDM with them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from tests.conftest import duckdb_profile_at
from tests.synthetic.conftest import Generated, small_params
from tests.synthetic.helpers import checksum

from cohort_etl.cdm.ddl import GENERATED_TABLES
from cohort_etl.db import Database, connected
from cohort_etl.synthetic.controls import (
    CONTROL_OUTCOMES,
    NEGATIVE_CONTROLS,
    POSITIVE_CONTROLS,
)
from cohort_etl.synthetic.generator import generate

CONTROL_IDS = ", ".join(str(c.concept_id) for c in CONTROL_OUTCOMES)


@pytest.fixture(scope="module")
def db(small_cdm: Generated) -> Iterator[Database]:
    with connected(small_cdm.profile, read_only=True) as con:
        yield con


def test_definitions() -> None:
    assert len(NEGATIVE_CONTROLS) >= 25
    assert {c.true_hr for c in NEGATIVE_CONTROLS} == {1.0}
    assert {c.true_hr for c in POSITIVE_CONTROLS} == {1.5, 2.0, 4.0}
    ids = [c.concept_id for c in CONTROL_OUTCOMES]
    assert len(set(ids)) == len(ids)
    # local range except the one control with a known real id (ingrowing nail)
    assert [c.concept_id for c in CONTROL_OUTCOMES if c.concept_id < 2_000_000_000] == [139099]


def test_control_rows_are_first_occurrences_in_follow_up(db: Database) -> None:
    co, pt = (
        db.table_ref("cdm", "condition_occurrence"),
        db.table_ref("synthetic_truth", "patients"),
    )
    rows = db.query_df(
        f"""
        select c.person_id, c.condition_concept_id, c.condition_start_date, p.car_t_date,
               p.end_of_followup, p.category
        from {co} c left join {pt} p on p.person_id = c.person_id
        where c.condition_concept_id in ({CONTROL_IDS})
        """
    )
    assert rows["category"].isin(["core", "auto_hsct"]).all()
    assert (pd.to_datetime(rows["condition_start_date"]) > pd.to_datetime(rows["car_t_date"])).all()
    assert (
        pd.to_datetime(rows["condition_start_date"]) <= pd.to_datetime(rows["end_of_followup"])
    ).all()
    per = rows.groupby(["person_id", "condition_concept_id"]).size()
    assert per.max() == 1
    seen = set(rows["condition_concept_id"])
    assert sum(c.concept_id in seen for c in NEGATIVE_CONTROLS) >= 25
    # the truth parameters: one set per control, counts matching the rows
    params = dict(
        db.query_df(
            f"select name, value from {db.table_ref('synthetic_truth', 'parameters')}"
        ).itertuples(index=False)
    )
    for c in CONTROL_OUTCOMES:
        assert float(params[f"control.{c.key}.true_hr"]) == c.true_hr
        assert int(params[f"control.{c.key}.concept_id"]) == c.concept_id
        n = int((rows["condition_concept_id"] == c.concept_id).sum())
        assert int(params[f"control.{c.key}.persons_with_event"]) == n
        assert float(params[f"control.{c.key}.log_bias"]) == 0.0  # default: no bias


def test_positive_controls_keep_their_negative_controls_events(db: Database) -> None:
    """MethodEvaluation style: a positive control's persons include every person of its
    negative control whose event came no later (the injected events only add)."""
    co = db.table_ref("cdm", "condition_occurrence")
    frame = db.query_df(
        f"select person_id, condition_concept_id, condition_start_date from {co} "
        f"where condition_concept_id in ({CONTROL_IDS})"
    )
    for pc in POSITIVE_CONTROLS:
        base = next(c for c in NEGATIVE_CONTROLS if c.key == pc.base)
        nc = frame[frame.condition_concept_id == base.concept_id].set_index("person_id")
        pcs = frame[frame.condition_concept_id == pc.concept_id].set_index("person_id")
        assert set(nc.index) <= set(pcs.index)
        joined = nc.merge(pcs, left_index=True, right_index=True, suffixes=("", "_pc"))
        assert (joined["condition_start_date_pc"] <= joined["condition_start_date"]).all()


@pytest.mark.slow
def test_controls_do_not_change_any_other_row(small_cdm: Generated, tmp_path) -> None:
    without = duckdb_profile_at(tmp_path / "without.duckdb", "without")
    generate(small_params(control_outcomes=False), without)  # type: ignore[arg-type]
    with connected(small_cdm.profile, read_only=True) as a, connected(without) as b:
        for table in GENERATED_TABLES:
            if table == "condition_occurrence":
                continue
            assert checksum(a, "cdm", table) == checksum(b, "cdm", table), table
        assert checksum(a, "synthetic_truth", "patients") == checksum(
            b, "synthetic_truth", "patients"
        )
        n_without = b.scalar(f"select count(*) from {b.table_ref('cdm', 'condition_occurrence')}")
        cols = "condition_occurrence_id, person_id, condition_concept_id, condition_start_date"
        old = b.query_df(
            f"select {cols} from {b.table_ref('cdm', 'condition_occurrence')} order by 1"
        )
        new = a.query_df(
            f"select {cols} from {a.table_ref('cdm', 'condition_occurrence')} "
            f"where condition_concept_id not in ({CONTROL_IDS}) order by 1"
        )
        assert len(old) == n_without
        pd.testing.assert_frame_equal(old.reset_index(drop=True), new.reset_index(drop=True))
