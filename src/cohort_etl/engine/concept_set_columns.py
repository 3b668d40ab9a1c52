"""Columns a study spec derives from concept sets (``concept_set_covariates`` and
``concept_set_outcomes``), computed from a concept set's records.

``cohort-etl run`` reads the records of the sets a spec names from the build's
``int__concept_set_events`` (every cleaned CDM event of every registered set, all five
event domains, standard concepts on ``*_concept_id`` and source concepts on
``*_source_concept_id``: Circe semantics, the same events the cohorts use) with one query
per study: the set names are bound values, the tables quoted by the database layer, and
the query has no date arithmetic, so it reads the same on DuckDB, PostgreSQL and Spark.
The windows are applied here, in pandas:

* covariate: 1 if any record's start date lies in ``[anchor + lo, anchor + hi]`` days (both
  ends included), else 0; missing when the anchor date is missing;
* outcome date: the earliest record start date strictly after the anchor, else empty.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cohort_etl.errors import InputDataError
from cohort_etl.studies.spec import ConceptSetCovariate, ConceptSetOutcome, StudySpec

#: dbt model with every cleaned CDM event in a concept set (all domains)
EVENTS_MODEL = "int__concept_set_events"


def events_sql(events: str, mart: str, n_sets: int, param: str) -> str:
    """Records (``concept_set_name, person_id, start_date``) of ``n_sets`` bound set names
    for the persons of ``mart`` (``events`` and ``mart`` are quoted references)."""
    marks = ", ".join([param] * n_sets)
    return (
        f"select e.concept_set_name, e.person_id, e.start_date from {events} e "
        f"where e.concept_set_name in ({marks}) "
        f"and e.person_id in (select m.person_id from {mart} m) "
        "order by e.concept_set_name, e.person_id, e.start_date"
    )


def _dates(data: pd.DataFrame, column: str, what: str) -> pd.Series:
    if column not in data.columns:
        raise InputDataError(
            f"{what}: anchor column {column!r} is not in the data; available: "
            f"{', '.join(map(str, data.columns))}"
        )
    return pd.to_datetime(data[column], errors="coerce")


def _records_by_anchor(
    name: str, data: pd.DataFrame, anchor: pd.Series, records: pd.DataFrame
) -> pd.DataFrame:
    """``person_id, anchor, start``: each record of set ``name`` beside its person's anchor."""
    part = records[records["concept_set_name"] == name]
    frame = pd.DataFrame({"person_id": data["person_id"].to_numpy(), "anchor": anchor.to_numpy()})
    starts = pd.DataFrame(
        {
            "person_id": part["person_id"].to_numpy(),
            "start": pd.to_datetime(part["start_date"]).to_numpy(),
        }
    )
    return frame.merge(starts, on="person_id", how="inner")


def covariate_values(
    item: ConceptSetCovariate, data: pd.DataFrame, records: pd.DataFrame
) -> pd.Series:
    """The 0/1 column of one concept-set covariate (float: NaN where the anchor is missing)."""
    anchor = _dates(data, item.anchor, f"concept set covariate {item.column}")
    joined = _records_by_anchor(item.concept_set, data, anchor, records)
    lo, hi = item.window_days
    days = (joined["start"] - joined["anchor"]).dt.days
    hit = set(joined.loc[(days >= lo) & (days <= hi), "person_id"])
    values = np.where(data["person_id"].isin(hit).to_numpy(), 1.0, 0.0)
    values[anchor.isna().to_numpy()] = np.nan
    return pd.Series(values, index=data.index, name=item.column)


def outcome_dates(item: ConceptSetOutcome, data: pd.DataFrame, records: pd.DataFrame) -> pd.Series:
    """The date column of one concept-set outcome: first record strictly after the anchor."""
    anchor = _dates(data, item.anchor, f"concept set outcome {item.column}")
    joined = _records_by_anchor(item.concept_set, data, anchor, records)
    after = joined[joined["start"] > joined["anchor"]]
    first = after.groupby("person_id")["start"].min()
    values = pd.to_datetime(data["person_id"].map(first)).astype("datetime64[ns]")
    return pd.Series(values.to_numpy(), index=data.index, name=item.column)


def add_columns(spec: StudySpec, data: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """``data`` with one column per concept-set covariate / outcome of ``spec``.

    ``records``: ``concept_set_name, person_id, start_date`` of the sets the spec names."""
    out = data.copy()
    for item in spec.concept_set_columns():
        if item.column in data.columns:
            raise InputDataError(
                f"study {spec.name!r}: column {item.column!r} of concept set "
                f"{item.concept_set} clashes with a column of the data; give it another name:"
            )
        if isinstance(item, ConceptSetCovariate):
            out[item.column] = covariate_values(item, data, records)
        else:
            out[item.column] = outcome_dates(item, data, records)
    out.attrs = dict(data.attrs)
    return out


def set_names(spec: StudySpec) -> list[str]:
    """The concept sets the spec names, in first-use order."""
    return list(dict.fromkeys(d.concept_set for d in spec.concept_set_columns()))


def unknown_sets(names: Sequence[str], known: Sequence[str]) -> list[str]:
    return [n for n in names if n not in set(known)]
