"""The study report: headline, sections and files of one study.

:func:`write_outputs` writes what both doors of the engine produce: ``results.json``
(typed :class:`~cohort_etl.engine.results.StudyResults`, schema in
docs/results.schema.json), CSV tables, PNG figures, ``matched_data.csv`` and the
self-contained ``report.html``. :func:`headline` turns typed results into the report's
first table; :func:`write_failure` writes the folder of a study that could not run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohort_etl.designs import report as ttr
from cohort_etl.diagnostics import report as diag_report
from cohort_etl.engine.results import (
    ArmSurvival,
    BinaryResult,
    Flag,
    HeadlineRow,
    StudyResults,
    TimeToEventResult,
)
from cohort_etl.engine.study import StudyOutput, empty_results
from cohort_etl.matching.arms import TREAT
from cohort_etl.outcomes.summary import RESULT_FLOAT_FORMAT
from cohort_etl.report import figures
from cohort_etl.report.clinical import (
    attrition_labels,
    coefficient_label,
    duration,
    duration_range,
    level_label,
    stat_test_name,
    study_steps,
    table_one,
)
from cohort_etl.report.clinical import label as human_label
from cohort_etl.report.html import Report, Section, write
from cohort_etl.studies.spec import UNIT_DAYS, StudySpec, TimeToEvent


def _pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _p(p: float | None) -> str:
    """A P value to three significant digits (P = 0.00355, P = 0.0185, P = 0.25)."""
    if p is None:
        return "–"
    return "P < 0.0001" if p < 0.0001 else f"P = {p:.3g}"


def _ci(level: float | None) -> str:
    return f"{100 * (level or 0.95):g}% CI"


def _at_horizon(o: TimeToEvent, out: TimeToEventResult, arm: ArmSurvival, h: int) -> str | None:
    """The value at horizon ``h`` as the headline shows it; past the arm's follow-up
    it is not an estimate and says so."""
    row = next((r for r in arm.at_horizons if int(r.time) == h), None)
    if row is not None and row.beyond_follow_up:
        return f"not estimable: follow-up ends at day {row.follow_up_ends:.0f}"
    if o.competing_date:
        inc = next((r for r in arm.cumulative_incidence or [] if int(r.time) == h), None)
        if inc is None:
            return None
        return f"{_pct(inc.cif)} ({_pct(inc.lower)}–{_pct(inc.upper)})"
    if row is None:
        return None
    return f"{_pct(row.surv)} ({_pct(row.lower)}–{_pct(row.upper)})"


def _median_text(out: TimeToEventResult, arm: ArmSurvival, unit: str = "days") -> str:
    if out.median_ci == "spss":
        m = arm.median_spss
        if m.time is None:
            return duration(None)
        return (
            f"{duration(m.time, unit)} (95% CI {duration_range(m.lower, m.upper, unit)}; "
            "SPSS-style)"
        )
    med = arm.median
    if med.time is None:
        return duration(None)
    return (
        f"{duration(med.time, unit)} ({_ci(med.conf_level)} "
        f"{duration_range(med.lower, med.upper, unit)})"
    )


def _tte_lines(spec: StudySpec, o: TimeToEvent, out: TimeToEventResult) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    per_arm = out.per_arm
    if not spec.arms:  # one group: no arm label after each number
        per_arm = {"": next(iter(per_arm.values()))} if per_arm else {}
    for h in o.horizons_days:
        parts = []
        for label, arm in per_arm.items():
            text = _at_horizon(o, out, arm, h)
            if text:
                parts.append(f"{text} {label}".rstrip())
        years = h / 365.25
        when = f"{years:.0f}-year" if abs(years - round(years)) < 0.01 else f"day-{h}"
        what = (
            f"{when} cumulative incidence of {o.label} (Aalen-Johansen)"
            if o.competing_date
            else f"{when} {o.label} (Kaplan-Meier)"
        )
        if parts:
            lines.append((what, " vs ".join(parts)))
    cox = out.cox
    if cox is not None and cox.estimable:
        lr = out.logrank
        # with a competing event the Cox model censors it: a cause-specific hazard ratio
        kind = "cause-specific hazard ratio" if o.competing_date else "hazard ratio"
        lines.append(
            (
                f"{o.label}: {kind}",
                f"HR = {_num(cox.hr)}, {_ci(cox.conf_level)}: {_num(cox.lower)}–"
                f"{_num(cox.upper)}; log-rank {_p(lr.p_value if lr else None)} "
                f"(Wald {_p(cox.wald_p)})",
            )
        )
    fg = out.fine_gray
    if fg is not None:
        lines.append(
            (
                f"{o.label}: subdistribution hazard ratio (Fine-Gray)",
                f"SHR = {_num(fg.shr)}, 95% CI: {_num(fg.lower)}–{_num(fg.upper)}; {_p(fg.p)}",
            )
        )
    unit = spec.display_unit
    meds = [f"{_median_text(out, arm, unit)} {label}".rstrip() for label, arm in per_arm.items()]
    if meds and not o.competing_date:
        lines.append((f"Median {o.label}", "; ".join(meds)))
    fus = [
        f"{duration(arm.median_follow_up.time, unit)} {label}".rstrip()
        for label, arm in per_arm.items()
        if arm.median_follow_up is not None
    ]
    if fus:
        lines.append((f"Median follow-up ({o.label}, reverse KM)", "; ".join(fus)))
    return lines


def _binary_lines(label: str, out: BinaryResult) -> list[tuple[str, str]]:
    rd = out.risk_difference
    if out.per_arm and rd is not None and out.z_test is not None:
        risks = "; ".join(
            f"{_pct(a.risk)} {arm} ({a.events}/{a.n})" for arm, a in out.per_arm.items()
        )
        return [
            (
                label,
                f"{risks}; risk difference {_pct(rd.estimate)} "
                f"(95% CI {_pct(rd.lower)}–{_pct(rd.upper)}); {_p(out.z_test.p_value)}",
            )
        ]
    if out.overall is not None:
        ov = out.overall
        return [(label, f"{_pct(ov.proportion)} ({ov.events}/{ov.n})")]
    return []


def headline(spec: StudySpec, res: StudyResults) -> list[tuple[str, str]]:
    """Headline results in the form the abstracts use."""
    lines: list[tuple[str, str]] = []
    cohort, matching = res.cohort, res.matching
    if cohort is not None and cohort.arms_before_matching is not None:
        before = cohort.arms_before_matching
        lines.append(("Patients screened", "; ".join(f"{k}: {v}" for k, v in before.items())))
        if matching is not None and matching.n_after is not None:
            lines.append(
                (
                    "After propensity-score matching",
                    f"{matching.n_after.treated} vs {matching.n_after.control} "
                    f"(preset {matching.preset}; max |SMD| "
                    f"{_num(matching.max_abs_smd_after, 3)})",
                )
            )
    for o in spec.outcomes:
        out = res.outcomes.get(o.name)
        if isinstance(o, TimeToEvent) and isinstance(out, TimeToEventResult):
            lines += _tte_lines(spec, o, out)
        elif isinstance(out, BinaryResult):
            lines += _binary_lines(o.label or o.name, out)
    for name, c in res.comparisons.items():
        if c.proportions is not None and c.association_test:
            rates = "; ".join(
                f"{r.level} {_pct(r.proportion, 0)} ({r.events}/{r.n})" for r in c.proportions
            )
            # only the test the chooser picked; the others are in the comparison's table
            test = c.association_test
            lines.append(
                (c.label or name, f"{rates}; {stat_test_name(test.method)} {_p(test.p_value)}")
            )
        elif c.medians is not None and c.logrank is not None:
            level_medians = "; ".join(
                f"{r.level} {duration(r.median, spec.display_unit)}" for r in c.medians
            )
            lines.append(
                (c.label or name, f"median {level_medians}; log-rank {_p(c.logrank.p_value)}")
            )
    for name, m in res.cox_models.items():
        for row in m.coefficients:
            lines.append(
                (
                    f"{m.label or name}: {coefficient_label(row, spec.labels)}",
                    f"HR {_num(row.hr, 2)} ({_ci(m.conf_level)} {_num(row.lower, 2)}–"
                    f"{_num(row.upper, 2)}); {_p(row.p_value)}",
                )
            )
    lines += _diagnostics_lines(spec, res, lines)
    for key, s in res.sensitivity.items():
        if s.cox is not None and s.cox.estimable:
            lines.append(
                (
                    f"Sensitivity: {key.replace('_', ' ')}",
                    f"HR {_num(s.cox.hr)} ({_ci(s.cox.conf_level)} {_num(s.cox.lower)}–"
                    f"{_num(s.cox.upper)})",
                )
            )
    return lines


def _diagnostics_lines(
    spec: StudySpec, res: StudyResults, lines: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Mark the diagnosed HR line when its design fails (not hidden: marked), then one
    line per design's verdict and calibrated HR, and the matching-sensitivity range."""
    diag = res.diagnostics
    o = spec.diagnostics_outcome()
    if diag is None or o is None:
        return []
    # the arm HR line is the published (primary) design's; other designs mark their own
    primary = diag.designs.get("primary")
    for d in [primary] if primary is not None else []:
        if d.verdict == "fail" and d.outcome == o.name:
            key = f"{o.label}: hazard ratio"
            failed = ", ".join(diag_report.LABELS.get(f, f) for f in d.failed)
            for i, (k, v) in enumerate(lines):
                if k == key:
                    lines[i] = (k, f"{v} — FAILS DIAGNOSTICS ({d.design}): {failed}")
    extra = diag_report.headline_lines(diag)
    out = res.outcomes.get(o.name)
    if isinstance(out, TimeToEventResult) and out.rmst is not None:
        r = out.rmst
        extra.append(
            (
                f"{o.label}: RMST difference at {r.tau:g} days",
                f"{_num(r.difference, 1)} days ({r.arm_1} - {r.arm_0}; 95% CI "
                f"{_num(r.difference_lower, 1)}–{_num(r.difference_upper, 1)})",
            )
        )
    for d in diag.designs.values():
        if d.e_value is not None:
            extra.append(
                (
                    f"E-value of the {o.label} HR ({d.design})",
                    f"{_num(d.e_value.point)} (CI limit {_num(d.e_value.limit)})",
                )
            )
    return extra


