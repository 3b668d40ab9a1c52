"""Execute a :class:`~cohort_etl.studies.spec.StudySpec` on a one-row-per-person dataset.

The engine is independent of where the data come from (an analysis mart read from the
results schema, or a CSV / Parquet file for ``cohort-etl analyze``). It returns a
:class:`StudyResult`: the ``results`` dict that becomes ``results.json`` (schema in
docs/results_schema.md), the tables written as CSV, and what the figures need.

Every step that cannot be computed on these data is recorded with its reason in
``results["not_estimable"]`` and in the matching report section; nothing raises past
the engine except bad specs (columns the data lack), which are the user's to fix.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cohort_etl.analysis import match_arms
from cohort_etl.errors import CohortEtlError, SpecError
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
from cohort_etl.outcomes.summary import (
    RESULT_DIGITS,
    cox_dict,
    json_safe,
    logrank_dict,
    proportions_dict,
    stat_test_dict,
)
from cohort_etl.outcomes.timevarying import landmark, split_at_exposure, time_varying_cox
from cohort_etl.studies.spec import Binary, StudySpec, TimeToEvent

log = logging.getLogger(__name__)

TREAT = "_treated"


@dataclass
class KMCurve:
    label: str
    table: pd.DataFrame  # time, surv, lower, upper, n_risk ...
    risk: list[int]


@dataclass
class StudyResult:
    results: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    km_curves: dict[str, dict[str, KMCurve]] = field(default_factory=dict)
    risk_times: dict[str, list[int]] = field(default_factory=dict)
    balance: pd.DataFrame | None = None
    ps: pd.DataFrame | None = None
    forest: pd.DataFrame | None = None
    analysis_data: pd.DataFrame | None = None
    messages: dict[str, str] = field(default_factory=dict)  # section -> why empty


# --------------------------------------------------------------------------------------
# input checks and derived columns
# --------------------------------------------------------------------------------------
def required_columns(spec: StudySpec) -> set[str]:
    cols: set[str] = set(spec.covariates)
    if spec.arms:
        cols.add(spec.arms.column)
    for o in spec.outcomes:
        if isinstance(o, TimeToEvent):
            cols |= {o.start, o.censor_date, *_as_list(o.event_date)}
            if o.competing_date:
                cols.add(o.competing_date)
        else:
            cols |= {c for c in (o.column, o.start, o.event_date) if c}
    for c in spec.comparisons:
        cols.add(c.by)
    cols |= set(spec.include)
    for m in spec.cox_models:
        cols |= set(m.covariates)
    for s in spec.sensitivity:
        if s.exposure_date:
            cols.add(s.exposure_date)
    cols.add("person_id")
    return cols


def check_columns(spec: StudySpec, data: pd.DataFrame, source: str) -> None:
    missing = sorted(c for c in required_columns(spec) if c not in data.columns)
    if missing:
        raise SpecError(
            f"study {spec.name!r}: {source} lacks column(s) {', '.join(missing)}; "
            f"available: {', '.join(map(str, data.columns))}"
        )


def _dates(data: pd.DataFrame, column: str) -> pd.Series:
    """A date column as datetime64[ns] (DuckDB gives datetime64[us], PostgreSQL dates)."""
    return pd.to_datetime(data[column], errors="coerce").astype("datetime64[ns]")


def time_to_event(
    data: pd.DataFrame, o: TimeToEvent, cutoff: pd.Timestamp
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Days from start to event or censoring (administrative censoring at the cut-off).

    Returns (time, event 0/1, competing-event code 0/1/2 when ``competing_date`` is set).
    """
    start = _dates(data, o.start)
    event = pd.concat([_dates(data, c) for c in _as_list(o.event_date)], axis=1).min(axis=1)
    censor = _dates(data, o.censor_date).fillna(cutoff)
    censor = censor.where(censor <= cutoff, cutoff)
    end = censor.copy()
    has_event = event.notna() & (event <= censor)
    end[has_event] = event[has_event]
    code = has_event.astype(int).to_numpy()
    if o.competing_date:
        comp = _dates(data, o.competing_date)
        has_comp = comp.notna() & (comp <= censor) & (~has_event | (comp < event))
        end[has_comp] = comp[has_comp]
        code = np.where(has_comp, 2, code)
    days = (end - start).dt.days.to_numpy(dtype=float)
    return days, has_event.to_numpy().astype(int) * (code == 1), code


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def binary_outcome(data: pd.DataFrame, o: Binary, cutoff: pd.Timestamp) -> np.ndarray:
    if o.column:
        values = pd.to_numeric(data[o.column], errors="coerce")
        if values.isna().any() or not values.isin([0, 1]).all():
            raise SpecError(f"binary outcome {o.name!r}: column {o.column} must be 0/1")
        y = values.to_numpy(int)
    else:
        assert o.start and o.event_date and o.window_days
        start = _dates(data, o.start)
        event = _dates(data, o.event_date)
        limit = start + pd.Timedelta(days=o.window_days)
        limit = limit.where(limit <= cutoff, cutoff)
        y = (event.notna() & (event <= limit)).to_numpy(int)
    return 1 - y if o.negate else y


