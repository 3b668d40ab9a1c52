"""Execute a :class:`~cohort_etl.studies.spec.StudySpec` on a one-row-per-person dataset.

``Study(spec).run(frame)`` is the one study engine. It does not know where the frame
came from: ``cohort-etl run`` reads the analysis mart the spec names
(:mod:`cohort_etl.pipeline`), ``cohort-etl analyze`` a CSV / Parquet file
(:mod:`cohort_etl.commands.analyze`). It returns a :class:`StudyOutput`: the typed
:class:`~cohort_etl.engine.results.StudyResults` that become ``results.json``, the tables
written as CSV and what the figures need.

Every step that cannot be computed on these data is recorded with its reason in
``results.not_estimable``; choices made for the user (a constant covariate dropped) in
``results.warnings``. Nothing raises past the engine except bad specs or data (columns
the data lack, ready outcome columns that are not numeric / 0-1), which are the user's
to fix.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cohort_etl.diagnostics.design import evaluate_cox_design, matching_sensitivity, outcome_extras
from cohort_etl.diagnostics.results import DiagnosticsResult, thresholds_dict
from cohort_etl.diagnostics.spec import DiagnosticsSpec
from cohort_etl.engine.results import (
    ArmCounts,
    ArmRisk,
    ArmSurvival,
    AtHorizon,
    AtRisk,
    AttritionStep,
    BinaryResult,
    ChiSquareTest,
    CohortCounts,
    CohortFilter,
    ComparisonResult,
    ConceptSetColumn,
    CoxModelResult,
    Flag,
    FollowUp,
    HazardRatio,
    Incidence,
    LevelProportion,
    LevelSurvival,
    LogRank,
    MatchingSummary,
    Median,
    MedianSpss,
    ModelTest,
    Proportion,
    Provenance,
    SensitivityResult,
    StudyResults,
    TimeToEventResult,
)
from cohort_etl.engine.times import binary_outcome, check_ready_columns, dates, time_to_event
from cohort_etl.errors import CohortEtlError, SpecError
from cohort_etl.matching.arms import TREAT, match_arms
from cohort_etl.matching.design import CovariateInfo, Design
from cohort_etl.outcomes.binary import (
    association_test,
    chi_square_test,
    compare_proportions,
    wilson_interval,
)
from cohort_etl.outcomes.competing import AalenJohansen
from cohort_etl.outcomes.cox import CoxPH
from cohort_etl.outcomes.km import KaplanMeier, median_follow_up
from cohort_etl.outcomes.logrank import logrank_test
from cohort_etl.outcomes.timevarying import landmark, split_at_exposure
from cohort_etl.studies.spec import (
    UNIT_DAYS,
    Binary,
    ConceptSetCovariate,
    CoxModel,
    GroupComparison,
    Sensitivity,
    StudySpec,
    TimeToEvent,
)

log = logging.getLogger(__name__)

__all__ = ["TREAT", "CurveSet", "KMCurve", "Study", "StudyOutput", "empty_results"]


@dataclass
class KMCurve:
    label: str
    table: pd.DataFrame  # time, surv, lower, upper, n_risk ...
    risk: list[int]


@dataclass
class CurveSet:
    """The Kaplan-Meier curves of one figure: an outcome per arm, or across the levels
    of a comparison's ``by`` column."""

    outcome: str
    title: str
    name: str  # figure file stem, e.g. km_os or km_os_by_salvage_modality
    curves: dict[str, KMCurve]
    risk_times: list[int]
    by: str | None = None
    #: with a competing event: the cumulative incidence (Aalen-Johansen) per arm, columns
    #: time, cif, lower, upper; the figure then shows it instead of the KM curve
    incidence: dict[str, pd.DataFrame] | None = None


@dataclass
class StudyOutput:
    results: StudyResults
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    curves: list[CurveSet] = field(default_factory=list)
    balance: pd.DataFrame | None = None
    ps: pd.DataFrame | None = None
    forest: pd.DataFrame | None = None
    #: the analysed rows (after matching, with set_id), person-level: site-internal
    matched_data: pd.DataFrame | None = None
    #: the compared rows before matching (arm in TREAT), for Table 1
    compared: pd.DataFrame | None = None
    #: target-trial strategy curves and numbers at risk (report), when the spec has one
    target_trial_curves: dict[str, dict[str, list[float]]] | None = None
    target_trial_at_risk: dict[str, list[int]] | None = None


class _Empty(CohortEtlError):
    """A section that has nothing to compute (reported, not raised to the user)."""


def empty_results(spec: StudySpec, **fields: Any) -> StudyResults:
    """The results of ``spec`` before any section is computed (identity from the spec)."""
    return StudyResults(
        study=spec.name,
        title=spec.title,
        data_cutoff=spec.data_cutoff.isoformat() if spec.data_cutoff else None,
        min_cell_count=spec.min_cell_count,
        display_unit=spec.display_unit,
        **fields,
    )


def check_columns(spec: StudySpec, data: pd.DataFrame, source: str) -> None:
    """Every column the spec names must be in the data (the error lists what is there)."""
    missing = [c for c in spec.required_columns() if c not in data.columns]
    if missing:
        raise SpecError(
            f"study {spec.name!r}: {source} lacks column(s) named in the spec: "
            f"{', '.join(missing)}; available: {', '.join(map(str, data.columns))}"
        )