def _outcome_extras_table(spec: StudySpec, res: StudyResults) -> pd.DataFrame:
    """Per time-to-event outcome: RMST difference, PH test, Fine-Gray beside the Cox HR."""
    rows = []
    for o in spec.outcomes:
        out = res.outcomes.get(o.name)
        if not isinstance(out, TimeToEventResult) or out.cox is None:
            continue
        r, ph, fg = out.rmst, out.ph_test, out.fine_gray
        competing = isinstance(o, TimeToEvent) and bool(o.competing_date)
        rows.append(
            {
                "outcome": o.label or o.name,
                "Cox HR (95% CI)": f"{_num(out.cox.hr)} ({_num(out.cox.lower)}–"
                f"{_num(out.cox.upper)})" + (" cause-specific" if competing else ""),
                "Fine-Gray SHR (95% CI)": f"{_num(fg.shr)} ({_num(fg.lower)}–{_num(fg.upper)})"
                if fg is not None
                else "–",
                "RMST difference, days (95% CI)": f"{_num(r.difference, 1)} "
                f"({_num(r.difference_lower, 1)}–{_num(r.difference_upper, 1)}) at {r.tau:g}"
                if r is not None
                else "–",
                "PH test (cox.zph global p)": _p(ph.global_p) if ph is not None else "–",
            }
        )
    return pd.DataFrame(rows)


