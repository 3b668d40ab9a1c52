"""Typed results of a study: what ``results.json`` holds (schema version 2).

Every section of ``results.json`` is a pydantic model here; :class:`StudyResults` is the
file. ``to_json()`` gives plain JSON values (floats rounded to RESULT_DIGITS significant
digits, NaN / infinity as null) and :func:`results_json_schema` the JSON Schema that
docs/results.schema.json publishes (a test keeps the two equal and validates every
results.json the project writes against it). Readers (report, network export) use
:meth:`StudyResults.read` and attributes, never key strings.

An estimate that cannot be computed is ``None`` with a ``reason`` beside it and an entry
in ``StudyResults.not_estimable``; a choice the engine made for the user (a constant
covariate dropped, a horizon past the end of follow-up) is an entry in ``warnings``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cohort_etl.designs.section import TargetTrialSection
from cohort_etl.diagnostics.results import DiagnosticsResult, FineGrayResult, PhTest, RmstResult
from cohort_etl.errors import InputDataError
from cohort_etl.matching.design import CovariateInfo
from cohort_etl.outcomes.binary import Estimate as _Estimate
from cohort_etl.outcomes.binary import ProportionComparison, TestResult
from cohort_etl.outcomes.cox import CoxResult, CoxTest
from cohort_etl.outcomes.logrank import LogRankResult
from cohort_etl.outcomes.summary import RESULT_DIGITS, json_safe

#: version of the results.json layout; bump on any incompatible change
SCHEMA_VERSION: Literal[2] = 2


class ResultModel(BaseModel):
    """Base of every result section: strict keys, one ``to_json``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json(self) -> Any:
        """Plain JSON values, rounded to RESULT_DIGITS significant digits."""
        return json_safe(self.model_dump(by_alias=True), RESULT_DIGITS)


Num = float | None


# -- shared pieces ---------------------------------------------------------------------
class Flag(ResultModel):
    """A section that could not be computed (not_estimable) or a choice made for the user
    (warnings), with the reason."""

    section: str
    reason: str


class Interval(ResultModel):
    """A point estimate with its confidence interval (None parts come with a reason)."""

    estimate: Num
    lower: Num
    upper: Num
    method: str
    reason: str | None = None

    @classmethod
    def of(cls, e: _Estimate) -> Interval:
        return cls(
            estimate=e.estimate, lower=e.lower, upper=e.upper, method=e.method, reason=e.reason
        )


class ChiSquareTest(ResultModel):
    """A test of association (chi-square with or without Yates, or Fisher's exact)."""

    method: str
    statistic: Num
    df: int | None
    p_value: Num
    reason: str | None = None

    @classmethod
    def of(cls, t: TestResult) -> ChiSquareTest:
        return cls(
            method=t.method, statistic=t.statistic, df=t.df, p_value=t.p_value, reason=t.reason
        )


class ModelTest(ResultModel):
    """A likelihood-ratio / Wald / score test of a Cox model."""

    statistic: Num
    df: int
    p_value: Num

    @classmethod
    def of(cls, t: CoxTest) -> ModelTest:
        return cls(statistic=t.statistic, df=t.df, p_value=t.p_value)


class LogRank(ResultModel):
    """Log-rank test; with ``groups`` the observed / expected events per group."""

    chi_square: Num
    df: int | None
    p_value: Num
    reason: str | None = None
    groups: list[str] | None = None
    observed: list[float] | None = None
    expected: list[float] | None = None

    @classmethod
    def of(cls, lr: LogRankResult, detail: bool = False) -> LogRank:
        out = cls(chi_square=lr.chi_square, df=lr.df, p_value=lr.p_value, reason=lr.reason)
        if detail:
            out.groups = [str(g) for g in lr.groups]
            out.observed = [float(x) for x in lr.observed]
            out.expected = [float(x) for x in lr.expected]
        return out


