"""Study specifications: what to compare, how, and which outcomes (``studies/*.yaml``).

A spec is data, validated here; the engines that execute it live in
:mod:`cohort_etl.studies.runner`. Validation errors name the file, the field path and,
where the field takes one of a fixed set, the allowed values.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cohort_etl.analysis_spec import MatchingSpec as Matching
from cohort_etl.specfile import load_yaml_spec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Arms(_Strict):
    """Which mart column holds the arm and which values are compared."""

    column: str
    treated: str
    control: str
    labels: dict[str, str] = Field(default_factory=dict)

    def label(self, value: str) -> str:
        return self.labels.get(value, value)


class TimeToEvent(_Strict):
    """Time from ``start`` to the first of ``event_date`` (event) or ``censor_date``."""

    name: str
    type: Literal["time_to_event"]
    label: str
    start: str
    event_date: str | list[str]  # several columns: the earliest is the event (e.g. RFS)
    censor_date: str
    horizons_days: list[int] = Field(default_factory=list)
    risk_times_days: list[int] = Field(default_factory=list)
    median_ci: Literal["brookmeyer_crowley", "spss"] = "brookmeyer_crowley"
    conf_type: Literal["log", "log-log", "plain"] = "log"
    competing_date: str | None = None  # for cumulative incidence (e.g. death vs relapse)


class Binary(_Strict):
    """An event within ``window_days`` of ``start`` (raw proportion, TriNetX style), or a
    0/1 column already in the mart when ``column`` is given."""

    name: str
    type: Literal["binary"]
    label: str
    column: str | None = None
    start: str | None = None
    event_date: str | None = None
    window_days: int | None = Field(None, gt=0)
    negate: bool = False  # e.g. "remaining in remission" = not relapsed

    @model_validator(mode="after")
    def _source(self) -> Binary:
        if self.column is None and not (self.start and self.event_date and self.window_days):
            raise ValueError("give either column, or start + event_date + window_days")
        return self


Outcome = Annotated[TimeToEvent | Binary, Field(discriminator="type")]


class GroupComparison(_Strict):
    """A binary or time-to-event outcome compared across the levels of ``by``."""

    name: str
    outcome: str
    by: str
    levels: list[str] | None = None
    level_labels: dict[str, str] = Field(default_factory=dict)
    label: str = ""


class Sensitivity(_Strict):
    kind: Literal["landmark", "time_varying", "unmatched", "naive_ever_treated"]
    outcome: str
    landmark_day: int | None = Field(None, gt=0)
    exposure_date: str | None = None
    #: baseline covariates to adjust the Cox model for (categorical ones expanded)
    adjust_for: list[str] = Field(default_factory=list)


class CoxModel(_Strict):
    name: str
    outcome: str
    covariates: list[str]
    label: str = ""


class StudySpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    description: str = ""
    mart: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    arms: Arms | None = None
    covariates: list[str] = Field(default_factory=list)
    matching: Matching = Field(default_factory=lambda: Matching(preset="trinetx"))
    outcomes: list[Outcome]
    comparisons: list[GroupComparison] = Field(default_factory=list)
    cox_models: list[CoxModel] = Field(default_factory=list)
    sensitivity: list[Sensitivity] = Field(default_factory=list)
    include: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Analyse only rows whose column value (as text) is in the list.",
    )
    data_cutoff: dt.date
    min_cell_count: int = Field(5, ge=0)

    @model_validator(mode="after")
    def _references(self) -> StudySpec:
        names = {o.name for o in self.outcomes}
        if len(names) != len(self.outcomes):
            raise ValueError("outcome names must be unique")
        refs: list[GroupComparison | CoxModel | Sensitivity] = [
            *self.comparisons,
            *self.cox_models,
            *self.sensitivity,
        ]
        for item in refs:
            if item.outcome not in names:
                raise ValueError(
                    f"{type(item).__name__.lower()} refers to outcome {item.outcome!r}; "
                    f"defined outcomes: {', '.join(sorted(names))}"
                )
        return self

    def outcome(self, name: str) -> TimeToEvent | Binary:
        return next(o for o in self.outcomes if o.name == name)


def load_spec(path: Path) -> StudySpec:
    """Read and validate one study spec; SpecError names file, field and allowed values."""
    return load_yaml_spec(path, StudySpec, "study spec")


def discover(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob("*.yaml"))