class Study:
    """Runs one study spec on one dataset: ``Study(spec).run(frame)``."""

    def __init__(self, spec: StudySpec, source: str = "data") -> None:
        self.spec = spec
        self.source = source
        self.cutoff = pd.Timestamp(spec.data_cutoff) if spec.data_cutoff else None

    # -- helpers ----------------------------------------------------------------------
    def _not_estimable(self, section: str, reason: str) -> None:
        self.out.results.not_estimable.append(Flag(section=section, reason=reason))
        log.warning("%s: %s: %s", self.spec.name, section, reason)

    def _warn(self, section: str, reason: str) -> None:
        self.out.results.warnings.append(Flag(section=section, reason=reason))
        log.warning("%s: %s: %s", self.spec.name, section, reason)

    def _arm_label(self, value: int) -> str:
        arms = self.spec.arms
        assert arms is not None
        return arms.label(arms.treated if value == 1 else arms.control)

    def _small(self, n: int) -> bool:
        return n < self.spec.min_cell_count

    # -- main -------------------------------------------------------------------------
    def run(
        self,
        data: pd.DataFrame,
        attrition: pd.DataFrame | None = None,
        provenance: Provenance | None = None,
    ) -> StudyOutput:
        spec = self.spec
        check_columns(spec, data, self.source)
        rows = study_rows(spec, data, self.cutoff)
        results = empty_results(spec, provenance=provenance)
        self.out = StudyOutput(results=results)
        self._fits: dict[str, tuple[pd.DataFrame, CoxPH | None]] = {}
        if attrition is not None and len(attrition):
            self.out.tables["attrition"] = attrition
            if results.provenance is not None:
                results.provenance.attrition = [
                    AttritionStep.model_validate(row) for row in attrition.to_dict(orient="records")
                ]

        results.cohort_filter = CohortFilter(
            include=spec.include, n_before=rows.n_input, n_after=rows.n_included
        )
        if rows.n_incomplete is not None:
            assert spec.complete_window_days is not None
            self._window_step(spec.complete_window_days, rows.n_incomplete, len(rows.data))
        results.cohort = CohortCounts(
            n_input=rows.n_input,
            excluded_by_include=rows.n_input - rows.n_included,
            n_after_cutoff=rows.n_after_cutoff,
            excluded_index_after_cutoff=rows.n_included - rows.n_after_cutoff,
            excluded_incomplete_window=rows.n_incomplete or 0,
        )
        data = rows.data
        for o in spec.outcomes:
            check_ready_columns(o, data)
        if spec.arms:
            data = self._arms(data, rows.compared)
            self.out.compared = data
            analysis = self._match(data)
        else:
            analysis = data.copy()
        self.out.matched_data = analysis
        if spec.concept_set_columns():
            compared = self.out.compared if self.out.compared is not None else analysis
            self._concept_set_columns(compared)
        for o in spec.outcomes:
            try:
                if isinstance(o, TimeToEvent):
                    self._tte(o, among(o, analysis))
                else:
                    self._binary(o, analysis)
            except CohortEtlError as exc:
                self._not_estimable(f"outcome:{o.name}", str(exc))
        # each section is computed item by item; one that cannot be computed is recorded
        # with its reason and the others go on
        if spec.diagnostics is not None:
            self._guarded("diagnostics", self._diagnostics, spec.diagnostics, data)
        for c in spec.comparisons:
            self._guarded(f"comparison:{c.name}", self._comparison, c, data)
        for m in spec.cox_models:
            self._guarded(f"cox:{m.name}", self._cox_model, m, data)
        for s in spec.sensitivity:
            self._guarded(f"sensitivity:{s.kind}:{s.outcome}", self._sensitivity, s, data)
        if spec.target_trial is not None:
            self._guarded("target_trial", self._target_trial, spec.target_trial, data)
        self._forest()
        return self.out

    def _concept_set_columns(self, data: pd.DataFrame) -> None:
        """results.json's ``concept_set_columns``: each derived column's definition, how
        many compared persons have a record (small counts suppressed) and, for a
        covariate, its SMD before / after matching."""
        balance = self.out.balance
        smd: dict[str, tuple[Any, Any]] = {}
        if balance is not None:
            for row in balance.itertuples(index=False):
                smd[str(row.covariate)] = (row.smd_before, row.smd_after)
        for item in self.spec.concept_set_columns():
            values = data[item.column]
            is_covariate = isinstance(item, ConceptSetCovariate)
            n = int((values == 1).sum()) if is_covariate else int(values.notna().sum())
            suppressed = 0 < n < self.spec.min_cell_count
            before, after = smd.get(item.column, (None, None))
            self.out.results.concept_set_columns.append(
                ConceptSetColumn(
                    column=item.column,
                    concept_set=item.concept_set,
                    kind="covariate" if is_covariate else "outcome_date",
                    anchor=item.anchor,
                    window_days=list(item.window_days) if is_covariate else None,  # type: ignore[union-attr]
                    definition=item.describe(),
                    persons=len(data),
                    persons_with_record=None if suppressed else n,
                    suppressed=suppressed,
                    smd_before=_float(before),
                    smd_after=_float(after),
                )
            )

    def _window_step(self, days: int, removed: int, remaining: int) -> None:
        """The complete-window rule as the last step of the attrition table."""
        att = self.out.tables.get("attrition")
        if att is not None and len(att):
            step = {
                "rule_number": int(att["rule_number"].max()) + 1,
                "rule": f"index date on or before the data cut-off minus {days} days "
                "(complete exposure window)",
                "persons_remaining": remaining,
                "persons_removed": removed,
            }
            self.out.tables["attrition"] = pd.concat([att, pd.DataFrame([step])], ignore_index=True)
            prov = self.out.results.provenance
            if prov is not None and prov.attrition is not None:
                prov.attrition.append(AttritionStep.model_validate(step))

    def _target_trial(self, tt: Any, data: pd.DataFrame) -> None:
        from cohort_etl.designs.section import run_section

        section, curves, at_risk = run_section(tt, data)
        self.out.results.target_trial = section
        self.out.target_trial_curves = curves
        self.out.target_trial_at_risk = at_risk
        diag = self.out.results.diagnostics
        if self.spec.diagnostics is not None and diag is not None:
            # the headline estimate gets the published design's diagnostics, beside them
            from cohort_etl.diagnostics.target_trial import evaluate_target_trial

            try:
                diag.designs["target_trial"] = evaluate_target_trial(
                    self.spec.diagnostics, tt, data, section
                )
            except CohortEtlError as exc:
                self._not_estimable("diagnostics:target_trial", str(exc))

    def _guarded(
        self,
        section: str,
        compute: Callable[[Any, pd.DataFrame], None],
        item: Any,
        data: pd.DataFrame,
    ) -> None:
        try:
            compute(item, data)
        except CohortEtlError as exc:
            self._not_estimable(section, str(exc))

    # -- arms and matching --------------------------------------------------------------
    def _arms(self, data: pd.DataFrame, compared: pd.DataFrame) -> pd.DataFrame:
        """The compared rows of :func:`study_rows`; records the arm sizes."""
        arms = self.spec.arms
        assert arms is not None
        unknown = sorted(set(data[arms.column].astype(str)) - {arms.treated, arms.control})
        if unknown:
            log.info("%s: rows with arm values %s are not compared", self.spec.name, unknown)
        assert self.out.results.cohort is not None
        self.out.results.cohort.arms_before_matching = {
            self._arm_label(v): int((compared[TREAT] == v).sum()) for v in (1, 0)
        }
        return compared

    def _usable_covariates(self, data: pd.DataFrame) -> list[str]:
        """The spec's covariates less those constant or all missing in the compared
        cohort (dropped with a warning: they carry no information on who was treated)."""
        kept = []
        for c in self.spec.covariates:
            values = data[c]
            if values.isna().all():
                self._warn("matching", f"covariate {c!r} is missing for every patient: left out")
            elif values.nunique(dropna=False) == 1:
                value = values.iloc[0]
                value = value.item() if isinstance(value, np.generic) else value
                self._warn(
                    "matching",
                    f"covariate {c!r} is constant ({value!r}) in the compared cohort: left out",
                )
            else:
                kept.append(c)
        return kept

    def _match(self, data: pd.DataFrame) -> pd.DataFrame:
        spec = self.spec
        m = spec.matching
        n1 = int(data[TREAT].sum())
        n0 = len(data) - n1
        info = MatchingSummary(preset=m.preset, n_before=ArmCounts(treated=n1, control=n0))
        self.out.results.matching = info
        empty = [self._arm_label(v) for v, n in ((1, n1), (0, n0)) if n == 0]
        if empty:
            self._not_estimable("matching", f"no patients in arm {', '.join(empty)}")
            return data.iloc[0:0]
        small = [self._arm_label(v) for v, n in ((1, n1), (0, n0)) if self._small(n)]
        if small:
            self._not_estimable(
                "matching",
                f"arm {', '.join(small)} has fewer than the minimum cell count "
                f"({spec.min_cell_count}) patients",
            )
            return data.iloc[0:0]
        if m.preset == "none" or not spec.covariates:
            info.n_after = info.n_before
            return data.assign(set_id=0)
        covariates = self._usable_covariates(data)
        info.covariates_dropped = [c for c in spec.covariates if c not in covariates]
        if not covariates:
            self._not_estimable("matching", "no covariate varies in the compared cohort")
            return data.iloc[0:0]
        categorical = [c for c in spec.categorical if c in covariates]
        try:
            got = match_arms(data, covariates, m, categorical=categorical)
        except np.linalg.LinAlgError as exc:
            self._not_estimable("matching", f"propensity model / matching failed: {exc}")
            return data.iloc[0:0]
        self.out.results.matching = MatchingSummary.model_validate(
            {**info.model_dump(by_alias=True), **got.info}
        )
        for section, reason in got.flags:
            self._not_estimable(section, reason)
        if got.balance is not None:
            self.out.balance = got.balance
            self.out.tables["table1_balance"] = got.balance
        if got.ps is not None:
            self.out.ps = pd.DataFrame({"arm": data[TREAT].to_numpy(), "ps": got.ps})
        if got.matched is None or len(got.matched) == 0:
            return data.iloc[0:0]
        return got.matched.reset_index(drop=True)

    # -- outcomes ---------------------------------------------------------------------
    def _arm_groups(self, data: pd.DataFrame) -> list[tuple[int, pd.DataFrame]]:
        if self.spec.arms is None:
            return [(1, data)]
        return [(1, data[data[TREAT] == 1]), (0, data[data[TREAT] == 0])]

    def _km_summary(self, km: KaplanMeier, o: TimeToEvent, n: int, label: str) -> ArmSurvival:
        med = km.median()
        spss = km.median_spss()
        summary = ArmSurvival(
            n=n,
            events=float(km.n_events_),
            median=Median(
                time=med.time,
                lower=med.lower,
                upper=med.upper,
                conf_type=med.conf_type,
                conf_level=med.conf_level,
                reason=med.reason,
            ),
            median_spss=MedianSpss(
                time=spss.median, se=spss.se, lower=spss.lower, upper=spss.upper, reason=spss.reason
            ),
        )
        if o.horizons_days:
            summary.at_horizons = self._at_horizons(km, o, label)
        return summary

    def _at_horizons(self, km: KaplanMeier, o: TimeToEvent, label: str) -> list[AtHorizon]:
        """R's summary(survfit, times, extend = TRUE), with the beyond-follow-up flag."""
        ends = float(km.timeline_[-1])
        rows = []
        for row in km.survival_at(o.horizons_days, extend=True).to_dict(orient="records"):
            beyond = bool(row["time"] > ends)
            rows.append(
                AtHorizon.model_validate(
                    {**row, "beyond_follow_up": beyond, "follow_up_ends": ends}
                )
            )
            if beyond:
                self._not_estimable(
                    f"outcome:{o.name}",
                    f"{label}: day {row['time']:g} is beyond follow-up (ends at day {ends:g}); "
                    "the value there is carried forward with n at risk 0, not an estimate",
                )
        return rows

    def _tte(self, o: TimeToEvent, data: pd.DataFrame) -> None:
        if data.empty:
            raise _Empty("no patients to analyse")
        times = time_to_event(data, o, self.cutoff)
        bad = times.bad
        if bad.any():
            self._not_estimable(
                f"outcome:{o.name}",
                f"{int(bad.sum())} patients with an end of follow-up before {o.start} "
                f"(or missing {o.start}) were left out",
            )
        frame = data.loc[~bad].assign(
            _time=times.time[~bad], _event=times.event[~bad], _code=times.code[~bad]
        )
        res = TimeToEventResult(label=o.label or o.name, median_ci=o.median_ci)
        self.out.results.outcomes[o.name] = res
        risk_times = o.risk_times_days or _default_risk_times(
            frame["_time"].max(), UNIT_DAYS[self.spec.display_unit]
        )
        curves: dict[str, KMCurve] = {}
        incidence: dict[str, pd.DataFrame] = {}
        for value, part in self._arm_groups(frame):
            label = self._arm_label(value) if self.spec.arms else o.label or o.name
            if part.empty:
                self._not_estimable(f"outcome:{o.name}", f"no patients in arm {label}")
                continue
            km = KaplanMeier(conf_type=o.conf_type, conf_level=o.conf_level).fit(
                part["_time"], part["_event"]
            )
            summary = self._km_summary(km, o, len(part), label)
            fu = median_follow_up(part["_time"], part["_event"])
            summary.median_follow_up = FollowUp(time=fu.time, lower=fu.lower, upper=fu.upper)
            risk = km.number_at_risk(risk_times)
            summary.number_at_risk = [
                AtRisk.model_validate(r) for r in risk.to_dict(orient="records")
            ]
            res.per_arm[label] = summary
            curves[label] = KMCurve(label, km.survival_table(), [int(x) for x in risk["n_risk"]])
            if o.competing_date:
                aj = AalenJohansen(conf_level=o.conf_level).fit(part["_time"], part["_code"])
                if 1 in aj.causes_:
                    summary.cumulative_incidence = [
                        Incidence.model_validate(vars(x))
                        for x in aj.incidence_at(o.horizons_days, cause=1)
                    ]
                    incidence[label] = aj.table(cause=1)[["time", "cif", "lower", "upper"]]
        self.out.curves.append(
            CurveSet(
                o.name,
                o.label or o.name,
                f"km_{o.name}",
                curves,
                risk_times,
                incidence=incidence if o.competing_date and incidence else None,
            )
        )
        self.out.tables[f"km_{o.name}"] = (
            pd.concat([c.table.assign(arm=k) for k, c in curves.items()], ignore_index=True)
            if curves
            else pd.DataFrame()
        )
        if self.spec.arms and len(curves) == 2:
            lr = logrank_test(frame["_time"], frame["_event"], frame[TREAT])
            res.logrank = LogRank.of(lr, detail=True)
            res.cox = self._cox_arm(frame)
            self._tte_extras(o, frame, res)
            if "set_id" in frame and frame["set_id"].nunique() > 1:
                res.cox_robust_sets = self._cox_arm(frame, cluster=frame["set_id"])
                if not self.spec.matching.replace:
                    res.cox_stratified_sets = self._cox_arm(frame, strata=frame["set_id"])

    def _tte_extras(self, o: TimeToEvent, frame: pd.DataFrame, res: TimeToEventResult) -> None:
        """RMST difference at the last horizon, PH test, Fine-Gray (competing event)."""
        fit = None
        try:
            fit = CoxPH().fit(frame["_time"], frame["_event"], frame[[TREAT]])
        except CohortEtlError:
            fit = None
        self._fits[o.name] = (frame, fit)
        rmst, ph, fg, reasons = outcome_extras(
            frame["_time"].to_numpy(dtype=float),
            frame["_event"].to_numpy(dtype=float),
            frame["_code"].to_numpy() if o.competing_date else None,
            frame[TREAT].to_numpy(),
            horizon=float(max(o.horizons_days)) if o.horizons_days else None,
            labels=(self._arm_label(1), self._arm_label(0)),
            cox_fit=fit,
        )
        res.rmst, res.ph_test, res.fine_gray = rmst, ph, fg
        for reason in reasons:
            self._not_estimable(f"outcome:{o.name}", reason)

    # -- diagnostics ----------------------------------------------------------------------
    def _diagnostics(self, d: DiagnosticsSpec, data: pd.DataFrame) -> None:
        """Pass/fail diagnostics, controls and calibration of the primary arm HR, and the
        matching sensitivity grid (docs/diagnostics.md)."""
        spec = self.spec
        o = spec.diagnostics_outcome()
        assert o is not None and o.start and o.censor_date
        results = self.out.results
        results.diagnostics = DiagnosticsResult(thresholds=thresholds_dict(d.thresholds))
        if o.name not in self._fits:
            raise _Empty(f"outcome {o.name!r} has no arm comparison to diagnose")
        frame, fit = self._fits[o.name]
        cutoff = self.cutoff
        assert cutoff is not None
        end = dates(frame, o.censor_date).fillna(cutoff)
        end = end.where(end <= cutoff, cutoff)
        m = results.matching
        pm = m.propensity_model if m is not None else None
        design = "published design" if d.immortal_time else "primary design"
        results.diagnostics.designs["primary"] = evaluate_cox_design(
            d,
            design=f"{design} ({m.preset if m else 'unmatched'})",
            outcome=o.name,
            frame=frame,
            treat=TREAT,
            start=dates(frame, o.start),
            end=end,
            cox_fit=fit,
            n_events=int(frame["_event"].sum()),
            max_abs_smd=m.max_abs_smd_after if m is not None else None,
            equipoise=pm.equipoise if pm is not None else None,
            n_treated_before=m.n_before.treated if m is not None else None,
            n_treated_after=m.n_after.treated if m is not None and m.n_after else None,
        )
        if d.matching_sensitivity is not None and spec.covariates:
            grid = d.matching_sensitivity
            cells: list[tuple[str, int, float | None]] = [
                (spec.matching.preset, seed, caliper)
                for seed in grid.seeds
                for caliper in grid.calipers
            ]
            cells += [(p, spec.matching.seed, None) for p in grid.presets]
            covariates = self._usable_covariates_quiet(data)
            categorical = [c for c in spec.categorical if c in covariates]

            def rerun(preset: str, seed: int, caliper: float | None) -> tuple[pd.DataFrame, CoxPH]:
                update: dict[str, Any] = {"seed": seed}
                if preset != spec.matching.preset:
                    update = {"preset": preset, "seed": seed, "caliper": None}
                elif caliper is not None:
                    update["caliper"] = caliper
                matching = spec.matching.model_copy(update=update)
                got = match_arms(data, covariates, matching, categorical=categorical)
                if got.matched is None or len(got.matched) == 0:
                    raise _Empty("no matched pairs")
                matched = got.matched.reset_index(drop=True)
                times = time_to_event(matched, o, cutoff)
                ok = ~times.bad
                part = matched.loc[ok]
                refit = CoxPH().fit(times.time[ok], times.event[ok], part[[TREAT]])
                return part, refit

            results.diagnostics.matching_sensitivity = matching_sensitivity(
                o.name, cells, rerun, TREAT
            )

    def _usable_covariates_quiet(self, data: pd.DataFrame) -> list[str]:
        return [
            c
            for c in self.spec.covariates
            if not data[c].isna().all() and data[c].nunique(dropna=False) > 1
        ]

    def _cox_arm(self, frame: pd.DataFrame, cluster: Any = None, strata: Any = None) -> HazardRatio:
        try:
            fit = CoxPH().fit(
                frame["_time"], frame["_event"], frame[[TREAT]], cluster=cluster, strata=strata
            )
        except CohortEtlError as exc:
            return HazardRatio.failed(str(exc))
        return HazardRatio.of(fit.result_)

    def _binary(self, o: Binary, data: pd.DataFrame) -> None:
        if data.empty:
            raise _Empty("no patients to analyse")
        y = binary_outcome(data, o, self.cutoff)
        res = BinaryResult(label=o.label or o.name)
        self.out.results.outcomes[o.name] = res
        if not self.spec.arms:
            ci = wilson_interval(int(y.sum()), len(y), o.conf_level)
            res.overall = Proportion(
                events=int(y.sum()),
                n=len(y),
                proportion=ci.estimate,
                lower=ci.lower,
                upper=ci.upper,
            )
            return
        t = data[TREAT].to_numpy()
        a, n1 = int(y[t == 1].sum()), int((t == 1).sum())
        c, n0 = int(y[t == 0].sum()), int((t == 0).sum())
        cmp = compare_proportions(a, n1, c, n0, o.conf_level)
        res.per_arm = {
            self._arm_label(1): ArmRisk(events=a, n=n1, risk=cmp.risk_1.estimate),
            self._arm_label(0): ArmRisk(events=c, n=n0, risk=cmp.risk_0.estimate),
        }
        res.add_comparison(cmp)
        table = np.array([[a, n1 - a], [c, n0 - c]])
        res.association_test = ChiSquareTest.of(association_test(table))
        if cmp.reason:
            self._not_estimable(f"outcome:{o.name}", cmp.reason)

    # -- group comparisons (e.g. CR by salvage modality) ---------------------------------
    def _comparison(self, c: GroupComparison, data: pd.DataFrame) -> None:
        o = self.spec.outcome(c.outcome)
        if isinstance(o, TimeToEvent):
            data = among(o, data)
        levels = c.levels or sorted(data[c.by].dropna().astype(str).unique())
        part = data[data[c.by].astype(str).isin(levels)]
        if part.empty:
            raise _Empty(f"no patients with {c.by} in {levels}")
        labels = {
            **{
                k.split(".", 1)[1]: v
                for k, v in self.spec.labels.items()
                if k.startswith(f"{c.by}.")
            },
            **c.level_labels,
        }
        group = part[c.by].astype(str).map(lambda v: labels.get(v, v))
        levels = [labels.get(v, v) for v in levels]
        res = ComparisonResult(by=c.by, outcome=c.outcome, label=c.label, levels=levels)
        self.out.results.comparisons[c.name] = res
        if isinstance(o, Binary):
            y = binary_outcome(part, o, self.cutoff)
            rows = []
            for level in levels:
                yl = y[(group == level).to_numpy()]
                ci = wilson_interval(int(yl.sum()), len(yl), o.conf_level) if len(yl) else None
                rows.append(
                    LevelProportion(
                        level=level,
                        events=int(yl.sum()),
                        n=len(yl),
                        proportion=ci.estimate if ci else None,
                        lower=ci.lower if ci else None,
                        upper=ci.upper if ci else None,
                    )
                )
            res.proportions = rows
            table = np.array([[r.events, r.n - r.events] for r in rows if r.n > 0])
            if len(table) < 2:
                raise _Empty(f"fewer than two levels of {c.by} have patients")
            res.chi_square = ChiSquareTest.of(chi_square_test(table, correct=False))
            res.chi_square_yates = ChiSquareTest.of(chi_square_test(table, correct=True))
            res.association_test = ChiSquareTest.of(association_test(table))
            self.out.tables[f"comparison_{c.name}"] = _frame(rows)
        else:
            times = time_to_event(part, o, self.cutoff)
            ok = ~times.bad
            t, e = times.time, times.event
            res.logrank = LogRank.of(logrank_test(t[ok], e[ok], group.to_numpy()[ok]))
            medians = []
            curves: dict[str, KMCurve] = {}
            risk_times = o.risk_times_days or _default_risk_times(
                float(t[ok].max()), UNIT_DAYS[self.spec.display_unit]
            )
            for level in levels:
                m = ok & (group == level).to_numpy()
                if not m.any():
                    continue
                km = KaplanMeier(conf_type=o.conf_type, conf_level=o.conf_level).fit(t[m], e[m])
                med = km.median()
                medians.append(
                    LevelSurvival(
                        level=level,
                        n=int(m.sum()),
                        events=float(km.n_events_),
                        median=med.time,
                        lower=med.lower,
                        upper=med.upper,
                    )
                )
                risk = km.number_at_risk(risk_times)
                curves[level] = KMCurve(
                    level, km.survival_table(), [int(x) for x in risk["n_risk"]]
                )
            res.medians = medians
            self.out.curves.append(
                CurveSet(
                    o.name,
                    f"{o.label or o.name} by {self.spec.labels.get(c.by, c.by)}",
                    f"km_{o.name}_by_{c.by}",
                    curves,
                    risk_times,
                    by=c.by,
                )
            )
            self.out.tables[f"comparison_{c.name}"] = _frame(medians)

    # -- multivariable Cox -----------------------------------------------------------------
    def _cox_model(self, m: CoxModel, data: pd.DataFrame) -> None:
        o = self.spec.outcome(m.outcome)
        if not isinstance(o, TimeToEvent):
            raise SpecError(f"cox model {m.name!r}: outcome {o.name!r} is not time-to-event")
        cm = cox_model_data(m, o, data, self.cutoff)
        keep = cm.keep
        x = pd.DataFrame(cm.design.matrix, columns=cm.design.columns)
        fit = CoxPH().fit(cm.time, cm.event, x)
        design = cm.design
        r = fit.result_
        coefficients = CoxModelResult.coefficients_of(r, design.covariates)
        for row in coefficients:
            if row.variable in m.scale:
                row.scale = m.scale[row.variable]
        self.out.results.cox_models[m.name] = CoxModelResult(
            label=m.label,
            outcome=m.outcome,
            n=r.n,
            events=r.n_events,
            dropped_missing=int((~keep).sum()),
            conf_level=r.conf_level,
            coefficients=coefficients,
            lr_test=ModelTest.of(r.lr_test),
            wald_test=ModelTest.of(r.wald_test),
        )
        self.out.tables[f"cox_{m.name}"] = _frame(coefficients)

    # -- sensitivity analyses -----------------------------------------------------------
    def _sensitivity(self, s: Sensitivity, data: pd.DataFrame) -> None:
        o = self.spec.outcome(s.outcome)
        if not isinstance(o, TimeToEvent):
            raise SpecError(f"sensitivity {s.kind}: outcome {o.name!r} is not time-to-event")
        sd = sensitivity_data(s, o, data, self.cutoff)
        res = SensitivityResult(kind=s.kind, outcome=s.outcome, adjusted_for=list(s.adjust_for))
        if s.kind == "landmark":
            n1 = int(sd.X.iloc[:, 0].sum())
            res.landmark_day, res.n, res.n_exposed = s.landmark_day, len(sd.X), n1
            if n1 == 0 or n1 == len(sd.X):
                raise _Empty(f"landmark day {s.landmark_day}: one group is empty")
        fit = CoxPH().fit(sd.time, sd.event, sd.X, entry=sd.entry, cluster=sd.cluster)
        res.cox = HazardRatio.of(fit.result_)
        if s.kind == "landmark":
            res.logrank_p = logrank_test(sd.time, sd.event, sd.X.iloc[:, 0]).p_value
        elif s.kind == "time_varying":
            res.n_rows = len(sd.X)
        self.out.results.sensitivity[s.key] = res

    def _forest(self) -> None:
        """Hazard ratios of every arm comparison (forest plot + hazard_ratios.csv) and the
        KM estimates at the horizons of every outcome (km_at_horizons.csv)."""
        results = self.out.results
        rows: list[dict[str, Any]] = []

        def add(label: str, cox: HazardRatio | None, primary: bool) -> None:
            if cox is not None and cox.estimable:
                rows.append(
                    {
                        "label": label,
                        "estimate": cox.hr,
                        "lower": cox.lower,
                        "upper": cox.upper,
                        "p_value": cox.wald_p,
                        "n": cox.n,
                        "events": cox.events,
                        "_primary": primary,
                    }
                )

        for o in results.outcomes.values():
            if isinstance(o, TimeToEventResult):
                add(f"{o.label}: matched", o.cox, True)
                add(f"{o.label}: matched, robust SE", o.cox_robust_sets, False)
                add(f"{o.label}: matched, stratified on sets", o.cox_stratified_sets, False)
        for key, sens in results.sensitivity.items():
            add(key.replace("_", " "), sens.cox, True)
        if rows:
            table = pd.DataFrame(rows)
            self.out.tables["hazard_ratios"] = table.drop(columns="_primary")
            self.out.forest = table[table["_primary"]].drop(columns="_primary")
        horizons = [
            {"outcome": name, "arm": arm, **row.model_dump()}
            for name, o in results.outcomes.items()
            if isinstance(o, TimeToEventResult)
            for arm, summary in o.per_arm.items()
            for row in summary.at_horizons
        ]
        if horizons:
            self.out.tables["km_at_horizons"] = pd.DataFrame(horizons)


