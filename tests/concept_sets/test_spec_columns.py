"""Concept sets in a study spec: ``concept_set_covariates`` (any record in a window of
days around the index) and ``concept_set_outcomes`` (first record after the index).

The windows are checked on records placed at known offsets from each person's index
(the offsets are the truth), the engine's SMD against a direct computation of the pooled
standardized difference, and the spec's validation errors by field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from tests.studies.test_engine_inputs import cohort, spec

from cohort_etl.engine import Study
from cohort_etl.engine.concept_set_columns import add_columns, events_sql
from cohort_etl.errors import InputDataError

OFFSETS = (-400, -366, -365, -200, -1, 0, 1, 30)


def _records(data: pd.DataFrame, offsets: dict[int, list[int]], name: str) -> pd.DataFrame:
    rows = []
    index = dict(zip(data["person_id"], pd.to_datetime(data["index_date"]), strict=True))
    for person, days in offsets.items():
        for d in days:
            rows.append((name, person, (index[person] + pd.Timedelta(days=d)).date()))
    return pd.DataFrame(rows, columns=["concept_set_name", "person_id", "start_date"])


def test_windows_follow_the_offsets() -> None:
    data = cohort(60)
    rng = np.random.default_rng(11)
    offsets = {
        int(p): sorted(int(x) for x in rng.choice(OFFSETS, size=rng.integers(0, 3), replace=False))
        for p in data["person_id"]
    }
    records = pd.concat(
        [
            _records(data, offsets, "tki"),
            # another set's records must not leak into this one's column
            _records(data, {int(p): [0] for p in data["person_id"]}, "other"),
        ]
    )
    s = spec(
        concept_set_covariates=[
            {"concept_set": "tki", "name": "tki_year", "window_days": [-365, 0]},
            {"concept_set": "tki", "name": "tki_late", "window_days": [1, 30]},
        ],
        concept_set_outcomes=[{"name": "tki_after_date", "concept_set": "tki"}],
    )
    out = add_columns(s, data, records)
    for row in out.itertuples():
        days = offsets[row.person_id]
        assert row.tki_year == float(any(-365 <= d <= 0 for d in days))
        assert row.tki_late == float(any(1 <= d <= 30 for d in days))
        after = [d for d in days if d > 0]
        expected = pd.Timestamp(row.index_date) + pd.Timedelta(days=min(after)) if after else None
        assert (pd.isna(row.tki_after_date) and expected is None) or row.tki_after_date == expected
    assert 0 < out["tki_year"].sum() < len(out), "both values occur"
    # the derived covariates joined the spec's covariates and have labels with the set name
    assert s.covariates == ["age_at_index", "female", "tki_year", "tki_late"]
    assert s.labels["tki_year"] == "tki: any record in [-365, 0] days of index_date"
    # a missing anchor gives a missing covariate, never a 0
    gap = data.assign(index_date=data["index_date"].where(data["person_id"] != 1))
    assert np.isnan(add_columns(s, gap, records).loc[0, "tki_year"])


def test_engine_reports_the_columns_with_counts_and_smd() -> None:
    data = cohort(300)
    rng = np.random.default_rng(5)
    treated = data["arm"] == "hsct_plus"
    has = rng.random(len(data)) < np.where(treated, 0.5, 0.2)
    offsets = {
        int(p): ([-30] if h else [-900]) for p, h in zip(data["person_id"], has, strict=True)
    }
    rare = {int(p): [10] for p in data["person_id"][:3]}  # 3 persons: below min cell 5
    records = pd.concat([_records(data, offsets, "tki"), _records(data, rare, "rare")])
    s = spec(
        concept_set_covariates=[{"concept_set": "tki"}],
        concept_set_outcomes=[{"name": "rare_date", "concept_set": "rare"}],
    )
    frame = add_columns(s, data, records)
    out = Study(s).run(frame)
    tki, rare_col = out.results.concept_set_columns
    assert (tki.column, tki.kind, tki.window_days) == ("tki", "covariate", [-365, 0])
    assert tki.persons == len(data) and tki.persons_with_record == int(has.sum())
    # CohortMethod's standardized difference of a 0/1 column before matching:
    # (p_T - p_C) / sqrt((p_T (1 - p_T) + p_C (1 - p_C)) / 2)
    p1, p0 = has[treated.to_numpy()].mean(), has[~treated.to_numpy()].mean()
    smd = (p1 - p0) / np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
    assert tki.smd_before == pytest.approx(smd, rel=1e-9)
    assert tki.smd_after is not None and abs(tki.smd_after) < abs(tki.smd_before)
    assert rare_col.kind == "outcome_date" and rare_col.suppressed
    assert rare_col.persons_with_record is None
    assert "tki" in set(out.balance["covariate"])  # in the balance table by its name


def test_spec_and_data_errors() -> None:
    with pytest.raises(ValidationError, match="window_days \\[0, -365\\]"):
        spec(concept_set_covariates=[{"concept_set": "tki", "window_days": [0, -365]}])
    with pytest.raises(ValidationError, match="concept set columns must be unique: tki"):
        spec(
            concept_set_covariates=[{"concept_set": "tki"}],
            concept_set_outcomes=[{"name": "tki", "concept_set": "tki"}],
        )
    with pytest.raises(ValidationError, match="pattern"):
        spec(concept_set_covariates=[{"concept_set": "TKI; drop"}])
    s = spec(concept_set_covariates=[{"concept_set": "tki", "name": "female"}])
    empty = pd.DataFrame(columns=["concept_set_name", "person_id", "start_date"])
    with pytest.raises(InputDataError, match="column 'female' of concept set tki clashes"):
        add_columns(s, cohort(10), empty)
    s = spec(concept_set_covariates=[{"concept_set": "tki", "anchor": "cart_date"}])
    with pytest.raises(InputDataError, match="anchor column 'cart_date' is not in the data"):
        add_columns(s, cohort(10), empty)


def test_events_query_binds_every_value() -> None:
    sql = events_sql('"r"."events"', '"r"."mart"', 3, "?")
    assert sql.count("?") == 3 and "tki" not in sql