# --------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------
class StudyEngine:
    """Runs one study spec on one dataset."""

    def __init__(self, spec: StudySpec, source: str = "data") -> None:
        self.spec = spec
        self.source = source

    # -- helpers ----------------------------------------------------------------------
    def _not_estimable(self, section: str, reason: str) -> None:
        self.out.results.setdefault("not_estimable", []).append(
            {"section": section, "reason": reason}
        )
        self.out.messages.setdefault(section, reason)
        log.warning("%s: %s: %s", self.spec.name, section, reason)

    def _arm_label(self, value: int) -> str:
        arms = self.spec.arms
        assert arms is not None
        return arms.label(arms.treated if value == 1 else arms.control)

    def _small(self, n: int) -> bool:
        return n < self.spec.min_cell_count

    # -- main -------------------------------------------------------------------------
    def run(self, data: pd.DataFrame, attrition: pd.DataFrame | None = None) -> StudyResult:
        spec = self.spec
        check_columns(spec, data, self.source)
        self.cutoff = pd.Timestamp(spec.data_cutoff)
        data = data.sort_values("person_id", kind="stable").reset_index(drop=True)
        self.out = StudyResult(
            results={
                "schema_version": 1,
                "study": spec.name,
                "title": spec.title,
                "data_cutoff": spec.data_cutoff.isoformat(),
                "min_cell_count": spec.min_cell_count,
                "not_estimable": [],
            }
        )
        if attrition is not None and len(attrition):
            self.out.tables["attrition"] = attrition
            self.out.results["attrition"] = attrition.to_dict(orient="records")

        before = len(data)
        for column, allowed in spec.include.items():
            data = data[data[column].astype(str).isin([str(a) for a in allowed])]
        self.out.results["cohort_filter"] = {
            "include": spec.include,
            "n_before": before,
            "n_after": len(data),
        }
        starts = {o.start for o in spec.outcomes if isinstance(o, TimeToEvent)}
        for col in starts:
            data = data[_dates(data, col) <= self.cutoff]
        self.out.results["cohort"] = {
            "n_input": before,
            "n_after_cutoff": len(data),
            "excluded_index_after_cutoff": before - len(data),
        }
        if spec.arms:
            data = self._arms(data)
            analysis = self._match(data)
        else:
            analysis = data.copy()
        self.out.analysis_data = analysis
        self.out.results["outcomes"] = {}
        for o in spec.outcomes:
            try:
                if isinstance(o, TimeToEvent):
                    self._tte(o, analysis)
                else:
                    self._binary(o, analysis)
            except CohortEtlError as exc:
                self._not_estimable(f"outcome:{o.name}", str(exc))
        # each section is computed item by item; one that cannot be computed is recorded
        # with its reason and the others go on
        sections: list[tuple[str, list[Any], Any]] = [
            ("comparisons", spec.comparisons, lambda c: self._comparison(c, data)),
            ("cox_models", spec.cox_models, lambda m: self._cox_model(m, data)),
            ("sensitivity", spec.sensitivity, lambda s: self._sensitivity(s, data, analysis)),
        ]
        for key, items, compute in sections:
            self.out.results[key] = {}
            for item in items:
                try:
                    compute(item)
                except CohortEtlError as exc:
                    self._not_estimable(_section_name(key, item), str(exc))
        self._forest()
        self.out.results = json_safe(self.out.results, RESULT_DIGITS)
        return self.out

    # -- arms and matching --------------------------------------------------------------
    def _arms(self, data: pd.DataFrame) -> pd.DataFrame:
        arms = self.spec.arms
        assert arms is not None
        values = data[arms.column].astype(str)
        unknown = sorted(set(values) - {arms.treated, arms.control})
        if unknown:
            log.info("%s: rows with arm values %s are not compared", self.spec.name, unknown)
        data = data[values.isin([arms.treated, arms.control])].copy()
        data[TREAT] = (data[arms.column].astype(str) == arms.treated).astype(int)
        counts = {self._arm_label(v): int((data[TREAT] == v).sum()) for v in (1, 0)}
        self.out.results["cohort"]["arms_before_matching"] = counts
        return data.reset_index(drop=True)

    def _match(self, data: pd.DataFrame) -> pd.DataFrame:
        spec = self.spec
        m = spec.matching
        n1 = int(data[TREAT].sum())
        n0 = len(data) - n1
        info: dict[str, Any] = {"preset": m.preset, "n_before": {"treated": n1, "control": n0}}
        self.out.results["matching"] = info
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
            info["n_after"] = info["n_before"]
            return data.assign(set_id=0)
        covariates = [c for c in spec.covariates if data[c].nunique(dropna=False) > 1]
        constant = [c for c in spec.covariates if c not in covariates]
        if constant:
            log.warning(
                "%s: covariates constant in the cohort, left out of the PS model: %s",
                spec.name,
                ", ".join(constant),
            )
        try:
            got = match_arms(data, covariates, m, labels=(self._arm_label(1), self._arm_label(0)))
        except (CohortEtlError, np.linalg.LinAlgError) as exc:
            self._not_estimable("matching", f"propensity model / matching failed: {exc}")
            return data.iloc[0:0]
        info.update({k: v for k, v in got.info.items() if k != "balance"})
        if constant:
            info["constant_covariates_dropped"] = constant
        for flag in got.flags:
            self._not_estimable(flag["section"], flag["reason"])
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

    def _km_summary(self, km: KaplanMeier, o: TimeToEvent, n: int) -> dict[str, Any]:
        med = km.median()
        summary: dict[str, Any] = {
            "n": n,
            "events": float(km.n_events_),
            "median": {
                "time": med.time,
                "lower": med.lower,
                "upper": med.upper,
                "conf_type": o.conf_type,
                "reason": med.reason,
            },
        }
        spss = km.median_spss()
        summary["median_spss"] = {
            "time": spss.median,
            "se": spss.se,
            "lower": spss.lower,
            "upper": spss.upper,
            "reason": spss.reason,
        }
        if o.horizons_days:
            at = km.survival_at(o.horizons_days, extend=True)
            summary["at_horizons"] = at.to_dict(orient="records")
        return summary

    def _tte(self, o: TimeToEvent, data: pd.DataFrame) -> None:
        if data.empty:
            raise _Empty("no patients to analyse")
        t, e, code = time_to_event(data, o, self.cutoff)
        bad = ~np.isfinite(t) | (t < 0)
        if bad.any():
            self._not_estimable(
                f"outcome:{o.name}",
                f"{int(bad.sum())} patients with {o.event_date} or {o.censor_date} before "
                f"{o.start} (or missing {o.start}) were left out",
            )
        frame = data.loc[~bad].assign(_time=t[~bad], _event=e[~bad], _code=code[~bad])
        res: dict[str, Any] = {"type": "time_to_event", "label": o.label, "per_arm": {}}
        self.out.results["outcomes"][o.name] = res
        if o.horizons_days and frame["_time"].max() < max(o.horizons_days):
            self._not_estimable(
                f"outcome:{o.name}",
                f"horizon {max(o.horizons_days)} days is longer than any follow-up "
                f"(longest {frame['_time'].max():.0f} days); estimates there are carried "
                "forward from the last observed time",
            )
        risk_times = o.risk_times_days or _default_risk_times(frame["_time"].max())
        self.out.risk_times[o.name] = risk_times
        curves: dict[str, KMCurve] = {}
        for value, part in self._arm_groups(frame):
            label = self._arm_label(value) if self.spec.arms else o.label
            if part.empty:
                self._not_estimable(f"outcome:{o.name}", f"no patients in arm {label}")
                continue
            km = KaplanMeier(conf_type=o.conf_type).fit(part["_time"], part["_event"])
            summary = self._km_summary(km, o, len(part))
            fu = median_follow_up(part["_time"], part["_event"])
            summary["median_follow_up"] = {"time": fu.time, "lower": fu.lower, "upper": fu.upper}
            risk = km.number_at_risk(risk_times)
            summary["number_at_risk"] = risk.to_dict(orient="records")
            res["per_arm"][label] = summary
            curves[label] = KMCurve(label, km.survival_table(), [int(x) for x in risk["n_risk"]])
            if o.competing_date and o.horizons_days:
                aj = AalenJohansen().fit(part["_time"], part["_code"])
                if 1 in aj.causes_:
                    summary["cumulative_incidence"] = [
                        vars(x) for x in aj.incidence_at(o.horizons_days, cause=1)
                    ]
        self.out.km_curves[o.name] = curves
        self.out.tables[f"km_{o.name}"] = (
            pd.concat([c.table.assign(arm=k) for k, c in curves.items()], ignore_index=True)
            if curves
            else pd.DataFrame()
        )
        if self.spec.arms and len(curves) == 2:
            lr = logrank_test(frame["_time"], frame["_event"], frame[TREAT])
            res["logrank"] = logrank_dict(lr, detail=True)
            res["cox"] = self._cox_arm(frame)
            if "set_id" in frame and frame["set_id"].nunique() > 1:
                res["cox_robust_pairs"] = self._cox_arm(frame, cluster=frame["set_id"])
                res["cox_stratified_pairs"] = self._cox_arm(frame, strata=frame["set_id"])

    def _cox_arm(
        self, frame: pd.DataFrame, cluster: Any = None, strata: Any = None, label: str = ""
    ) -> dict[str, Any]:
        try:
            fit = CoxPH().fit(
                frame["_time"], frame["_event"], frame[[TREAT]], cluster=cluster, strata=strata
            )
        except CohortEtlError as exc:
            return {"estimable": False, "reason": str(exc)}
        return cox_dict(fit.result_)

    def _binary(self, o: Binary, data: pd.DataFrame) -> None:
        if data.empty:
            raise _Empty("no patients to analyse")
        y = binary_outcome(data, o, self.cutoff)
        res: dict[str, Any] = {"type": "binary", "label": o.label}
        self.out.results["outcomes"][o.name] = res
        if not self.spec.arms:
            ci = wilson_interval(int(y.sum()), len(y))
            res["overall"] = {
                "events": int(y.sum()),
                "n": len(y),
                "proportion": ci.estimate,
                "lower": ci.lower,
                "upper": ci.upper,
            }
            return
        t = data[TREAT].to_numpy()
        a, n1 = int(y[t == 1].sum()), int((t == 1).sum())
        c, n0 = int(y[t == 0].sum()), int((t == 0).sum())
        cmp = compare_proportions(a, n1, c, n0)
        res["per_arm"] = {
            self._arm_label(1): {"events": a, "n": n1, "risk": cmp.risk_1.estimate},
            self._arm_label(0): {"events": c, "n": n0, "risk": cmp.risk_0.estimate},
        }
        res.update(proportions_dict(cmp))
        table = np.array([[a, n1 - a], [c, n0 - c]])
        chosen = association_test(table)
        res["association_test"] = stat_test_dict(chosen)
        if cmp.reason:
            self._not_estimable(f"outcome:{o.name}", cmp.reason)

    # -- group comparisons (e.g. CR by salvage modality) ---------------------------------
    def _comparison(self, c: Any, data: pd.DataFrame) -> None:
        o = self.spec.outcome(c.outcome)
        levels = c.levels or sorted(data[c.by].dropna().astype(str).unique())
        part = data[data[c.by].astype(str).isin(levels)]
        if part.empty:
            raise _Empty(f"no patients with {c.by} in {levels}")
        group = part[c.by].astype(str).map(lambda v: c.level_labels.get(v, v))
        levels = [c.level_labels.get(v, v) for v in levels]
        res: dict[str, Any] = {"by": c.by, "outcome": c.outcome, "label": c.label, "levels": levels}
        self.out.results["comparisons"][c.name] = res
        if isinstance(o, Binary):
            y = binary_outcome(part, o, self.cutoff)
            rows = []
            for level in levels:
                yl = y[(group == level).to_numpy()]
                ci = wilson_interval(int(yl.sum()), len(yl)) if len(yl) else None
                rows.append(
                    {
                        "level": level,
                        "events": int(yl.sum()),
                        "n": len(yl),
                        "proportion": ci.estimate if ci else None,
                        "lower": ci.lower if ci else None,
                        "upper": ci.upper if ci else None,
                    }
                )
            res["per_level"] = rows
            table = np.array([[r["events"], r["n"] - r["events"]] for r in rows if r["n"] > 0])
            if len(table) < 2:
                raise _Empty(f"fewer than two levels of {c.by} have patients")
            res["chi_square"] = stat_test_dict(chi_square_test(table, correct=False))
            res["chi_square_yates"] = stat_test_dict(chi_square_test(table, correct=True))
            res["association_test"] = stat_test_dict(association_test(table))
            self.out.tables[f"comparison_{c.name}"] = pd.DataFrame(rows)
        else:
            t, e, _ = time_to_event(part, o, self.cutoff)
            ok = np.isfinite(t) & (t >= 0)
            lr = logrank_test(t[ok], e[ok], group.to_numpy()[ok])
            res["logrank"] = logrank_dict(lr)
            rows = []
            curves: dict[str, KMCurve] = {}
            risk_times = o.risk_times_days or _default_risk_times(float(t[ok].max()))
            for level in levels:
                m = ok & (group == level).to_numpy()
                if not m.any():
                    continue
                km = KaplanMeier(conf_type=o.conf_type).fit(t[m], e[m])
                med = km.median()
                rows.append(
                    {
                        "level": level,
                        "n": int(m.sum()),
                        "events": float(km.n_events_),
                        "median": med.time,
                        "lower": med.lower,
                        "upper": med.upper,
                    }
                )
                risk = km.number_at_risk(risk_times)
                curves[level] = KMCurve(
                    level, km.survival_table(), [int(x) for x in risk["n_risk"]]
                )
            res["per_level"] = rows
            self.out.km_curves[f"{o.name}_by_{c.by}"] = curves
            self.out.risk_times[f"{o.name}_by_{c.by}"] = risk_times
            self.out.tables[f"comparison_{c.name}"] = pd.DataFrame(rows)

    # -- multivariable Cox -----------------------------------------------------------------
    def _cox_model(self, m: Any, data: pd.DataFrame) -> None:
        from cohort_etl.matching.design import build_design

        o = self.spec.outcome(m.outcome)
        if not isinstance(o, TimeToEvent):
            raise SpecError(f"cox model {m.name!r}: outcome {o.name!r} is not time-to-event")
        t, e, _ = time_to_event(data, o, self.cutoff)
        keep = np.isfinite(t) & (t >= 0) & data[m.covariates].notna().all(axis=1).to_numpy()
        part = data.loc[keep]
        design = build_design(part, list(m.covariates))
        x = pd.DataFrame(design.matrix, columns=design.columns)
        fit = CoxPH().fit(t[keep], e[keep], x)
        summary = fit.result_.summary().reset_index()
        self.out.results["cox_models"][m.name] = {
            "label": m.label,
            "outcome": m.outcome,
            "n": fit.result_.n,
            "events": fit.result_.n_events,
            "dropped_missing": int((~keep).sum()),
            "coefficients": summary.to_dict(orient="records"),
            "lr_test": vars(fit.result_.lr_test),
            "wald_test": vars(fit.result_.wald_test),
        }
        self.out.tables[f"cox_{m.name}"] = summary

    # -- sensitivity analyses -----------------------------------------------------------
    def _sensitivity(self, s: Any, data: pd.DataFrame, matched: pd.DataFrame) -> None:
        o = self.spec.outcome(s.outcome)
        key = (
            f"{s.kind}_{s.outcome}"
            + (f"_day{s.landmark_day}" if s.landmark_day else "")
            + ("_adjusted" if s.adjust_for else "")
        )
        if not isinstance(o, TimeToEvent):
            raise SpecError(f"sensitivity {s.kind}: outcome {o.name!r} is not time-to-event")
        if s.kind in ("landmark", "time_varying", "naive_ever_treated") and not s.exposure_date:
            raise SpecError(f"sensitivity {s.kind}: exposure_date is required")
        t, e, _ = time_to_event(data, o, self.cutoff)
        ok = np.isfinite(t) & (t >= 0)
        frame = data.loc[ok].assign(_time=t[ok], _event=e[ok])
        res: dict[str, Any] = {"kind": s.kind, "outcome": s.outcome}
        if s.adjust_for:
            res["adjusted_for"] = list(s.adjust_for)
        if s.kind == "unmatched":
            fit = CoxPH().fit(frame["_time"], frame["_event"], self._design(frame, TREAT, s))
            res["cox"] = _hr(fit)
        else:
            start = _dates(frame, o.start)
            exp_days = (_dates(frame, s.exposure_date) - start).dt.days.to_numpy(dtype=float)
            frame = frame.assign(_exposure=exp_days, _ever=np.isfinite(exp_days).astype(int))
            if s.kind == "naive_ever_treated":
                fit = CoxPH().fit(frame["_time"], frame["_event"], self._design(frame, "_ever", s))
                res["cox"] = _hr(fit)
            elif s.kind == "landmark":
                assert s.landmark_day
                lm = landmark(
                    frame,
                    s.landmark_day,
                    time_col="_time",
                    event_col="_event",
                    exposure_time_col="_exposure",
                )
                n1 = int(lm["exposed"].sum())
                res.update({"landmark_day": s.landmark_day, "n": len(lm), "n_exposed": n1})
                if n1 == 0 or n1 == len(lm):
                    raise _Empty(f"landmark day {s.landmark_day}: one group is empty")
                fit = CoxPH().fit(lm["_time"], lm["_event"], self._design(lm, "exposed", s))
                res["cox"] = _hr(fit)
                lr = logrank_test(lm["_time"], lm["_event"], lm["exposed"])
                res["logrank_p"] = lr.p_value
            elif s.kind == "time_varying":
                frame = frame.assign(_time=np.maximum(frame["_time"], 0.5)).reset_index(drop=True)
                adjust = self._design(frame, "_time", s).drop(columns="_time")
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
                fit = time_varying_cox(
                    split,
                    id_col="person_id",
                    event_col="_event",
                    covariates=("exposed", *adjust.columns),
                )
                res["cox"] = _hr(fit)
                res["n_rows"] = len(split)
        self.out.results["sensitivity"][key] = res

    @staticmethod
    def _design(frame: pd.DataFrame, exposure: str, s: Any) -> pd.DataFrame:
        """The exposure first, then the adjustment covariates (categorical expanded)."""
        from cohort_etl.matching.design import build_design

        x = frame[[exposure]].astype(float).reset_index(drop=True)
        if not s.adjust_for:
            return x
        design = build_design(frame, list(s.adjust_for))
        return pd.concat([x, pd.DataFrame(design.matrix, columns=design.columns)], axis=1)

    def _forest(self) -> None:
        """Hazard ratios of every arm comparison (forest plot + hazard_ratios.csv) and the
        KM estimates at the horizons of every outcome (km_at_horizons.csv)."""
        rows = []
        for o in self.out.results.get("outcomes", {}).values():
            for key, analysis in (
                ("cox", "matched"),
                ("cox_robust_pairs", "matched, robust SE"),
                ("cox_stratified_pairs", "matched, stratified on pairs"),
            ):
                cox = o.get(key)
                if cox and cox.get("estimable"):
                    rows.append(
                        {
                            "label": f"{o['label']}: {analysis}",
                            "estimate": cox["hr"],
                            "lower": cox["lower"],
                            "upper": cox["upper"],
                            "p_value": cox["wald_p"],
                            "n": cox["n"],
                            "events": cox["events"],
                        }
                    )
        for key, sens in self.out.results.get("sensitivity", {}).items():
            cox = sens.get("cox")
            if cox and cox.get("estimable"):
                rows.append(
                    {
                        "label": key.replace("_", " "),
                        "estimate": cox["hr"],
                        "lower": cox["lower"],
                        "upper": cox["upper"],
                        "p_value": cox["wald_p"],
                        "n": cox["n"],
                        "events": cox["events"],
                    }
                )
        if rows:
            table = pd.DataFrame(rows)
            self.out.tables["hazard_ratios"] = table
            self.out.forest = table[~table["label"].str.contains("robust SE|stratified")]
        horizons = [
            {"outcome": name, "arm": arm, **row}
            for name, o in self.out.results.get("outcomes", {}).items()
            for arm, summary in o.get("per_arm", {}).items()
            for row in summary.get("at_horizons", [])
        ]
        if horizons:
            self.out.tables["km_at_horizons"] = pd.DataFrame(horizons)


def _section_name(key: str, item: Any) -> str:
    """Section label of a not-estimable entry, e.g. ``comparison:cr_by_site``."""
    if key == "sensitivity":
        return f"sensitivity:{item.kind}:{item.outcome}"
    return f"{'comparison' if key == 'comparisons' else 'cox'}:{item.name}"


class _Empty(CohortEtlError):
    """A section that has nothing to compute (reported, not raised to the user)."""


def _hr(fit: CoxPH) -> dict[str, Any]:
    return cox_dict(fit.result_)


def _default_risk_times(max_time: float) -> list[int]:
    """Round, evenly spaced times (days) covering the follow-up, 5 to 7 of them."""
    if not math.isfinite(max_time) or max_time <= 0:
        return [0]
    for step in (30, 90, 180, 365, 730):
        if max_time / step <= 6:
            return [int(i * step) for i in range(int(max_time // step) + 1)]
    return [int(i * 1826) for i in range(int(max_time // 1826) + 1)]