class HazardRatio(ResultModel):
    """Cox PH of one term (Efron ties): HR with Wald CI (robust SE when there is one)."""

    estimable: bool
    reason: str | None = None
    hr: Num = None
    lower: Num = None
    upper: Num = None
    conf_level: Num = None
    coef: Num = None
    se: Num = None
    robust_se: Num = None
    wald_p: Num = None
    lr_p: Num = None
    score_p: Num = None
    n: int | None = None
    events: int | None = None

    @classmethod
    def of(cls, r: CoxResult, term: int = 0) -> HazardRatio:
        return cls(
            estimable=True,
            hr=r.hazard_ratio[term],
            lower=r.ci_lower[term],
            upper=r.ci_upper[term],
            conf_level=r.conf_level,
            coef=r.coef[term],
            se=r.se[term],
            robust_se=None if r.robust_se is None else r.robust_se[term],
            wald_p=r.p_value[term],
            lr_p=r.lr_test.p_value,
            score_p=r.score_test.p_value,
            n=r.n,
            events=r.n_events,
        )

    @classmethod
    def failed(cls, reason: str) -> HazardRatio:
        return cls(estimable=False, reason=reason)


# -- time to event ----------------------------------------------------------------------
class Median(ResultModel):
    """Kaplan-Meier median with R's print.survfit (Brookmeyer-Crowley) interval."""

    time: Num
    lower: Num
    upper: Num
    conf_type: str
    conf_level: float
    reason: str | None = None


class MedianSpss(ResultModel):
    """Median with SPSS's symmetric interval median -/+ z SE."""

    time: Num
    se: Num
    lower: Num
    upper: Num
    reason: str | None = None


class FollowUp(ResultModel):
    """Median follow-up (reverse Kaplan-Meier) with its interval."""

    time: Num
    lower: Num
    upper: Num


class AtHorizon(ResultModel):
    """Survival at a horizon as R's ``summary(survfit, times, extend = TRUE)``: past the
    arm's last follow-up time the last value is carried forward with ``n_risk = 0`` and
    ``beyond_follow_up`` set; such a value is not an estimate at that horizon."""

    time: float
    n_risk: float
    n_event: float
    n_censor: float
    surv: Num
    std_err: Num
    lower: Num
    upper: Num
    beyond_follow_up: bool
    follow_up_ends: float


class AtRisk(ResultModel):
    time: float
    n_risk: float
    cum_events: float
    cum_censored: float


class Incidence(ResultModel):
    """Aalen-Johansen cumulative incidence of the event (competing events present)."""

    time: float
    cause: int
    cif: Num
    std_err: Num
    lower: Num
    upper: Num
    n_risk: float
    naive_proportion: Num
    one_minus_km: Num


class ArmSurvival(ResultModel):
    """Kaplan-Meier summary of one arm (or of the whole cohort without arms)."""

    n: int
    events: float
    median: Median
    median_spss: MedianSpss
    at_horizons: list[AtHorizon] = Field(default_factory=list)
    median_follow_up: FollowUp | None = None
    number_at_risk: list[AtRisk] = Field(default_factory=list)
    cumulative_incidence: list[Incidence] | None = None


class TimeToEventResult(ResultModel):
    type: Literal["time_to_event"] = "time_to_event"
    label: str
    #: which median interval the report shows (``brookmeyer_crowley`` or ``spss``)
    median_ci: str
    per_arm: dict[str, ArmSurvival] = Field(default_factory=dict)
    logrank: LogRank | None = None
    cox: HazardRatio | None = None
    #: after matching: variance clustered on the matched sets
    cox_robust_sets: HazardRatio | None = None
    #: after matching without replacement: stratified on the matched sets
    cox_stratified_sets: HazardRatio | None = None
    #: restricted mean survival time per arm and their difference at the last horizon
    rmst: RmstResult | None = None
    #: proportional-hazards test of the arm Cox model (cox.zph)
    ph_test: PhTest | None = None
    #: Fine-Gray subdistribution HR of the arm when a competing event is given (the Cox
    #: HR above is then the cause-specific HR)
    fine_gray: FineGrayResult | None = None