@dataclass
class Rows:
    """A study's rows at the engine's selection steps (:func:`study_rows`)."""

    #: after the spec's ``include``, index dates up to the cut-off and the complete-window
    #: rule, sorted by person_id (numbered in file order when the data have none)
    data: pd.DataFrame
    #: the rows of the two compared arms with ``_treated`` (``data`` without arms)
    compared: pd.DataFrame
    n_input: int
    n_included: int
    n_after_cutoff: int
    #: removed by the complete-window rule (None when the rule does not apply)
    n_incomplete: int | None


def study_rows(spec: StudySpec, data: pd.DataFrame, cutoff: pd.Timestamp | None) -> Rows:
    """The engine's row selection (``Study.run`` and the network's export use it)."""
    if "person_id" not in data.columns:  # a user's file: rows numbered in file order
        data = data.assign(person_id=np.arange(1, len(data) + 1))
    data = data.sort_values("person_id", kind="stable").reset_index(drop=True)
    n_input = len(data)
    for column, allowed in spec.include.items():
        data = data[data[column].astype(str).isin([str(a) for a in allowed])]
    n_included = len(data)
    if cutoff is not None:
        for col in index_starts(spec):
            data = data[dates(data, col) <= cutoff]
    n_after_cutoff = len(data)
    incomplete = None
    if cutoff is not None and spec.complete_window_days is not None:
        # an exposure window that cannot be fully observed: index later than cut-off - days
        limit = cutoff - pd.Timedelta(days=spec.complete_window_days)
        keep = pd.Series(True, index=data.index)
        for col in index_starts(spec):
            keep &= dates(data, col) <= limit
        incomplete = int((~keep).sum())
        data = data[keep]
    compared = data
    if spec.arms:
        arms = spec.arms
        values = data[arms.column].astype(str)
        compared = data[values.isin([arms.treated, arms.control])].copy()
        compared[TREAT] = (compared[arms.column].astype(str) == arms.treated).astype(int)
        compared = compared.reset_index(drop=True)
    return Rows(data, compared, n_input, n_included, n_after_cutoff, incomplete)