def _diagnostics_section(res: StudyResults, fig_dir: Path) -> Section:
    """The diagnostics panel: verdicts, calibration, controls, matching sensitivity."""
    diag = res.diagnostics
    assert diag is not None
    sec = Section("Study diagnostics")
    published, emulation = diag.designs.get("primary"), diag.designs.get("target_trial")
    if published is not None and emulation is not None:
        sec.paragraphs.append(diag_report.reading_sentence(published, emulation))
        sec.tables.append(
            (
                "Diagnostics beside each other: the target-trial estimate and the published design",
                diag_report.side_by_side_table([emulation, published]),
            )
        )
        if emulation.control_variance:
            sec.paragraphs.append(
                f"Variance of the {emulation.design} control estimates: "
                f"{emulation.control_variance}. Its headline estimate keeps its own "
                f"({emulation.estimate_variance}); on this estimate the two SEs of the log HR "
                f"are {_num(emulation.estimate_se_control_variance, 3)} (robust) and "
                f"{_num(emulation.estimate_se, 3)} (headline)."
            )
    for key, d in diag.designs.items():
        failed = ", ".join(diag_report.LABELS.get(f, f) for f in d.failed)
        sec.paragraphs.append(
            f"{d.design}, outcome {d.outcome}: {d.verdict.upper()}"
            + (f" ({failed})" if failed else "")
            + f". Negative controls estimable: {d.negative_controls_estimable} of "
            f"{d.negative_controls}; positive controls: {d.positive_controls_estimable} of "
            f"{d.positive_controls}. Thresholds: OHDSI CohortMethod defaults unless the spec "
            "overrides them."
        )
        sec.tables.append((f"Diagnostics: {d.design}", diag_report.verdict_table(d)))
        if d.null is not None:
            sec.paragraphs.append(
                f"Empirical null from {d.null.n_controls} negative controls: mean "
                f"{d.null.mean:.3f}, sd {d.null.sd:.3f} (log HR); EASE {_num(d.ease, 3)}. "
                + (
                    f"Systematic error model from {d.error_model.source}."
                    if d.error_model is not None
                    else ""
                )
            )
        cal = diag_report.calibration_table(d)
        if not cal.empty:
            sec.tables.append((f"Calibrated estimate: {d.design}", cal))
        fig = diag_report.calibration_figure(d, fig_dir / f"calibration_{key}.png")
        if fig is not None:
            sec.figures.append(
                (f"Controls and the empirical null (calibration plot): {d.design}", fig)
            )
        if d.controls:
            sec.tables.append((f"Control outcomes: {d.design}", diag_report.controls_table(d)))
    ms = diag.matching_sensitivity
    if ms is not None:
        fig = diag_report.sensitivity_figure(ms, fig_dir / "matching_sensitivity.png")
        if fig is not None:
            sec.figures.append(("Matching sensitivity: seeds x calipers and presets", fig))
        sec.tables.append(
            (
                f"Matching sensitivity ({ms.outcome}): HR from {_num(ms.hr_min)} to "
                f"{_num(ms.hr_max)}",
                diag_report.sensitivity_table(ms),
            )
        )
    return sec