# -- binary ------------------------------------------------------------------------------
class ArmRisk(ResultModel):
    events: int
    n: int
    risk: Num


class Proportion(ResultModel):
    """A proportion with its Wilson interval."""

    events: int
    n: int
    proportion: Num
    lower: Num
    upper: Num


class ZTest(ResultModel):
    z: Num
    p_value: Num
    method: str


class BinaryResult(ResultModel):
    type: Literal["binary"] = "binary"
    label: str
    per_arm: dict[str, ArmRisk] | None = None
    overall: Proportion | None = None
    risk_difference: Interval | None = None
    risk_difference_newcombe: Interval | None = None
    risk_ratio: Interval | None = None
    odds_ratio: Interval | None = None
    z_test: ZTest | None = None
    association_test: ChiSquareTest | None = None

    def add_comparison(self, cmp: ProportionComparison) -> None:
        self.risk_difference = Interval.of(cmp.risk_difference)
        self.risk_difference_newcombe = Interval.of(cmp.risk_difference_newcombe)
        self.risk_ratio = Interval.of(cmp.risk_ratio)
        self.odds_ratio = Interval.of(cmp.odds_ratio)
        self.z_test = ZTest(z=cmp.z_statistic, p_value=cmp.p_value, method=cmp.p_method)


OutcomeResult = Annotated[TimeToEventResult | BinaryResult, Field(discriminator="type")]


# -- comparisons across levels, multivariable Cox, sensitivity ----------------------------
class LevelProportion(Proportion):
    level: str


class LevelSurvival(ResultModel):
    level: str
    n: int
    events: float
    median: Num
    lower: Num
    upper: Num


class ComparisonResult(ResultModel):
    """An outcome across the levels of a column; binary outcomes get ``proportions`` and
    chi-square tests, time-to-event outcomes ``medians`` and a log-rank test."""

    by: str
    outcome: str
    label: str
    levels: list[str]
    proportions: list[LevelProportion] | None = None
    chi_square: ChiSquareTest | None = None
    chi_square_yates: ChiSquareTest | None = None
    association_test: ChiSquareTest | None = None
    medians: list[LevelSurvival] | None = None
    logrank: LogRank | None = None


class Coefficient(ResultModel):
    """One design column of a multivariable Cox model: a numeric covariate, or one level
    of a categorical term against its reference level."""

    covariate: str
    variable: str | None = None
    #: numeric (per unit), binary (1 vs 0) or categorical (level vs reference)
    kind: Literal["numeric", "binary", "categorical"] | None = None
    level: str | None = None
    reference: str | None = None
    #: a numeric covariate divided by this before fitting (the HR is per this many units)
    scale: float | None = None
    coef: Num
    hr: Num
    se: Num
    robust_se: Num = None
    z: Num
    p_value: Num
    lower: Num
    upper: Num


class CoxModelResult(ResultModel):
    label: str
    outcome: str
    n: int
    events: int
    dropped_missing: int
    conf_level: float
    coefficients: list[Coefficient]
    lr_test: ModelTest
    wald_test: ModelTest

    @staticmethod
    def coefficients_of(
        r: CoxResult, terms: Sequence[CovariateInfo] | None = None
    ) -> list[Coefficient]:
        """One row per design column; ``terms`` (the design's covariates) name the level
        and reference level of the categorical ones."""
        where: dict[str, dict[str, Any]] = {}
        for info in terms or []:
            for j, col in enumerate(info.columns):
                where[col] = {"variable": info.name, "kind": info.kind}
                if info.levels:
                    where[col].update(level=info.levels[j + 1], reference=info.levels[0])
                elif info.kind == "binary":
                    where[col].update(level="1", reference="0")
        return [
            Coefficient(
                covariate=name,
                **where.get(name, {}),
                coef=r.coef[i],
                hr=r.hazard_ratio[i],
                se=r.se[i],
                robust_se=None if r.robust_se is None else r.robust_se[i],
                z=r.z[i],
                p_value=r.p_value[i],
                lower=r.ci_lower[i],
                upper=r.ci_upper[i],
            )
            for i, name in enumerate(r.names)
        ]


