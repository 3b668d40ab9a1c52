"""The ``diagnostics:`` block of a study spec.

Example (study A)::

    diagnostics:
      outcome: os                       # the primary estimate the diagnostics are about
      immortal_time: true               # exposure defined after time zero (published design)
      negative_controls: [nc_ingrowing_nail, nc_myopia, ...]      # concept set names
      positive_controls: {pc_dental_caries_hr2: 2.0, ...}         # name: true HR
      thresholds: {max_sdm: 0.1, min_equipoise: 0.2, max_mdrr: 10, max_ease: 0.25}
      matching_sensitivity: {seeds: [1, 2, 3, 4, 5], calipers: [0.05, 0.1, 0.2],
                             presets: [cohortmethod]}

A control outcome is read from the column ``control__<name>`` of the analysis data: the
date of the first occurrence after the index date (``cohort-etl run`` fills it from the
mart ``analysis_control_outcomes``; for ``analyze`` the file carries it). Each control is
estimated with the primary outcome's design: same persons (after matching), time zero and
censoring; only the event differs.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cohort_etl.diagnostics.checks import DiagnosticThresholds

CONTROL_PREFIX = "control__"


def control_column(name: str) -> str:
    """Column of the analysis data holding control outcome ``name``'s first date."""
    return f"{CONTROL_PREFIX}{name}"


class MatchingSensitivity(BaseModel):
    """Rerun the primary estimate's matching over seeds x calipers, and other presets."""

    model_config = ConfigDict(extra="forbid")

    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], max_length=20)
    calipers: list[float] = Field(default_factory=lambda: [0.05, 0.1, 0.2], max_length=10)
    presets: list[str] = Field(default_factory=lambda: ["cohortmethod"])

    @field_validator("calipers")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(c <= 0 for c in value):
            raise ValueError("calipers must be > 0")
        return value


class DiagnosticsSpec(BaseModel):
    """Study diagnostics: thresholds, controls, and the matching sensitivity grid."""

    model_config = ConfigDict(extra="forbid")

    outcome: str | None = None
    immortal_time: bool | None = None
    negative_controls: list[str] = Field(default_factory=list)
    positive_controls: dict[str, float] = Field(default_factory=dict)
    thresholds: DiagnosticThresholds = Field(default_factory=DiagnosticThresholds)
    matching_sensitivity: MatchingSensitivity | None = None

    @field_validator("positive_controls")
    @classmethod
    def _true_hr(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not v > 0 or v == 1}
        if bad:
            raise ValueError(f"positive controls need a true HR > 0 and != 1, got {bad}")
        return value

    def control_names(self) -> list[str]:
        return [*self.negative_controls, *self.positive_controls]

    def control_columns(self) -> list[str]:
        return [control_column(n) for n in self.control_names()]