def _matching_section(spec: StudySpec, result: StudyOutput, fig_dir: Path) -> Section:
    sec = Section("Propensity-score matching")
    info = result.results.matching
    if result.balance is not None and info is not None:
        pm = info.propensity_model
        n_after = info.n_after
        sec.paragraphs.append(
            f"Preset {info.preset}; PS model AUC {_num(pm.auc if pm else None)}, "
            f"equipoise {_pct(pm.equipoise if pm else None)}. Matched "
            f"{n_after.treated if n_after else '–'} treated with "
            f"{n_after.control if n_after else '–'} controls."
        )
        bal = result.balance[result.balance["covariate"] != "distance"].copy()
        bal["covariate"] = _balance_labels(bal, spec)
        sec.figures.append(
            (
                "Absolute SMD before and after matching",
                figures.love_plot(bal, fig_dir / "love_plot.png"),
            )
        )
        if result.ps is not None and spec.arms:
            labels: dict[object, str] = {
                1: spec.arms.label(spec.arms.treated),
                0: spec.arms.label(spec.arms.control),
            }
            sec.figures.append(
                (
                    "Propensity score distributions",
                    figures.ps_distribution(
                        result.ps, fig_dir / "ps_distribution.png", labels=labels
                    ),
                )
            )
        if result.compared is not None and result.matched_data is not None and spec.arms:
            compared = result.compared
            counts = result.matched_data["person_id"].value_counts()
            weights = compared["person_id"].map(counts).fillna(0).to_numpy(float)
            used = [c for c in spec.covariates if c not in (info.covariates_dropped or [])]
            t1 = table_one(
                compared,
                compared[TREAT].to_numpy() == 1,
                used,
                weights,
                categorical=[c for c in spec.categorical if c in used],
                arm_labels=(spec.arms.label(spec.arms.treated), spec.arms.label(spec.arms.control)),
                labels=spec.labels,
                smd=result.balance,
            )
            sec.tables.append(
                ("Table 1: baseline characteristics, n (%) or mean (SD), and SMDs", t1)
            )
        cols = [
            "covariate",
            "mean_treated_before",
            "mean_control_before",
            "smd_before",
            "mean_treated_after",
            "mean_control_after",
            "smd_after",
        ]
        detail = result.balance[cols].copy()
        detail["covariate"] = _balance_labels(result.balance, spec)
        sec.tables.append(("Covariate balance: means (proportions) and SMDs", detail))
    else:
        reasons = [f.reason for f in result.results.not_estimable if f.section == "matching"]
        sec.empty_reason = reasons[0] if reasons else "matching was not run"
    return sec