class SensitivityResult(ResultModel):
    kind: str
    outcome: str
    adjusted_for: list[str] = Field(default_factory=list)
    cox: HazardRatio | None = None
    landmark_day: int | None = None
    n: int | None = None
    n_exposed: int | None = None
    logrank_p: Num = None
    n_rows: int | None = None


# -- cohort and matching -------------------------------------------------------------------
class ArmCounts(ResultModel):
    treated: int
    control: int


class PropensityModelSummary(ResultModel):
    method: str
    lambda_: Num = Field(alias="lambda")
    converged: bool
    coefficients: dict[str, Num]
    auc: Num
    equipoise: Num
    treated_share: Num
    warnings: list[str]


class MatchingSummary(ResultModel):
    preset: str
    n_before: ArmCounts
    n_after: ArmCounts | None = None
    #: covariates given in the spec but left out of the PS model (constant or all missing)
    covariates_dropped: list[str] = Field(default_factory=list)
    settings: dict[str, Any] | None = None
    caliper_absolute: Num = None
    n_sets: int | None = None
    reason: str | None = None
    propensity_model: PropensityModelSummary | None = None
    max_abs_smd_before: Num = None
    max_abs_smd_after: Num = None
    smd_method: str | None = None


class CohortFilter(ResultModel):
    include: dict[str, list[str]]
    n_before: int
    n_after: int


class CohortCounts(ResultModel):
    """Rows read (``n_input``), rows left out by the spec's ``include`` filter, rows whose
    outcome start lies after the data cut-off (or is missing), and rows analysed."""

    n_input: int
    excluded_by_include: int = 0
    n_after_cutoff: int
    excluded_index_after_cutoff: int
    #: index later than the cut-off minus ``complete_window_days`` (spec option)
    excluded_incomplete_window: int = 0
    arms_before_matching: dict[str, int] | None = None


class AttritionStep(ResultModel):
    rule_number: int
    rule: str
    persons_remaining: int
    persons_removed: int


class HeadlineRow(ResultModel):
    result: str
    estimate: str


class QualityFinding(ResultModel):
    """One finding of the data-quality stage (cohort-etl check) on the source CDM."""

    check: str
    severity: Literal["error", "warning"]
    table: str
    column: str | None = None
    count: int
    message: str
    example_ids: list[int | str] = Field(default_factory=list)


class CleaningRule(ResultModel):
    """Rows of one CDM table one staging cleaning rule drops (or repairs), whole table."""

    rule: str
    table: str
    rows: int
    action: Literal["dropped", "repaired"]


class DataQuality(ResultModel):
    """The data-quality stage's warnings and cleaning counts for the CDM of this run
    (errors stop a run, so a written study has none)."""

    cdm_schema: str
    options: dict[str, Any] = Field(default_factory=dict)
    findings: list[QualityFinding] = Field(default_factory=list)
    cleaning_rules: list[CleaningRule] = Field(default_factory=list)

    @classmethod
    def from_report(cls, report: Any) -> DataQuality:
        """From a :class:`cohort_etl.quality.QualityReport`."""
        data = report.to_dict()
        return cls(
            cdm_schema=data["schema"],
            options=data["options"],
            findings=[QualityFinding(**f) for f in data["findings"]],
            cleaning_rules=[CleaningRule(**c) for c in data["cleaning_rules"]],
        )


class ConceptSetSource(ResultModel):
    """A concept set a study's spec uses, as registered when ``run`` read it: a ``draft``
    set has not been reviewed (concept_sets/registry.csv)."""

    name: str
    file: str
    status: Literal["draft", "accepted", "deprecated"]
    domain: str = ""
    sha256: str


