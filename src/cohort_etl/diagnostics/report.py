"""Report pieces of the diagnostics: tables, figures and headline lines (plain pandas /
PNG / text, laid out by the study report)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from cohort_etl.diagnostics.calibration import EmpiricalNull
from cohort_etl.diagnostics.plots import calibration_plot
from cohort_etl.diagnostics.results import (
    DesignDiagnostics,
    DiagnosticsResult,
    MatchingSensitivity,
)
from cohort_etl.report.figures import PALETTE, _save, plt

LABELS = {
    "balance_max_abs_smd": "max |SMD| after matching",
    "equipoise": "equipoise (preference score 0.3-0.7)",
    "mdrr": "minimum detectable relative risk (MDRR)",
    "ease": "expected absolute systematic error (EASE)",
    "ph_test_global_p": "proportional hazards (cox.zph global p)",
    "share_treated_matched": "share of treated patients matched",
    "immortal_time": "immortal time (exposure defined after time zero)",
}


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}g}"


def verdict_table(d: DesignDiagnostics) -> pd.DataFrame:
    """One row per check: value, threshold, verdict."""
    return pd.DataFrame(
        [
            {
                "diagnostic": LABELS.get(c.name, c.name),
                "value": _fmt(c.value),
                "pass if": f"{c.comparison} {_fmt(c.threshold)}",
                "verdict": c.verdict.upper(),
            }
            for c in d.checks
        ]
    )


def calibration_table(d: DesignDiagnostics) -> pd.DataFrame:
    """The design's estimate(s) before and after calibration, with the null and EASE."""
    rows = []
    for c in d.calibrated:
        rows.append(
            {
                "estimate": c.name,
                "HR (95% CI)": f"{_fmt(c.hr)} ({_fmt(c.lower)}–{_fmt(c.upper)})",
                "p": _fmt(c.p, 2),
                "calibrated HR (95% CI)": f"{_fmt(c.calibrated_hr)} "
                f"({_fmt(c.calibrated_lower)}–{_fmt(c.calibrated_upper)})",
                "calibrated p": _fmt(c.calibrated_p, 2),
            }
        )
    return pd.DataFrame(rows)


def controls_table(d: DesignDiagnostics) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "control": c.name,
                "kind": c.kind,
                "true HR": _fmt(c.true_hr),
                "events": c.n_events,
                "HR (95% CI)": f"{_fmt(c.hr)} ({_fmt(c.lower)}–{_fmt(c.upper)})"
                if c.hr is not None
                else f"not estimable ({c.note})",
                "p": _fmt(c.p, 2),
                "calibrated p": _fmt(c.calibrated_p, 2),
            }
            for c in d.controls
        ]
    )


def sensitivity_table(ms: MatchingSensitivity) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "preset": r.preset,
                "seed": r.seed,
                "caliper": _fmt(r.caliper),
                "matched (treated/control)": f"{r.n_treated}/{r.n_control}"
                if r.n_treated is not None
                else "–",
                "HR (95% CI)": f"{_fmt(r.hr)} ({_fmt(r.lower)}–{_fmt(r.upper)})"
                if r.hr is not None
                else f"not estimable ({r.reason})",
            }
            for r in ms.rows
        ]
    )


def calibration_figure(d: DesignDiagnostics, path: Path) -> Path | None:
    """Calibration plot of the design's controls (None without estimable controls)."""
    neg = pd.DataFrame(
        [
            {"log_rr": c.log_rr, "se_log_rr": c.se_log_rr}
            for c in d.controls
            if c.kind == "negative" and c.log_rr is not None and c.se_log_rr is not None
        ],
        columns=["log_rr", "se_log_rr"],
    )
    if neg.empty:
        return None
    pos = pd.DataFrame(
        [
            {"log_rr": c.log_rr, "se_log_rr": c.se_log_rr, "true_log_rr": math.log(c.true_hr)}
            for c in d.controls
            if c.kind == "positive" and c.log_rr is not None and c.se_log_rr is not None
        ],
        columns=["log_rr", "se_log_rr", "true_log_rr"],
    )
    null = None
    if d.null is not None:
        null = EmpiricalNull(d.null.mean, d.null.sd, d.null.log_likelihood, d.null.n_controls)
    primary = None
    if d.calibrated:
        c = d.calibrated[0]
        se = (math.log(c.upper) - math.log(c.lower)) / (2 * 1.959963984540054)
        primary = (math.log(c.hr), se)
    return calibration_plot(
        neg,
        path,
        null=null,
        positive=pos,
        primary=primary,
        title=f"Controls and empirical null: {d.design}",
    )