def _concept_set_section(spec: StudySpec, res: StudyResults) -> Section:
    """The columns derived from concept sets: definition, persons with a record, SMDs,
    and (run door) the set's registry status; a draft set is flagged."""
    sources = {c.name: c for c in (res.provenance.concept_sets or [])} if res.provenance else {}
    rows = []
    for c in res.concept_set_columns:
        src = sources.get(c.concept_set)
        rows.append(
            {
                "column": human_label(c.column, spec.labels),
                "concept set": c.concept_set,
                "registry status": src.status if src else "",
                "use": "covariate" if c.kind == "covariate" else "outcome date",
                "definition": c.definition,
                "persons": c.persons,
                "with a record": (
                    f"< {spec.min_cell_count}" if c.suppressed else c.persons_with_record
                ),
                "SMD before": _num(c.smd_before),
                "SMD after": _num(c.smd_after),
            }
        )
    drafts = sorted({c for c, s in sources.items() if s.status == "draft"})
    return Section(
        "Concept-set covariates and outcomes",
        paragraphs=[
            "Columns computed from concept sets (any record in the window / first record "
            "after the anchor), from the build's concept set events of every CDM domain."
        ],
        tables=[("", pd.DataFrame(rows))],
        warning=(
            f"Draft concept set(s) not yet reviewed (concept_sets/registry.csv): "
            f"{', '.join(drafts)}"
            if drafts
            else None
        ),
    )


def _balance_labels(balance: pd.DataFrame, spec: StudySpec) -> list[str]:
    """Human labels of balance rows (the PS row is the propensity score)."""
    out = []
    for row in balance.itertuples(index=False):
        level = getattr(row, "level", None)
        if isinstance(level, str) and level:
            out.append(level_label(str(row.variable), level, spec.labels))
        else:
            out.append(human_label(str(row.covariate), spec.labels))
    return out


def _table_one_section(spec: StudySpec, result: StudyOutput) -> Section | None:
    """Table 1 of a study without arms (``table_one`` in the spec), by a group column."""
    t1 = spec.table_one
    data = result.matched_data
    if t1 is None or data is None or data.empty:
        return None
    if t1.by:
        levels = t1.levels or sorted(data[t1.by].dropna().astype(str).unique())
        if len(levels) != 2:
            return Section(
                "Table 1: baseline characteristics",
                empty_reason=f"Table 1 compares two groups; {t1.by} has levels {levels}",
            )
        data = data[data[t1.by].astype(str).isin(levels)]
        first = data[t1.by].astype(str).to_numpy() == levels[0]
        names = tuple(level_label(t1.by, lv, spec.labels).split(": ", 1)[1] for lv in levels)
        arm_labels = (
            f"{names[0]} (n = {int(first.sum())})",
            f"{names[1]} (n = {int((~first).sum())})",
        )
    else:
        first = np.ones(len(data), dtype=bool)
        arm_labels = ("All patients", "")
    table = table_one(
        data, first, t1.covariates, categorical=t1.categorical, arm_labels=arm_labels,
        labels=spec.labels,
    )  # fmt: skip
    table.columns = [str(c).replace(", before matching", "") for c in table.columns]
    if not t1.by:
        table = table[[c for c in table.columns if c]]
    return Section(
        "Table 1: baseline characteristics",
        paragraphs=["n (%) for yes/no characteristics and categories; mean (SD) for numbers."],
        tables=[("Table 1: baseline characteristics, n (%) or mean (SD)", table)],
    )


