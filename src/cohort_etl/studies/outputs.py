"""Write a study's outputs: results.json, CSV tables, the person-level analysis dataset,
PNG figures and the self-contained report.html."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from cohort_etl.outcomes.summary import RESULT_FLOAT_FORMAT
from cohort_etl.report import figures
from cohort_etl.report.html import Report, Section, write
from cohort_etl.studies.engine import StudyResult
from cohort_etl.studies.spec import Binary, StudySpec, TimeToEvent


def _pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _p(p: float | None) -> str:
    if p is None:
        return "–"
    return "P < 0.0001" if p < 0.0001 else f"P = {p:.4f}"


def _days(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.0f} days"


def _horizon_surv(arm: dict[str, Any], horizon: int) -> dict[str, Any] | None:
    for row in arm.get("at_horizons", []):
        if int(row["time"]) == horizon:
            return dict(row)
    return None


def headline(spec: StudySpec, result: StudyResult) -> list[tuple[str, str]]:
    """Headline results in the form the abstracts use."""
    res = result.results
    lines: list[tuple[str, str]] = []
    cohort = res.get("cohort", {})
    if "arms_before_matching" in cohort:
        before = cohort["arms_before_matching"]
        lines.append(("Patients screened", "; ".join(f"{k}: {v}" for k, v in before.items())))
        after = res.get("matching", {}).get("n_after")
        if after:
            lines.append(
                (
                    "After propensity-score matching",
                    f"{after['treated']} vs {after['control']} "
                    f"(preset {res['matching']['preset']}; max |SMD| "
                    f"{_num(res['matching'].get('max_abs_smd_after'), 3)})",
                )
            )
    for o in spec.outcomes:
        out = res.get("outcomes", {}).get(o.name)
        if not out:
            continue
        per_arm = out.get("per_arm", {})
        if not spec.arms:  # one group: no arm label after each number
            per_arm = {"": next(iter(per_arm.values()))} if per_arm else {}
        if isinstance(o, TimeToEvent):
            for h in o.horizons_days:
                parts = []
                for label, arm in per_arm.items():
                    if o.competing_date:
                        row = next(
                            (r for r in arm.get("cumulative_incidence", []) if int(r["time"]) == h),
                            None,
                        )
                        if row:
                            parts.append(
                                f"{_pct(row['cif'])} ({_pct(row['lower'])}–{_pct(row['upper'])}) "
                                f"{label}".rstrip()
                            )
                        continue
                    row = _horizon_surv(arm, h)
                    if row:
                        parts.append(
                            f"{_pct(row['surv'])} ({_pct(row['lower'])}–{_pct(row['upper'])}) "
                            f"{label}".rstrip()
                        )
                years = h / 365.25
                when = f"{years:.0f}-year" if abs(years - round(years)) < 0.01 else f"day-{h}"
                what = (
                    f"{when} cumulative incidence of {o.label} (Aalen-Johansen)"
                    if o.competing_date
                    else f"{when} {o.label} (Kaplan-Meier)"
                )
                if parts:
                    lines.append((what, " vs ".join(parts)))
            cox = out.get("cox")
            if cox and cox.get("estimable"):
                lr = out.get("logrank", {})
                lines.append(
                    (
                        f"{o.label}: hazard ratio",
                        f"HR = {_num(cox['hr'])}, 95% CI: {_num(cox['lower'])}–"
                        f"{_num(cox['upper'])}; log-rank {_p(lr.get('p_value'))} "
                        f"(Wald {_p(cox['wald_p'])})",
                    )
                )
            meds = [
                f"{_days(arm['median']['time'])} {label}".rstrip()
                + (
                    f" (95% CI {_days(arm['median']['lower'])}–{_days(arm['median']['upper'])})"
                    if arm["median"]["time"] is not None
                    else ""
                )
                for label, arm in per_arm.items()
            ]
            if meds:
                lines.append((f"Median {o.label}", "; ".join(meds)))
            fus = [
                f"{_days(arm['median_follow_up']['time'])} {label}"
                for label, arm in per_arm.items()
                if "median_follow_up" in arm
            ]
            if fus and spec.arms:
                lines.append((f"Median follow-up ({o.label}, reverse KM)", "; ".join(fus)))
            if not spec.arms and per_arm:
                arm = next(iter(per_arm.values()))
                spss = arm.get("median_spss", {})
                if spss.get("time") is not None:
                    lines.append(
                        (
                            f"Median {o.label} (SPSS-style CI)",
                            f"{spss['time']:.0f} days (95% CI {_num(spss['lower'], 0)}–"
                            f"{_num(spss['upper'], 0)})",
                        )
                    )
        elif isinstance(o, Binary) and "risk_difference" in out:
            rd = out["risk_difference"]
            risks = "; ".join(
                f"{_pct(a['risk'])} {label} ({a['events']}/{a['n']})"
                for label, a in per_arm.items()
            )
            lines.append(
                (
                    o.label,
                    f"{risks}; risk difference {_pct(rd['estimate'])} "
                    f"(95% CI {_pct(rd['lower'])}–{_pct(rd['upper'])}); "
                    f"{_p(out['z_test']['p_value'])}",
                )
            )
        elif isinstance(o, Binary) and "overall" in out:
            ov = out["overall"]
            lines.append((o.label, f"{_pct(ov['proportion'])} ({ov['events']}/{ov['n']})"))
    for name, c in res.get("comparisons", {}).items():
        if "chi_square" in c:
            rates = "; ".join(
                f"{r['level']} {_pct(r['proportion'], 0)} ({r['events']}/{r['n']})"
                for r in c["per_level"]
            )
            test = c["chi_square"]
            lines.append(
                (
                    c.get("label") or name,
                    f"{rates}; Pearson chi-square {_p(test['p_value'])}; "
                    f"{c['association_test']['method']} {_p(c['association_test']['p_value'])}",
                )
            )
        elif "logrank" in c:
            level_medians = "; ".join(f"{r['level']} {_days(r['median'])}" for r in c["per_level"])
            lines.append(
                (
                    c.get("label") or name,
                    f"median {level_medians}; log-rank {_p(c['logrank']['p_value'])}",
                )
            )
    for name, m in res.get("cox_models", {}).items():
        for row in m["coefficients"]:
            lines.append(
                (
                    f"{m.get('label') or name}: {row['covariate']}",
                    f"HR {_num(row['exp(coef)'], 2)} (95% CI {_num(row['lower 95%'], 2)}–"
                    f"{_num(row['upper 95%'], 2)}); {_p(row['p'])}",
                )
            )
    for key, s in res.get("sensitivity", {}).items():
        cox = s.get("cox")
        if cox and cox.get("estimable"):
            lines.append(
                (
                    f"Sensitivity: {key.replace('_', ' ')}",
                    f"HR {_num(cox['hr'])} (95% CI {_num(cox['lower'])}–{_num(cox['upper'])})",
                )
            )
    return lines


def write_outputs(
    spec: StudySpec, result: StudyResult, out_dir: Path, manifest: dict[str, Any]
) -> dict[str, Path]:
    """Write everything for one study into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tables_dir = out_dir / "tables"
    fig_dir = out_dir / "figures"
    tables_dir.mkdir(exist_ok=True)
    fig_dir.mkdir(exist_ok=True)
    paths: dict[str, Path] = {}
    result.results["headline"] = [{"result": k, "estimate": v} for k, v in headline(spec, result)]
    paths["results"] = out_dir / "results.json"
    paths["results"].write_text(json.dumps(result.results, indent=2, sort_keys=True) + "\n")
    for name, table in result.tables.items():
        path = tables_dir / f"{name}.csv"
        table.to_csv(path, index=False, float_format=RESULT_FLOAT_FORMAT)
        paths[f"table:{name}"] = path
    if result.analysis_data is not None:
        path = out_dir / "analysis_dataset.csv"
        result.analysis_data.to_csv(path, index=False, float_format=RESULT_FLOAT_FORMAT)
        paths["analysis_dataset"] = path

    sections: list[Section] = []
    km_sections = _km_sections(spec, result, fig_dir, paths)
    sections.extend(km_sections[:1])  # the primary outcome's curves right below the headline
    if "attrition" in result.tables:
        att = result.tables["attrition"]
        fig = figures.attrition_flow(att, fig_dir / "attrition.png", title="Cohort attrition")
        sections.append(
            Section(
                "Who was included", figures=[("Attrition flow", fig)], tables=[("Attrition", att)]
            )
        )
    match_sec = Section("Propensity-score matching")
    if result.balance is not None:
        info = result.results.get("matching", {})
        pm = info.get("propensity_model", {})
        match_sec.paragraphs.append(
            f"Preset {info.get('preset')}; PS model AUC {_num(pm.get('auc'))}, "
            f"equipoise {_pct(pm.get('equipoise'))}. Matched "
            f"{info.get('n_after', {}).get('treated')} treated with "
            f"{info.get('n_after', {}).get('control')} controls."
        )
        bal = result.balance[result.balance["covariate"] != "distance"]
        match_sec.figures.append(
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
            match_sec.figures.append(
                (
                    "Propensity score distributions",
                    figures.ps_distribution(
                        result.ps, fig_dir / "ps_distribution.png", labels=labels
                    ),
                )
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
        match_sec.tables.append(
            ("Table 1: baseline characteristics and SMDs", result.balance[cols])
        )
    elif spec.arms:
        match_sec.empty_reason = result.messages.get("matching", "matching was not run")
    if spec.arms:
        sections.append(match_sec)

    sections.extend(km_sections[1:])
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
            sections.append(Section(name.replace("_", " ").capitalize(), tables=[("", table)]))
    for section, reason in result.messages.items():
        sections.append(Section(f"Not estimable: {section}", empty_reason=reason))

    report = Report(
        title=spec.title,
        subtitle=f"Study {spec.name} · data cut-off {spec.data_cutoff.isoformat()} · "
        f"profile {manifest.get('profile', '?')}",
        headline=[(r["result"], r["estimate"]) for r in result.results["headline"]],
        sections=sections,
        footer=f"cohort-etl {manifest.get('package_version', '')}; git {manifest.get('git_revision', '')}",
    )
    paths["report"] = write(report, out_dir / "report.html")
    paths["manifest"] = out_dir / "manifest.json"
    paths["manifest"].write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return paths


def _km_sections(
    spec: StudySpec, result: StudyResult, fig_dir: Path, paths: dict[str, Path]
) -> list[Section]:
    sections: list[Section] = []
    for key, curves in result.km_curves.items():
        if not curves:
            continue
        o_name = key.split("_by_")[0]
        o = spec.outcome(o_name)
        fig = figures.km_plot(
            {k: c.table for k, c in curves.items()},
            fig_dir / f"km_{key}.png",
            title=f"{o.label}" + (f" by {key.split('_by_')[1]}" if "_by_" in key else ""),
            risk_times=result.risk_times[key],
            risk_table={k: _suppress(c.risk, spec.min_cell_count) for k, c in curves.items()},
            time_unit="days",
        )
        paths[f"figure:km_{key}"] = fig
        sections.append(
            Section(
                f"Kaplan-Meier: {o.label}"
                + (f" by {key.split('_by_')[1]}" if "_by_" in key else ""),
                figures=[("Kaplan-Meier estimate with 95% CI and numbers at risk", fig)],
            )
        )
    return sections


def write_failure(spec: StudySpec, reason: str, out_dir: Path, manifest: dict[str, Any]) -> None:
    """A study that could not run: results.json and report.html say why, nothing else."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {
        "schema_version": 1,
        "study": spec.name,
        "title": spec.title,
        "error": reason,
        "not_estimable": [{"section": "study", "reason": reason}],
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    report = Report(
        title=spec.title,
        subtitle=f"Study {spec.name} · profile {manifest.get('profile', '?')}",
        headline=[("Study not run", reason)],
        sections=[Section("Why this report is empty", empty_reason=reason)],
    )
    write(report, out_dir / "report.html")
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _suppress(counts: list[int], min_cell: int) -> list[int | str]:
    return [f"<{min_cell}" if 0 < c < min_cell else c for c in counts]


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)