def sensitivity_figure(ms: MatchingSensitivity, path: Path) -> Path | None:
    """Dot plot of the primary HR (95% CI) per matching rerun."""
    rows = [r for r in ms.rows if r.hr is not None and r.lower and r.upper]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7.0, 0.3 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    presets = sorted({r.preset for r in rows})
    for yi, r in zip(y, rows, strict=True):
        colour = PALETTE[presets.index(r.preset) % len(PALETTE)]
        ax.plot([float(r.lower or 0), float(r.upper or 0)], [yi, yi], color=colour, lw=1.2)
        ax.plot([float(r.hr or 0)], [yi], "o", color=colour, ms=4)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(y)
    ax.set_yticklabels(
        [f"{r.preset}, seed {r.seed}, caliper {_fmt(r.caliper)}" for r in rows], fontsize=7
    )
    ax.set_xlabel(f"Hazard ratio, {ms.outcome} (log scale)")
    ax.set_title(f"Matching sensitivity: HR {_fmt(ms.hr_min)} to {_fmt(ms.hr_max)}")
    return _save(fig, path)


def headline_lines(diag: DiagnosticsResult) -> list[tuple[str, str]]:
    """One headline line per design: its verdict (failing checks named), calibrated HR."""
    out = []
    for d in diag.designs.values():
        verdict = d.verdict.upper()
        if d.failed:
            verdict += ": " + ", ".join(LABELS.get(f, f) for f in d.failed)
        out.append((f"Diagnostics ({d.design}, {d.outcome})", verdict))
        for c in d.calibrated:
            out.append(
                (
                    f"Calibrated HR ({d.design}, {c.name})",
                    f"{_fmt(c.calibrated_hr)} (95% CI {_fmt(c.calibrated_lower)}–"
                    f"{_fmt(c.calibrated_upper)}); calibrated p {_fmt(c.calibrated_p, 2)}; "
                    f"EASE {_fmt(d.ease, 2)}",
                )
            )
    ms = diag.matching_sensitivity
    if ms is not None and ms.hr_min is not None:
        out.append(
            (
                f"Matching sensitivity ({ms.outcome})",
                f"HR {_fmt(ms.hr_min)} to {_fmt(ms.hr_max)} over {len(ms.rows)} reruns",
            )
        )
    return out


def _check_cell(d: DesignDiagnostics, name: str) -> tuple[str, str]:
    c = next((c for c in d.checks if c.name == name), None)
    if c is None:
        return "–", "–"
    value = _fmt(c.value) if c.value is not None else (c.detail or "–")
    return value, c.verdict.upper()


def side_by_side_table(designs: list[DesignDiagnostics]) -> pd.DataFrame:
    """One row per diagnostic, per design its value and verdict, then the calibration:
    the designs' diagnostics beside each other."""
    names = list(dict.fromkeys(c.name for d in designs for c in d.checks))
    rows = []
    for name in names:
        row = {"diagnostic": LABELS.get(name, name)}
        th = next((c for d in designs for c in d.checks if c.name == name), None)
        row["pass if"] = f"{th.comparison} {_fmt(th.threshold)}" if th is not None else "–"
        for d in designs:
            value, verdict = _check_cell(d, name)
            row[f"{d.design}: value"] = value
            row[f"{d.design}: verdict"] = verdict
        rows.append(row)
    extra: list[tuple[str, list[tuple[str, str]]]] = [
        (
            "negative controls estimable",
            [(f"{d.negative_controls_estimable} of {d.negative_controls}", "") for d in designs],
        ),
        (
            "empirical null (mean, sd of the log HR)",
            [
                (f"{d.null.mean:.3f}, {d.null.sd:.3f}" if d.null is not None else "–", "")
                for d in designs
            ],
        ),
    ]
    for d_cal_label in ("HR (95% CI)", "calibrated HR (95% CI)"):
        cells = []
        for d in designs:
            c = d.calibrated[0] if d.calibrated else None
            if c is None:
                cells.append(("–", ""))
            elif d_cal_label.startswith("calibrated"):
                cells.append(
                    (
                        f"{_fmt(c.calibrated_hr)} ({_fmt(c.calibrated_lower)}–"
                        f"{_fmt(c.calibrated_upper)})",
                        "",
                    )
                )
            else:
                cells.append((f"{_fmt(c.hr)} ({_fmt(c.lower)}–{_fmt(c.upper)})", ""))
        extra.append((d_cal_label, cells))
    extra.append(("overall verdict", [("", d.verdict.upper()) for d in designs]))
    for label, cells in extra:
        row = {"diagnostic": label, "pass if": ""}
        for d, (value, verdict) in zip(designs, cells, strict=True):
            row[f"{d.design}: value"] = value
            row[f"{d.design}: verdict"] = verdict
        rows.append(row)
    return pd.DataFrame(rows)