@dataclass
class SensitivityData:
    """What a sensitivity analysis's Cox model is fitted on: the exposure first in ``X``,
    then the adjustment covariates; ``entry`` and ``cluster`` (person) for the
    counting-process rows of the time-varying model."""

    time: np.ndarray
    event: np.ndarray
    X: pd.DataFrame
    entry: np.ndarray | None = None
    cluster: np.ndarray | None = None


def sensitivity_data(
    s: Sensitivity,
    o: TimeToEvent,
    data: pd.DataFrame,
    cutoff: pd.Timestamp | None,
    levels: dict[str, list[str]] | None = None,
) -> SensitivityData:
    """The fitting data of sensitivity analysis ``s`` on the compared rows ``data`` (the
    engine's; the network's export uses it too). A landmark population with one exposure
    group empty is returned as it is (the engine reports it as not estimable).
    ``levels``: fixed levels (reference first) of categorical adjustment terms, so that
    every site of a network has the same design columns (default: the levels present)."""
    times = time_to_event(data, o, cutoff)
    ok = ~times.bad
    frame = data.loc[ok].assign(_time=times.time[ok], _event=times.event[ok])

    def fit_data(rows: pd.DataFrame, exposure: str) -> SensitivityData:
        return SensitivityData(rows["_time"].to_numpy(float), rows["_event"].to_numpy(float),
                               _sensitivity_design(rows, exposure, s, levels))  # fmt: skip

    if s.kind == "unmatched":
        return fit_data(frame, TREAT)
    assert o.start and s.exposure_date
    start = dates(frame, o.start)
    exp_days = (dates(frame, s.exposure_date) - start).dt.days.to_numpy(dtype=float)
    frame = frame.assign(_exposure=exp_days, _ever=np.isfinite(exp_days).astype(int))
    if s.kind == "naive_ever_treated":
        return fit_data(frame, "_ever")
    if s.kind == "landmark":
        assert s.landmark_day
        if s.event_free_date:
            # METHODS.md: alive AND event-free (relapse-free) at the landmark
            free = (dates(frame, s.event_free_date) - start).dt.days.to_numpy(float)
            frame = frame[~(free <= s.landmark_day)]
        lm = landmark(
            frame,
            s.landmark_day,
            time_col="_time",
            event_col="_event",
            exposure_time_col="_exposure",
        )
        return fit_data(lm, "exposed")
    frame = frame.assign(_time=np.maximum(frame["_time"], 0.5)).reset_index(drop=True)
    adjust = _sensitivity_design(frame, "_time", s, levels).drop(columns="_time")
    adjust.columns = [f"_adj_{c}" for c in adjust.columns]
    frame = pd.concat([frame, adjust], axis=1)
    split = split_at_exposure(
        frame,
        id_col="person_id",
        time_col="_time",
        event_col="_event",
        exposure_time_col="_exposure",
        keep=list(adjust.columns),
    )
    return SensitivityData(
        split["stop"].to_numpy(float),
        split["_event"].to_numpy(float),
        split[["exposed", *adjust.columns]].astype(float).reset_index(drop=True),
        entry=split["start"].to_numpy(float),
        cluster=split["person_id"].to_numpy(),
    )


