"""Analysis specification for ``cohort-etl analyze``: any one-row-per-person dataset.

Where a study spec (:mod:`cohort_etl.studies.spec`) derives times from dates in the
analysis marts, an analysis spec points at ready-made columns: a treatment column and its
two arm values, PS covariates, the matching preset and overrides, and outcomes given as a
follow-up time + 0/1 event column or a 0/1 binary column. Example::

    name: hsct_vs_none
    treatment: {column: arm, treated: hsct, control: none}
    covariates: [age, sex, mrd_negative, prior_lines]
    matching: {preset: trinetx, seed: 42, caliper: 0.2}
    outcomes:
      - {name: os, type: time_to_event, time: os_days, event: death, horizons: [365, 730]}
      - {name: cr, type: binary, column: cr}
    groupings: [sex]

The spec is data only; :mod:`cohort_etl.commands.analyze` executes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cohort_etl.specfile import load_yaml_spec

Scalar = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TreatmentSpec(_Strict):
    """The column holding the arm and the two values compared (others are left out)."""

    column: str
    treated: Scalar
    control: Scalar
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _distinct(self) -> TreatmentSpec:
        if str(self.treated) == str(self.control):
            raise ValueError("treated and control must be different values")
        return self

    def label(self, treated: bool) -> str:
        """Display label of an arm (``labels`` keyed by the arm value, else the value)."""
        value = str(self.treated if treated else self.control)
        return self.labels.get(value, value)


class MatchingSpec(_Strict):
    """Preset (or ``none``) plus overrides of its matcher / PS parameters."""

    preset: Literal["cohortmethod", "trinetx", "matchit", "matchit451", "none"] = "matchit"
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


class TimeToEventOutcome(_Strict):
    """Follow-up time (>= 0, any unit) and a 0/1 event indicator (1 = event)."""

    name: str
    type: Literal["time_to_event"]
    time: str
    event: str
    label: str | None = None
    horizons: list[float] = Field(default_factory=list)
    conf_type: Literal["log", "log-log", "plain"] = "log"


class BinaryOutcome(_Strict):
    """A 0/1 outcome column (1 = outcome present)."""

    name: str
    type: Literal["binary"]
    column: str
    label: str | None = None


Population = Literal["matched", "unmatched"]


def _matched_only() -> list[Population]:
    return ["matched"]


Outcome = Annotated[TimeToEventOutcome | BinaryOutcome, Field(discriminator="type")]


class AnalysisSpec(_Strict):
    """A complete analysis: arms, PS covariates, matching, outcomes, subgroup columns."""

    name: str
    treatment: TreatmentSpec
    covariates: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    matching: MatchingSpec = Field(default_factory=MatchingSpec)
    outcomes: list[Outcome] = Field(min_length=1)
    groupings: list[str] = Field(default_factory=list)
    populations: list[Population] = Field(default_factory=_matched_only)

    @model_validator(mode="after")
    def _consistent(self) -> AnalysisSpec:
        names = [o.name for o in self.outcomes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate outcome names: {dupes}")
        if self.matching.preset != "none" and not self.covariates:
            raise ValueError("matching needs covariates (or matching.preset: none)")
        stray = sorted(set(self.categorical) - set(self.covariates))
        if stray:
            raise ValueError(f"categorical lists columns that are not covariates: {stray}")
        return self

    def required_columns(self) -> list[str]:
        """Every data column the spec refers to, in first-use order."""
        cols = [self.treatment.column, *self.covariates, *self.matching.exact]
        for o in self.outcomes:
            cols += [o.time, o.event] if isinstance(o, TimeToEventOutcome) else [o.column]
        cols += self.groupings
        return list(dict.fromkeys(cols))


def load_analysis_spec(path: Path) -> AnalysisSpec:
    """Read and validate one analysis spec; SpecError names file, field and allowed values."""
    return load_yaml_spec(path, AnalysisSpec, "analysis spec")