def _detail_section(spec: StudySpec, res: StudyResults, name: str, table: pd.DataFrame) -> Section:
    """A comparison's or Cox model's full table, as a reader wants it: times in the
    display unit, every test of a comparison, each Cox term with its reference level."""
    shown = table.copy()
    unit = spec.display_unit
    if name.startswith("comparison_"):
        key = name.removeprefix("comparison_")
        c = res.comparisons.get(key)
        title = (c.label if c and c.label else key).strip()
        if c is not None and c.medians is not None:
            for col in ("median", "lower", "upper"):
                if col in shown:
                    shown[col] = [duration(v, unit, "not reached") for v in shown[col]]
        tests: dict[str, str] = {}
        if c is not None:
            for t in (c.chi_square, c.chi_square_yates, c.association_test):
                if t is not None:
                    tests[t.method] = f"{stat_test_name(t.method)} {_p(t.p_value)}"
        paragraphs = [f"Tests: {'; '.join(tests.values())}."] if tests else []
        if c is not None and c.association_test is not None and c.association_test.reason:
            paragraphs.append(f"The headline shows: {c.association_test.reason}.")
        return Section(f"Comparison: {title}", paragraphs=paragraphs, tables=[("", shown)])
    key = name.removeprefix("cox_")
    m = res.cox_models.get(key)
    if m is not None and len(m.coefficients) == len(shown):
        shown.insert(0, "term", [coefficient_label(r, spec.labels) for r in m.coefficients])
    title = m.label if m and m.label else key
    return Section(f"Cox model: {title}", tables=[("", shown)])


def _flag_sections(title: str, flags: list[Flag]) -> list[Section]:
    """One section per flagged report section, listing every reason given for it."""
    by_section: dict[str, list[str]] = {}
    for f in flags:
        by_section.setdefault(f.section, []).append(f.reason)
    return [
        Section(f"{title}: {section}", empty_reason="; ".join(reasons))
        for section, reasons in by_section.items()
    ]


