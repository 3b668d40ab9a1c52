"""Concept sets in a study spec: ``concept_set_covariates`` (any record in a window of
days around the index) and ``concept_set_outcomes`` (first record after the index).

The windows are checked on records placed at known offsets from each person's index
(the offsets are the truth), the engine's SMD against a direct computation of the pooled
standardized difference, and the spec's validation errors by field."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from tests.studies.test_engine_inputs import cohort, spec

from cohort_etl.concept_sets.registry import default_folder
from cohort_etl.config import NamedProfile
from cohort_etl.db import connected
from cohort_etl.engine import Study
from cohort_etl.engine.concept_set_columns import add_columns, events_sql
from cohort_etl.errors import BuildError, InputDataError, SpecError
from cohort_etl.pipeline import add_concept_set_columns

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


def _built_tables(profile: NamedProfile, data: pd.DataFrame, records: pd.DataFrame) -> None:
    """The three tables ``run`` reads, as a build would leave them in the results schema."""
    with connected(profile) as db:
        db.create_schema("results", replace=True)
        ref = db.table_ref
        db.execute(f"create table {ref('results', 'toy_mart')} (person_id bigint, index_date date)")
        db.execute(
            f"create table {ref('results', 'concept_set_items')} (concept_set_name varchar(255))"
        )
        db.execute(
            f"create table {ref('results', 'int__concept_set_events')} "
            "(concept_set_name varchar(255), person_id bigint, start_date date)"
        )
        for row in data.itertuples():
            db.execute(
                f"insert into {ref('results', 'toy_mart')} values ({db.param}, {db.param})",
                [int(row.person_id), row.index_date.date()],
            )
        db.execute(
            f"insert into {ref('results', 'concept_set_items')} values ({db.param})", ["tki"]
        )
        for row in records.itertuples():
            db.execute(
                f"insert into {ref('results', 'int__concept_set_events')} "
                f"values ({db.param}, {db.param}, {db.param})",
                [row.concept_set_name, int(row.person_id), row.start_date],
            )


@pytest.mark.parametrize(
    "dialect", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_run_reads_the_records_alike_on_each_database(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    profile: NamedProfile = request.getfixturevalue(
        f"{dialect if dialect == 'duckdb' else 'pg'}_profile"
    )
    data = cohort(40)
    offsets = {int(p): [int(p) % 7 * 100 - 400] for p in data["person_id"]}
    records = _records(data, offsets, "tki")
    _built_tables(profile, data.iloc[:30], records)  # 10 persons not in the mart
    folder = tmp_path / "sets"
    shutil.copytree(default_folder(), folder)
    with (folder / "registry.csv").open("a") as handle:
        handle.write("CS999,tki_draft,tki.json.json,draft,x,,2026-01-01,2026-01-01,,Drug\n")
    s = spec(
        concept_set_covariates=[{"concept_set": "tki"}],
        concept_set_outcomes=[{"name": "tki_after_date", "concept_set": "tki"}],
    )
    got, sources = add_concept_set_columns(
        profile, s.model_copy(update={"mart": "toy_mart"}), data, folder
    )
    expected = add_columns(s, data, records[records["person_id"] <= 30])
    pd.testing.assert_series_equal(got["tki"], expected["tki"])
    pd.testing.assert_series_equal(got["tki_after_date"], expected["tki_after_date"])
    assert 0 < got["tki"].sum() < 30
    assert sources is not None and [(c.name, c.status) for c in sources] == [("tki", "accepted")]
    unknown = spec(concept_set_covariates=[{"concept_set": "tki_draft"}])
    with pytest.raises(BuildError, match="tki_draft are registered but not in the last build"):
        add_concept_set_columns(
            profile, unknown.model_copy(update={"mart": "toy_mart"}), data, folder
        )
    missing = spec(concept_set_covariates=[{"concept_set": "nope"}])
    with pytest.raises(SpecError, match="concept set\\(s\\) nope not in .*concept-sets validate"):
        add_concept_set_columns(profile, missing, data, folder)