def _failed_labels(d: DesignDiagnostics) -> str:
    return ", ".join(LABELS.get(f, f) for f in d.failed)


def reading_sentence(published: DesignDiagnostics, emulation: DesignDiagnostics) -> str:
    """What a clinician should read from the two designs' diagnostics: which estimate
    answers the strategy question, and what its own failures (if any) mean."""
    ok_time = {
        d.design: next((c.verdict for c in d.checks if c.name == "immortal_time"), None)
        for d in (published, emulation)
    }
    parts = []
    cal = emulation.calibrated[0] if emulation.calibrated else None
    hr_text = (
        f" (calibrated HR {_fmt(cal.calibrated_hr)}, 95% CI {_fmt(cal.calibrated_lower)}–"
        f"{_fmt(cal.calibrated_upper)})"
        if cal is not None
        else ""
    )
    if ok_time[emulation.design] == "pass" and ok_time[published.design] == "fail":
        parts.append(
            f"The {emulation.design} estimate{hr_text} is the one that answers the question "
            '"transplant or not": both strategies start at time zero, so it has no immortal '
            f"time. The {published.design} estimate does not answer it: it "
            + (f"fails {_failed_labels(published)}: it" if published.failed else "")
            + " counts the time before the transplant, which every transplanted patient "
            "had to survive, in favour of transplantation; do not use it as the effect."
        )
    else:
        parts.append(
            f"{emulation.design}: {emulation.verdict.upper()}; {published.design}: "
            f"{published.verdict.upper()}."
        )
    if "ph_test_global_p" in emulation.failed:
        parts.append(
            f"The {emulation.design} hazard ratio fails the proportional-hazards test: the "
            "strategies differ only after the transplants, so the hazard ratio changes over "
            "time and the single HR is an average over the follow-up. Read the survival "
            "difference at the horizons (the primary contrast) rather than the HR."
        )
    others = [f for f in emulation.failed if f != "ph_test_global_p"]
    if others:
        parts.append(
            f"It also fails {', '.join(LABELS.get(f, f) for f in others)}: interpret it "
            "with that caution."
        )
    ease = next((c for c in emulation.checks if c.name == "ease"), None)
    if emulation.ease is not None and ease is not None and ease.threshold is not None:
        parts.append(
            f"Its {emulation.negative_controls_estimable} negative controls show an expected "
            f"absolute systematic error of {_fmt(emulation.ease, 2)} "
            + (
                f"(below the {_fmt(ease.threshold)} threshold: calibration changes the "
                "estimate little)."
                if ease.verdict == "pass"
                else f"(not below the {_fmt(ease.threshold)} threshold: residual bias is likely)."
            )
        )
    return " ".join(parts)


def mark_headline(
    rows: list[tuple[str, str]], d: DesignDiagnostics, suffix: str
) -> list[tuple[str, str]]:
    """The design's hazard-ratio headline row (label starting "Hazard ratio" and ending
    with ``suffix``) with its diagnostics verdict appended: failing checks named, not
    hidden; a passing design says so."""
    verdict = d.verdict.upper()
    if d.failed:
        verdict = f"FAILS DIAGNOSTICS ({_failed_labels(d)})"
        if "ph_test_global_p" in d.failed:
            verdict += (
                ": the HR averages an effect that changes over time; read the survival difference"
            )
    elif d.verdict == "pass":
        verdict = "passes diagnostics"
    cal = d.calibrated[0] if d.calibrated else None
    if cal is not None:
        verdict += (
            f"; calibrated HR {_fmt(cal.calibrated_hr)} ({_fmt(cal.calibrated_lower)}–"
            f"{_fmt(cal.calibrated_upper)})"
        )
    return [
        (k, f"{v} — {verdict}") if k.startswith("Hazard ratio") and k.endswith(suffix) else (k, v)
        for k, v in rows
    ]