def write_outputs(
    spec: StudySpec,
    result: StudyOutput,
    out_dir: Path,
    manifest: dict[str, Any],
    analysis_dataset: pd.DataFrame | None = None,
    truth: dict[str, str] | None = None,
) -> dict[str, Path]:
    """Write everything for one study into ``out_dir``; return the paths written.

    ``analysis_dataset`` (the rows the engine read; ``run`` passes the mart) is written
    as analysis_dataset.csv so that ``cohort-etl analyze`` can rerun the study on it.
    ``truth`` (the synthetic generator's ``synthetic_truth.parameters``) adds the
    target trial's "estimate vs known truth" table.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    tables_dir = out_dir / "tables"
    fig_dir = out_dir / "figures"
    tables_dir.mkdir(exist_ok=True)
    fig_dir.mkdir(exist_ok=True)
    paths: dict[str, Path] = {}
    res = result.results
    published_lines = headline(spec, res)
    lead: list[tuple[str, str]] = []
    if res.target_trial is not None:
        lead = ttr.headline_rows(res.target_trial) + [_published_summary(res, published_lines)]
        emulation = res.diagnostics.designs.get("target_trial") if res.diagnostics else None
        if emulation is not None:
            lead = diag_report.mark_headline(lead, emulation, "(target trial)")
    res.headline = [HeadlineRow(result=k, estimate=v) for k, v in lead + published_lines]
    paths["results"] = res.write(out_dir / "results.json")
    for name, table in result.tables.items():
        path = tables_dir / f"{name}.csv"
        table.to_csv(path, index=False, float_format=RESULT_FLOAT_FORMAT)
        paths[f"table:{name}"] = path
    if analysis_dataset is not None:
        # full precision: analyze must read back exactly what run analysed
        path = out_dir / "analysis_dataset.csv"
        analysis_dataset.to_csv(path, index=False)
        paths["analysis_dataset"] = path
    if result.matched_data is not None:
        path = out_dir / "matched_data.csv"
        result.matched_data.to_csv(path, index=False, float_format=RESULT_FLOAT_FORMAT)
        paths["matched_data"] = path

    sections: list[Section] = []
    km_sections = _km_sections(spec, result, fig_dir, paths)
    tt = res.target_trial
    if tt is not None and result.target_trial_curves and result.target_trial_at_risk:
        # the strategy question's answer first; the published design after it, warned
        tt_spec = spec.target_trial
        assert tt_spec is not None
        risk_times = tt_spec.risk_times_days or [0, *tt_spec.horizons_days]
        tt_sections, fig = ttr.sections(
            tt,
            result.target_trial_curves,
            result.target_trial_at_risk,
            risk_times,
            fig_dir,
            spec.min_cell_count,
            truth,
        )
        paths["figure:target_trial_os"] = fig
        sections.extend(tt_sections)
        published, warning = ttr.published_section(tt, published_lines)
        published.warning = warning
        if km_sections:
            published.figures.extend(km_sections[0].figures)
        sections.append(published)
        landmark = ttr.landmark_section(tt)
    else:
        landmark = None
        sections.extend(km_sections[:1])  # the primary outcome's curves below the headline
    if "attrition" in result.tables:
        att = attrition_labels(result.tables["attrition"])
        fig = figures.attrition_flow(att, fig_dir / "attrition.png", title="Cohort attrition")
        tables = [("Cohort attrition: what each rule removed", att)]
        if res.cohort is not None:
            tables.append(
                (
                    "From the analysis data to the analysed rows",
                    study_steps(spec.include, res.cohort),
                )
            )
        sections.append(
            Section("Who was included", figures=[("Attrition flow", fig)], tables=tables)
        )
    if spec.arms:
        sections.append(_matching_section(spec, result, fig_dir))
    if res.concept_set_columns:
        sections.append(_concept_set_section(spec, res))
    if res.diagnostics is not None:
        sections.append(_diagnostics_section(res, fig_dir))
    extras = _outcome_extras_table(spec, res)
    if spec.arms and not extras.empty:
        sections.append(
            Section(
                "Time-to-event outcomes: RMST, proportional hazards, competing risks",
                tables=[("", extras)],
            )
        )
    t1_section = _table_one_section(spec, result)
    if t1_section is not None:
        sections.append(t1_section)
    sections.extend(km_sections[1:])
    if landmark is not None:
        sections.append(landmark)
    if result.forest is not None:
        fig = figures.forest_plot(result.forest, fig_dir / "forest.png")
        sections.append(
            Section(
                "Hazard ratios: primary and sensitivity analyses",
                figures=[("Forest plot", fig)],
                tables=[("", result.forest)],
            )
        )
    for name, table in result.tables.items():
        if name.startswith(("comparison_", "cox_")):
            sections.append(_detail_section(spec, res, name, table))
    sections += _flag_sections("Warning", res.warnings)
    sections += _flag_sections("Not estimable", res.not_estimable)
    if res.provenance is not None and res.provenance.data_quality is not None:
        sections.append(data_quality_section(res.provenance.data_quality))

    report = Report(
        title=res.title,
        subtitle=_subtitle(spec, manifest),
        headline=lead or published_lines,
        sections=sections,
        footer=f"cohort-etl {manifest.get('package_version', '')}; git {manifest.get('git_revision', '')}",
    )
    paths["report"] = write(report, out_dir / "report.html")
    paths["manifest"] = out_dir / "manifest.json"
    paths["manifest"].write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return paths


def data_quality_section(dq: Any) -> Section:
    """The source CDM's data-quality warnings and the rows each cleaning rule dropped."""
    findings = pd.DataFrame(
        [
            {
                "severity": f.severity,
                "table": f.table,
                "column": f.column or "",
                "check": f.check,
                "rows": f.count,
                "finding": f.message,
                "example ids": ", ".join(str(i) for i in f.example_ids),
            }
            for f in dq.findings
        ]
    )
    cleaning = pd.DataFrame(
        [
            {"rule": c.rule, "table": c.table, "rows": c.rows, "action": c.action}
            for c in dq.cleaning_rules
        ]
    )
    paragraphs = [
        f"Checks of the source CDM ({dq.cdm_schema}) before the build (cohort-etl check): "
        f"{len(dq.findings)} warning(s); errors would have stopped the run."
    ]
    if dq.options.get("accept_incomplete_vocabulary"):
        paragraphs.append(
            "Run with --accept-incomplete-vocabulary: an empty concept_ancestor or "
            "concept_relationship was accepted, so descendants or mapped source codes may "
            "be missing from the concept sets and the cohorts smaller than they should be."
        )
    tables = []
    if not findings.empty:
        tables.append(("Warnings", findings))
    if not cleaning.empty:
        tables.append(
            ("Rows of each CDM table the staging cleaning rules drop or repair", cleaning)
        )
    return Section("Data quality", paragraphs=paragraphs, tables=tables)


