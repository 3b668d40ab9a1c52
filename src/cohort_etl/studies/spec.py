"""Study specifications: what to compare, how, and which outcomes (``studies/*.yaml``).

One spec model for both doors of the engine (:mod:`cohort_etl.engine`): ``cohort-etl run``
reads the analysis mart the spec names (``mart``) and the attrition of its ``cohort``;
``cohort-etl analyze --data FILE --spec SPEC`` reads a CSV / Parquet file with the same
columns. A time-to-event outcome is given either as dates (``start``, ``event_date``,
``censor_date``, optionally ``competing_date``; times are derived in days, censored at
``data_cutoff``) or as ready columns (``time`` and a 0/1 ``event``). A minimal spec for
any dataset::

    name: hsct_vs_none
    title: HSCT vs none
    arms: {column: arm, treated: hsct, control: none}
    covariates: [age, sex, mrd_negative, prior_lines]
    matching: {preset: trinetx, seed: 42}
    outcomes:
      - {name: os, type: time_to_event, label: OS, time: os_days, event: death,
         horizons_days: [365, 730]}
      - {name: cr, type: binary, label: CR, column: cr}

A concept set (``concept_sets/``, by its registry name) becomes a column without SQL:
``concept_set_covariates`` adds a 0/1 covariate "any record of the set in a window of days
around the index date" (default [-365, 0], both ends included) to ``covariates``;
``concept_set_outcomes`` adds a date column "first record of the set after the index
date" that an outcome names as its ``event_date``::

    concept_set_covariates:
      - {concept_set: tki, window_days: [-365, 0]}      # column tki (0/1)
    concept_set_outcomes:
      - {name: bone_marrow_date, concept_set: bone_marrow_assessment}
    outcomes:
      - {name: bm, type: time_to_event, start: index_date, event_date: bone_marrow_date,
         censor_date: end_of_followup_date}

``cohort-etl run`` computes those columns from the build's concept set events
(:mod:`cohort_etl.engine.concept_set_columns`); for ``analyze`` the file carries them.

A spec is data, validated here; :class:`cohort_etl.engine.Study` executes it. Validation
errors name the file, the field path and, where the field takes one of a fixed set, the
allowed values.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cohort_etl.designs.section import TargetTrialSpec
from cohort_etl.diagnostics.spec import DiagnosticsSpec
from cohort_etl.specfile import load_yaml_spec

#: an arm value as written in YAML (compared with the data column as text)
Scalar = str | int | float | bool
_NAME = r"^[a-z][a-z0-9_]*$"
#: days per display unit (a month is 365.25 / 12 = 30.4375 days)
UNIT_DAYS: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 30.4375, "years": 365.25}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Arms(_Strict):
    """Which column holds the arm and which two values are compared (rows with other
    values are left out)."""

    column: str
    treated: str
    control: str
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("treated", "control", mode="before")
    @classmethod
    def _as_text(cls, value: Scalar) -> str:
        # YAML `treated: 1` and a column of 1s compare as the text "1"
        return str(value)

    @model_validator(mode="after")
    def _distinct(self) -> Arms:
        if self.treated == self.control:
            raise ValueError("treated and control must be different values")
        return self

    def label(self, value: str) -> str:
        return self.labels.get(value, value)


class Matching(_Strict):
    """Preset (or ``none``) plus overrides of its matcher / PS parameters."""

    preset: Literal["cohortmethod", "trinetx", "matchit", "matchit451", "none"] = "trinetx"
    seed: int = 0
    ratio: int | None = Field(None, ge=1, le=20)
    caliper: float | None = Field(None, gt=0)
    caliper_scale: Literal["sd_logit", "sd_ps", "pooled_sd", "absolute"] | None = None
    order: Literal["largest", "smallest", "data", "random", "closest"] | None = None
    replace: bool | None = None
    exact: list[str] = Field(default_factory=list)
    penalty: Literal["none", "l1"] | None = None
    on_separation: Literal["error", "penalize"] | None = None

    def matcher_overrides(self) -> dict[str, object]:
        """Matcher parameters set in the spec (the preset supplies the rest)."""
        keys = ("ratio", "caliper", "caliper_scale", "order", "replace")
        out: dict[str, object] = {k: getattr(self, k) for k in keys if getattr(self, k) is not None}
        if self.exact:
            out["exact"] = list(self.exact)
        return out

    def propensity_overrides(self) -> dict[str, object]:
        """PS-model parameters set in the spec."""
        keys = ("penalty", "on_separation")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


class TimeToEvent(_Strict):
    """Time to an event, from dates or from ready columns.

    Dates: days from ``start`` to the first of ``event_date`` (several columns: the
    earliest, e.g. RFS) on or before ``censor_date`` (capped at the data cut-off), else to
    ``censor_date``; with ``competing_date`` a competing event before the event ends
    follow-up. Ready columns: ``time`` (>= 0, days) and ``event`` (0/1).
    """

    name: str = Field(pattern=_NAME)  # names output files (km_<name>.csv)
    type: Literal["time_to_event"]
    label: str = ""
    start: str | None = None
    event_date: str | list[str] | None = None
    censor_date: str | None = None
    competing_date: str | None = None  # for cumulative incidence (e.g. death vs relapse)
    time: str | None = None
    event: str | None = None
    horizons_days: list[int] = Field(default_factory=list)
    risk_times_days: list[int] = Field(default_factory=list)
    #: the outcome's own population: rows whose column value (as text) is in the list,
    #: e.g. RFS from the CR date among the responders ``{cr: ["1"]}``
    among: dict[str, list[str]] = Field(default_factory=dict)
    #: the median CI the headline shows: R's print.survfit (Brookmeyer-Crowley on
    #: conf_type) or SPSS's median +/- z SE; results.json holds both
    median_ci: Literal["brookmeyer_crowley", "spss"] = "brookmeyer_crowley"
    conf_type: Literal["log", "log-log", "plain"] = "log"
    conf_level: float = Field(0.95, gt=0, lt=1)

    @model_validator(mode="after")
    def _source(self) -> TimeToEvent:
        dates = (self.start, self.event_date, self.censor_date)
        ready = (self.time, self.event)
        if all(ready) and not any(dates) and not self.competing_date:
            return self
        if all(dates) and not any(ready):
            return self
        raise ValueError(
            "give either dates (start, event_date, censor_date[, competing_date]) or ready "
            "columns (time, event), not both"
        )

    @property
    def from_dates(self) -> bool:
        return self.start is not None

    @property
    def event_dates(self) -> list[str]:
        ev = self.event_date
        return [] if ev is None else [ev] if isinstance(ev, str) else list(ev)

    def columns(self) -> list[str]:
        if not self.from_dates:
            return [c for c in (self.time, self.event) if c] + list(self.among)
        cols = [self.start, *self.event_dates, self.censor_date, self.competing_date]
        return [c for c in cols if c] + list(self.among)


class Binary(_Strict):
    """An event within ``window_days`` of ``start`` (raw proportion, TriNetX style), or a
    0/1 column when ``column`` is given."""

    name: str = Field(pattern=_NAME)  # names output files (km_<name>.csv)
    type: Literal["binary"]
    label: str = ""
    column: str | None = None
    start: str | None = None
    event_date: str | None = None
    window_days: int | None = Field(None, gt=0)
    negate: bool = False  # e.g. "remaining in remission" = not relapsed
    conf_level: float = Field(0.95, gt=0, lt=1)

    @model_validator(mode="after")
    def _source(self) -> Binary:
        if self.column is None and not (self.start and self.event_date and self.window_days):
            raise ValueError("give either column, or start + event_date + window_days")
        return self

    @property
    def from_dates(self) -> bool:
        return self.column is None

    def columns(self) -> list[str]:
        return [c for c in (self.column, self.start, self.event_date) if c]


Outcome = Annotated[TimeToEvent | Binary, Field(discriminator="type")]


class GroupComparison(_Strict):
    """A binary or time-to-event outcome compared across the levels of ``by``."""

    name: str = Field(pattern=_NAME)  # names output files (km_<name>.csv)
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
    #: landmark only: the population must also be free of this event (e.g. relapse_date)
    #: at the landmark, as METHODS.md defines the landmark population
    event_free_date: str | None = None

    @model_validator(mode="after")
    def _needs(self) -> Sensitivity:
        if self.kind != "unmatched" and not self.exposure_date:
            raise ValueError(f"sensitivity {self.kind}: exposure_date is required")
        if self.kind == "landmark" and not self.landmark_day:
            raise ValueError("sensitivity landmark: landmark_day is required")
        return self

    @property
    def key(self) -> str:
        """Its key in results.json, e.g. ``landmark_os_day100_adjusted``."""
        return (
            f"{self.kind}_{self.outcome}"
            + (f"_day{self.landmark_day}" if self.landmark_day else "")
            + ("_event_free" if self.event_free_date else "")
            + ("_adjusted" if self.adjust_for else "")
        )


class CoxModel(_Strict):
    """A multivariable Cox model. Every categorical term (text columns, columns listed in
    ``categorical``) is reported against a reference level: ``reference`` names it, else
    the first level in sort order. A 0/1 column listed in ``reference`` with the value 1
    becomes categorical with 1 as reference: its contrast is inverted (0 vs 1)."""

    name: str = Field(pattern=_NAME)  # names output files (km_<name>.csv)
    outcome: str
    covariates: list[str]
    label: str = ""
    categorical: list[str] = Field(default_factory=list)
    reference: dict[str, str] = Field(default_factory=dict)
    #: numeric covariates divided by this before fitting (HR per that many units), e.g.
    #: ``{days_cart_to_relapse: 30.4375}`` for an HR per month
    scale: dict[str, float] = Field(default_factory=dict)

    @field_validator("reference", mode="before")
    @classmethod
    def _text_levels(cls, value: object) -> object:
        # YAML `reference: {salvage_targeted: 1}` and a column of 1s compare as text
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _known(self) -> CoxModel:
        stray = sorted(
            (set(self.categorical) | set(self.reference) | set(self.scale)) - set(self.covariates)
        )
        if any(v <= 0 for v in self.scale.values()):
            raise ValueError("scale factors must be > 0")
        if stray:
            raise ValueError(
                f"categorical / reference name columns that are not covariates: {stray}"
            )
        return self


class TableOne(_Strict):
    """Baseline characteristics (Table 1) of a study without arms, optionally by a group
    column (e.g. salvage modality): n (%) and mean (SD) per group."""

    covariates: list[str]
    by: str | None = None
    levels: list[str] | None = None
    categorical: list[str] = Field(default_factory=list)


class ConceptSetCovariate(_Strict):
    """A 0/1 covariate: any record of ``concept_set`` (any CDM domain, Circe semantics)
    dated within ``window_days`` (both ends included) of the ``anchor`` date column."""

    concept_set: str = Field(pattern=_NAME)
    #: the column (default: the concept set's name)
    name: str | None = Field(None, pattern=_NAME)
    window_days: tuple[int, int] = (-365, 0)
    anchor: str = "index_date"
    label: str = ""

    @model_validator(mode="after")
    def _window(self) -> ConceptSetCovariate:
        lo, hi = self.window_days
        if lo > hi:
            raise ValueError(f"window_days [{lo}, {hi}]: the start must not be after the end")
        return self

    @property
    def column(self) -> str:
        return self.name or self.concept_set

    def describe(self) -> str:
        lo, hi = self.window_days
        return f"{self.concept_set}: any record in [{lo}, {hi}] days of {self.anchor}"


class ConceptSetOutcome(_Strict):
    """A date column: the first record of ``concept_set`` strictly after the ``anchor``
    date (empty without one), for an outcome's ``event_date``."""

    name: str = Field(pattern=_NAME)
    concept_set: str = Field(pattern=_NAME)
    anchor: str = "index_date"
    label: str = ""

    @property
    def column(self) -> str:
        return self.name

    def describe(self) -> str:
        return f"{self.concept_set}: first record after {self.anchor}"