class ConceptSetColumn(ResultModel):
    """A column the spec derives from a concept set: a 0/1 covariate (any record in
    ``window_days`` of ``anchor``) or an outcome date (first record after ``anchor``).
    Counts are over the compared persons (before matching) and blank when between 1 and
    min_cell_count - 1; SMDs are the balance table's."""

    column: str
    concept_set: str
    kind: Literal["covariate", "outcome_date"]
    anchor: str
    window_days: list[int] | None = None
    definition: str
    persons: int
    persons_with_record: int | None = None
    suppressed: bool = False
    smd_before: Num = None
    smd_after: Num = None


class Provenance(ResultModel):
    """Where the data came from: the only part that differs between the two doors
    (``attrition`` and ``data_quality`` are known only to ``run``, which reads the cohort's
    attrition table and checks the source CDM before the build)."""

    door: Literal["run", "analyze"]
    source: str
    sha256: str | None = None
    attrition: list[AttritionStep] | None = None
    data_quality: DataQuality | None = None
    #: the registry rows of the concept sets the spec derives columns from (run only)
    concept_sets: list[ConceptSetSource] | None = None


class StudyResults(ResultModel):
    """results.json of one study (a study that could not run has ``error`` and nothing
    else but its identity and flags)."""

    schema_version: Literal[2] = SCHEMA_VERSION
    study: str
    title: str
    data_cutoff: str | None = None
    min_cell_count: int
    #: every time in this file is in days; the report shows them in display_unit
    time_unit: Literal["days"] = "days"
    display_unit: Literal["days", "weeks", "months", "years"] = "days"
    provenance: Provenance | None = None
    error: str | None = None
    cohort_filter: CohortFilter | None = None
    cohort: CohortCounts | None = None
    matching: MatchingSummary | None = None
    #: columns derived from concept sets (spec concept_set_covariates / _outcomes)
    concept_set_columns: list[ConceptSetColumn] = Field(default_factory=list)
    outcomes: dict[str, OutcomeResult] = Field(default_factory=dict)
    comparisons: dict[str, ComparisonResult] = Field(default_factory=dict)
    cox_models: dict[str, CoxModelResult] = Field(default_factory=dict)
    sensitivity: dict[str, SensitivityResult] = Field(default_factory=dict)
    #: pass/fail diagnostics, negative/positive controls, empirical calibration
    diagnostics: DiagnosticsResult | None = None
    #: the target-trial emulation (docs/target_trial.md), when the spec asks for it
    target_trial: TargetTrialSection | None = None
    headline: list[HeadlineRow] = Field(default_factory=list)
    not_estimable: list[Flag] = Field(default_factory=list)
    warnings: list[Flag] = Field(default_factory=list)

    def write(self, path: Path) -> Path:
        text = json.dumps(self.to_json(), indent=2, sort_keys=True, allow_nan=False)
        Path(path).write_text(text + "\n")
        return Path(path)

    @classmethod
    def read(cls, path: Path) -> StudyResults:
        """Read and validate a results.json (InputDataError names the file and field)."""
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise InputDataError(f"{path}: cannot be read as JSON: {exc}") from None
        if not isinstance(raw, dict) or raw.get("schema_version") != SCHEMA_VERSION:
            found = raw.get("schema_version") if isinstance(raw, dict) else None
            raise InputDataError(
                f"{path}: results schema_version {found!r}; this cohort-etl reads "
                f"version {SCHEMA_VERSION} (rerun the study)"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InputDataError(f"{path}: {where}: {first['msg']}") from None


def results_json_schema() -> dict[str, Any]:
    """The JSON Schema of results.json (published as docs/results.schema.json)."""
    schema = StudyResults.model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"cohort-etl study results, schema version {SCHEMA_VERSION}"
    return schema


def write_json_schema(path: Path) -> Path:
    """Write :func:`results_json_schema` to ``path`` (docs/results.schema.json)."""
    Path(path).write_text(json.dumps(results_json_schema(), indent=2, sort_keys=True) + "\n")
    return Path(path)