def _published_summary(
    res: StudyResults, published_lines: list[tuple[str, str]]
) -> tuple[str, str]:
    """One headline row pointing to the published design's (biased) hazard ratio, with
    the diagnostics verdict when its headline line carries one."""
    hr = next(
        (
            o.cox
            for o in res.outcomes.values()
            if isinstance(o, TimeToEventResult) and o.cox is not None and o.cox.estimable
        ),
        None,
    )
    text = "see below"
    if hr is not None:
        text = f"HR = {_num(hr.hr)} ({_num(hr.lower)}–{_num(hr.upper)})"
    verdict = next(
        (v[v.index("FAILS DIAGNOSTICS") :] for _, v in published_lines if "FAILS DIAGNOSTICS" in v),
        None,
    )
    return (
        "As published (TriNetX design)",
        f"{text}: biased by immortal time; see the warning below, do not use as the effect"
        + (f" — {verdict}" if verdict else ""),
    )


def _subtitle(spec: StudySpec, manifest: dict[str, Any]) -> str:
    cutoff = f" · data cut-off {spec.data_cutoff.isoformat()}" if spec.data_cutoff else ""
    where = (
        f"profile {manifest['profile']}"
        if "profile" in manifest
        else f"data {manifest.get('data')}"
    )
    return f"Study {spec.name}{cutoff} · {where}"


def _km_sections(
    spec: StudySpec, result: StudyOutput, fig_dir: Path, paths: dict[str, Path]
) -> list[Section]:
    sections: list[Section] = []
    for cs in result.curves:
        if not cs.curves:
            continue
        risk_table = {k: _suppress(c.risk, spec.min_cell_count) for k, c in cs.curves.items()}
        if cs.incidence:
            # a competing event: cumulative incidence, not a "survival probability"
            fig = figures.km_plot(
                {k: t.rename(columns={"cif": "surv"}) for k, t in cs.incidence.items()},
                fig_dir / f"{cs.name}.png",
                title=cs.title,
                risk_times=cs.risk_times,
                risk_table=risk_table,
                time_unit=spec.display_unit,
                time_scale=UNIT_DAYS[spec.display_unit],
                ylabel="Cumulative incidence",
                start=0.0,
            )
            paths[f"figure:{cs.name}"] = fig
            sections.append(
                Section(
                    f"Cumulative incidence: {cs.title}",
                    figures=[
                        (
                            "Cumulative incidence (Aalen-Johansen, competing event accounted "
                            "for) with 95% CI and numbers at risk",
                            fig,
                        )
                    ],
                )
            )
            continue
        fig = figures.km_plot(
            {k: c.table for k, c in cs.curves.items()},
            fig_dir / f"{cs.name}.png",
            title=cs.title,
            risk_times=cs.risk_times,
            risk_table=risk_table,
            time_unit=spec.display_unit,
            time_scale=UNIT_DAYS[spec.display_unit],
        )
        paths[f"figure:{cs.name}"] = fig
        sections.append(
            Section(
                f"Kaplan-Meier: {cs.title}",
                figures=[("Kaplan-Meier estimate with 95% CI and numbers at risk", fig)],
            )
        )
    return sections


def write_failure(
    spec: StudySpec, reason: str, out_dir: Path, manifest: dict[str, Any]
) -> StudyResults:
    """A study that could not run: results.json and report.html say why, nothing else."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = empty_results(
        spec, error=reason, not_estimable=[Flag(section="study", reason=reason)]
    )
    results.write(out_dir / "results.json")
    report = Report(
        title=results.title,
        subtitle=_subtitle(spec, manifest),
        headline=[("Study not run", reason)],
        sections=[Section("Why this report is empty", empty_reason=reason)],
    )
    write(report, out_dir / "report.html")
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return results


def _suppress(counts: list[int], min_cell: int) -> list[int | str]:
    return [f"<{min_cell}" if 0 < c < min_cell else c for c in counts]