class StudySpec(_Strict):
    name: str = Field(pattern=_NAME)
    title: str
    description: str = ""
    #: the cohort the mart is built from (its name in the dbt cohort list); ``run`` reads
    #: its attrition by this name
    cohort: str | None = Field(None, pattern=_NAME)
    #: the analysis mart ``run`` reads (``analyze`` reads a file instead)
    mart: str | None = Field(None, pattern=_NAME)
    arms: Arms | None = None
    covariates: list[str] = Field(default_factory=list)
    #: 0/1 covariates from concept sets (added to ``covariates``)
    concept_set_covariates: list[ConceptSetCovariate] = Field(default_factory=list)
    #: date columns "first record of a concept set after the index" (for outcomes)
    concept_set_outcomes: list[ConceptSetOutcome] = Field(default_factory=list)
    #: covariates to treat as categorical even when numeric (text columns always are)
    categorical: list[str] = Field(default_factory=list)
    matching: Matching = Field(default_factory=Matching)
    outcomes: list[Outcome] = Field(min_length=1)
    comparisons: list[GroupComparison] = Field(default_factory=list)
    cox_models: list[CoxModel] = Field(default_factory=list)
    sensitivity: list[Sensitivity] = Field(default_factory=list)
    include: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Analyse only rows whose column value (as text) is in the list.",
    )
    #: the unit times are shown in (headline, tables, axes); results.json keeps days
    display_unit: Literal["days", "weeks", "months", "years"] = "days"
    #: human labels of columns, levels ("column.level" or "level") and arms
    labels: dict[str, str] = Field(default_factory=dict)
    #: Table 1 of a study without arms (a study with arms has the matching Table 1)
    table_one: TableOne | None = None
    #: target-trial emulation of the strategy question (docs/target_trial.md)
    target_trial: TargetTrialSpec | None = None
    #: exclude persons whose index date (the outcomes' ``start``) is later than the data
    #: cut-off minus this many days: their exposure window is not fully observable
    complete_window_days: int | None = Field(None, gt=0)
    #: administrative censoring date of date-based outcomes (required when there are any)
    data_cutoff: dt.date | None = None
    min_cell_count: int = Field(5, ge=0)
    #: study diagnostics (docs/diagnostics.md): thresholds, control outcomes, sensitivity
    diagnostics: DiagnosticsSpec | None = None

    @model_validator(mode="after")
    def _concept_set_columns(self) -> StudySpec:
        derived = self.concept_set_columns()
        columns = [d.column for d in derived]
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        if dupes:
            raise ValueError(
                f"concept set columns must be unique: {', '.join(dupes)} (give a name: to "
                "each use of a concept set)"
            )
        for c in self.concept_set_covariates:
            if c.column not in self.covariates:
                self.covariates.append(c.column)
        for d in derived:
            if d.column not in self.labels:
                self.labels[d.column] = d.label or d.describe()
        return self

    def concept_set_columns(self) -> list[ConceptSetCovariate | ConceptSetOutcome]:
        """Every column the spec derives from a concept set."""
        return [*self.concept_set_covariates, *self.concept_set_outcomes]

    @model_validator(mode="after")
    def _references(self) -> StudySpec:
        names = [o.name for o in self.outcomes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"outcome names must be unique: {', '.join(dupes)}")
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
        dated = [o.name for o in self.outcomes if o.from_dates]
        if dated and self.data_cutoff is None:
            raise ValueError(
                f"data_cutoff is required: outcome(s) {', '.join(dated)} are derived from dates"
            )
        for s in self.sensitivity:
            o = self.outcome(s.outcome)
            if s.kind != "unmatched" and not (isinstance(o, TimeToEvent) and o.from_dates):
                raise ValueError(
                    f"sensitivity {s.kind} needs outcome {o.name!r} given as dates "
                    "(start / event_date / censor_date) to place the exposure date on its clock"
                )
            if s.kind == "unmatched" and self.arms is None:
                raise ValueError("sensitivity unmatched needs arms")
        d = self.diagnostics
        if d is not None:
            target = d.outcome or next(
                (o.name for o in self.outcomes if isinstance(o, TimeToEvent)), None
            )
            if target is None or target not in names:
                raise ValueError(
                    f"diagnostics.outcome {target!r} is not a defined outcome; defined "
                    f"outcomes: {', '.join(sorted(names))}"
                )
            o = self.outcome(target)
            if not (isinstance(o, TimeToEvent) and o.from_dates) or self.arms is None:
                raise ValueError(
                    f"diagnostics need arms and a time-to-event outcome given as dates "
                    f"(start / event_date / censor_date); {target!r} is not"
                )
        if self.complete_window_days is not None and self.data_cutoff is None:
            raise ValueError("complete_window_days needs data_cutoff")
        stray = sorted(set(self.categorical) - set(self.covariates))
        if stray:
            raise ValueError(f"categorical lists columns that are not covariates: {stray}")
        return self

    def outcome(self, name: str) -> TimeToEvent | Binary:
        return next(o for o in self.outcomes if o.name == name)

    def diagnostics_outcome(self) -> TimeToEvent | None:
        """The time-to-event outcome whose arm HR the diagnostics are about."""
        if self.diagnostics is None:
            return None
        name = self.diagnostics.outcome or next(
            o.name for o in self.outcomes if isinstance(o, TimeToEvent)
        )
        o = self.outcome(name)
        return o if isinstance(o, TimeToEvent) else None

    def required_columns(self) -> list[str]:
        """Every data column the spec refers to, in first-use order."""
        cols: list[str] = [self.arms.column] if self.arms else []
        cols += [*self.covariates, *self.matching.exact]
        for o in self.outcomes:
            cols += o.columns()
        cols += [c.by for c in self.comparisons]
        cols += list(self.include)
        for m in self.cox_models:
            cols += m.covariates
        if self.table_one is not None:
            cols += self.table_one.covariates + ([self.table_one.by] if self.table_one.by else [])
        for s in self.sensitivity:
            cols += [c for c in (s.exposure_date, s.event_free_date, *s.adjust_for) if c]
        if self.target_trial is not None:
            cols += self.target_trial.columns()
        cols += [d.column for d in self.concept_set_outcomes]
        return list(dict.fromkeys(cols))


def load_spec(path: Path) -> StudySpec:
    """Read and validate one study spec; SpecError names file, field and allowed values."""
    return load_yaml_spec(path, StudySpec, "study spec")


def discover(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob("*.yaml"))