def _sensitivity_design(
    frame: pd.DataFrame,
    exposure: str,
    s: Sensitivity,
    levels: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """The exposure first, then the adjustment covariates (categorical expanded)."""
    from cohort_etl.matching.design import build_design

    x = frame[[exposure]].astype(float).reset_index(drop=True)
    if not s.adjust_for:
        return x
    template = [CovariateInfo(c, "categorical", tuple(levels[c]))
                for c in s.adjust_for if levels and c in levels]  # fmt: skip
    design = build_design(frame, list(s.adjust_for), template=template or None)
    return pd.concat([x, pd.DataFrame(design.matrix, columns=design.columns)], axis=1)


@dataclass
class CoxModelData:
    """What a multivariable Cox model is fitted on: the design (reference levels and
    scales of the spec applied), times and events of the rows kept, and which rows of the
    outcome's population were kept (complete covariates, a valid time)."""

    design: Design
    time: np.ndarray
    event: np.ndarray
    keep: np.ndarray


def cox_model_data(
    m: CoxModel, o: TimeToEvent, data: pd.DataFrame, cutoff: pd.Timestamp | None
) -> CoxModelData:
    """The fitting data of Cox model ``m`` (the engine's; the network's refit uses it too)."""
    from cohort_etl.matching.design import build_design

    data = among(o, data).reset_index(drop=True)
    times = time_to_event(data, o, cutoff)
    keep = ~times.bad & data[m.covariates].notna().all(axis=1).to_numpy()
    part = data.loc[keep].copy()
    for col, factor in m.scale.items():
        part[col] = pd.to_numeric(part[col]) / factor
    template = reference_levels(part, m)
    design = build_design(
        part, list(m.covariates), categorical=list(template), template=list(template.values())
    )
    return CoxModelData(design, times.time[keep], times.event[keep], keep)


def index_starts(spec: StudySpec) -> list[str]:
    """The start-date columns that every analysed person has (outcomes without ``among``):
    the data cut-off and the complete-window rule apply to these; an outcome of a
    sub-population (e.g. RFS from the CR date among responders) must not drop the others."""
    return sorted(
        {o.start for o in spec.outcomes if isinstance(o, TimeToEvent) and o.start and not o.among}
    )


def among(o: TimeToEvent | Binary, data: pd.DataFrame) -> pd.DataFrame:
    """The rows of an outcome's own population (``among``; all rows without it)."""
    if not isinstance(o, TimeToEvent) or not o.among:
        return data
    keep = np.ones(len(data), dtype=bool)
    for column, allowed in o.among.items():
        keep &= data[column].astype(str).isin([str(a) for a in allowed]).to_numpy()
    return data.loc[keep]


def reference_levels(data: pd.DataFrame, m: CoxModel) -> dict[str, CovariateInfo]:
    """The levels (reference first) of every categorical term of a Cox model: text
    columns, ``categorical`` ones and 0/1 columns given a ``reference``."""
    from cohort_etl.matching.design import factor_levels, is_categorical

    out: dict[str, CovariateInfo] = {}
    for col in m.covariates:
        if not (col in m.categorical or col in m.reference or is_categorical(data[col])):
            continue
        _, _, levels = factor_levels(data[col])
        if col in m.reference:
            ref = m.reference[col]
            if ref not in levels:
                raise SpecError(
                    f"cox model {m.name!r}: reference {ref!r} of {col!r} is not one of its "
                    f"levels {levels}"
                )
            levels = [ref, *[lv for lv in levels if lv != ref]]
        out[col] = CovariateInfo(col, "categorical", tuple(levels))
    return out


def _float(value: Any) -> float | None:
    """A finite float, else None (an SMD that could not be computed)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _frame(rows: Sequence[Any]) -> pd.DataFrame:
    """A result table (CSV) from typed rows."""
    return pd.DataFrame([r.model_dump() for r in rows])


def _default_risk_times(max_time: float, unit_days: float = 1.0) -> list[int]:
    """Round, evenly spaced times (days) covering the follow-up, 5 to 7 of them; with a
    display unit of ``unit_days`` days (a month: 30.4375) round in that unit."""
    if not math.isfinite(max_time) or max_time <= 0:
        return [0]
    if unit_days > 1:
        span = max_time / unit_days
        for step_u in (1, 2, 3, 6, 12, 24, 60):
            if span / step_u <= 6:
                n = int(span // step_u) + 1
                return [round(i * step_u * unit_days) for i in range(n)]
    for step in (30, 90, 180, 365, 730):
        if max_time / step <= 6:
            return [int(i * step) for i in range(int(max_time // step) + 1)]
    return [int(i * 1826) for i in range(int(max_time // 1826) + 1)]
