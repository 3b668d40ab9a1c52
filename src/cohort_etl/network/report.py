"""Pooled HTML report of a network round: self-contained (inline SVG, no scripts, no
external links). Sections: pooled Kaplan-Meier per outcome with numbers at risk, the
target-trial estimate (the clinical question: per site with robust CIs, pooled fixed
effect with the robust CI, Wald FE / DL), forest plots per hazard ratio of the published
design and the sensitivity analyses (per site, profile fixed effect, profile random
effects, Wald FE / DL), stratified log-rank, summed attrition, pooled Table 1,
provenance per site."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import pandas as pd

ARM_COLOURS = {"treated": "#d1495b", "control": "#00798c", "all": "#30638e"}
POOLED_COLOUR = "#edae49"
SITE_COLOUR = "#555555"
HEADER = "#eef3fa"
CSS = f"""
body {{ font-family: sans-serif; margin: 24px; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }}
th {{ background: {HEADER}; text-align: left; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.note {{ color: #555; font-size: 13px; }}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return _e(v)


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, list | tuple | dict):
                v = ", ".join(str(x) for x in v) if not isinstance(v, dict) else str(v)
            v = None if v is None or (not isinstance(v, str) and pd.isna(v)) else v
            num = isinstance(v, int | float) and not isinstance(v, bool)
            cells.append(f"<td class='num'>{_fmt(v, digits)}</td>" if num else
                         f"<td>{_fmt(v, digits)}</td>")  # fmt: skip
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def km_svg(km: pd.DataFrame, outcome: str, width: int = 760, height: int = 320) -> str:
    part = km[km["outcome"] == outcome]
    if part.empty:
        return "<p class='note'>No interval published.</p>"
    tmax = float(part["time"].max())
    pad_l, pad_b, pad_t, pad_r = 50, 35, 10, 20
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def x(t: float) -> float:
        return pad_l + w * t / tmax

    def y(s: float) -> float:
        return pad_t + h * (1 - s)

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"role='img' aria-label='Kaplan-Meier {_e(outcome)}'>",
             f"<rect x='{pad_l}' y='{pad_t}' width='{w}' height='{h}' fill='white' "
             "stroke='#999'/>"]  # fmt: skip
    for s in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f"<text x='{pad_l - 6}' y='{y(s) + 4:.1f}' font-size='11' "
                     f"text-anchor='end'>{s:.2f}</text>")  # fmt: skip
    for frac in (0, 0.25, 0.5, 0.75, 1):
        parts.append(f"<text x='{x(tmax * frac):.1f}' y='{height - 12}' font-size='11' "
                     f"text-anchor='middle'>{tmax * frac:.0f}</text>")  # fmt: skip
    for role, arm in part.groupby("arm_role", sort=True):
        arm = arm.sort_values("time")
        pts = [(0.0, 1.0)]
        prev = 1.0
        start = 0.0
        for t, s in zip(arm["time"], arm["surv"], strict=True):
            pts.append((start, prev))
            pts.append((start, float(s)))
            prev = float(s)
            start = float(t)
        pts.append((start, prev))
        path = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in pts)
        colour = ARM_COLOURS.get(str(role), "#333")
        parts.append(f"<polyline points='{path}' fill='none' stroke='{colour}' "
                     "stroke-width='3'/>")  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def at_risk_table(km: pd.DataFrame, outcome: str, points: int = 6) -> str:
    part = km[km["outcome"] == outcome]
    if part.empty:
        return ""
    part = part.assign(start=part["time"] - part["time"] // part["interval"])
    tmax = float(part["start"].max())
    times = sorted({float(t) for t in part["start"]})
    targets = [tmax * f / (points - 1) for f in range(points)]
    marks = sorted({min(times, key=lambda t: abs(t - target)) for target in targets})
    rows = []
    for role, arm in part.groupby("arm_role", sort=True):
        by_t = dict(zip(arm["start"].astype(float), arm["n_risk"], strict=True))
        rows.append({"arm": str(arm["arm"].iloc[0]),
                     **{f"day {t:.0f}": by_t.get(t) for t in marks}})  # fmt: skip
        del role
    return "<p class='note'>Numbers at risk (pooled) on the day shown</p>" + _table(
        pd.DataFrame(rows)
    )


Row = tuple[str, float | None, float | None, float | None, str]


def forest_svg(entry: dict[str, Any], width: int = 760) -> str:
    rows: list[Row] = []
    for site, est in sorted(entry.get("sites", {}).items()):
        p = est.get("profile", {})
        rows.append((f"site {site}", p.get("estimate"), p.get("lower"), p.get("upper"),
                     SITE_COLOUR))  # fmt: skip
    pf, re = entry["profile_fixed_effect"], entry["profile_random_effects"]
    rows.append(("profile FE", pf.get("estimate"), pf.get("lower"), pf.get("upper"),
                 POOLED_COLOUR))  # fmt: skip
    rows.append(("profile RE (Bayesian)", re.get("mu"), re.get("mu_lower"), re.get("mu_upper"),
                 POOLED_COLOUR))  # fmt: skip
    for m in ("FE", "DL"):
        w = entry.get(f"wald_{m}", {})
        rows.append((f"Wald {m} (log HR, SE)", w.get("estimate"), w.get("lower"), w.get("upper"),
                     "#888888"))  # fmt: skip
    return _forest(rows, width)


def target_trial_svg(entry: dict[str, Any], width: int = 760) -> str:
    """Forest plot of the target-trial estimate: each site's own log HR with its robust
    95% CI, the pooled fixed effect (robust CI from the refinement pass), Wald FE / DL."""
    z = 1.959963984540054
    rows: list[Row] = []
    for site, est in sorted(entry.get("sites", {}).items()):
        c, se = est.get("coef"), est.get("se")
        rows.append((f"site {site}", c, None if c is None or se is None else c - z * se,
                     None if c is None or se is None else c + z * se, SITE_COLOUR))  # fmt: skip
    rows.append(("pooled FE (robust CI)", entry.get("estimate"), entry.get("lower"),
                 entry.get("upper"), POOLED_COLOUR))  # fmt: skip
    for m in ("FE", "DL"):
        w = entry.get(f"wald_{m}", {})
        rows.append((f"Wald {m} (log HR, SE)", w.get("estimate"), w.get("lower"), w.get("upper"),
                     "#888888"))  # fmt: skip
    return _forest(rows, width, "forest plot (target trial)")


def _forest(rows: list[Row], width: int, aria: str = "forest plot") -> str:
    lo, hi = math.log(0.05), math.log(20)
    row_h, pad_l, pad_r = 22, 200, 150
    height = row_h * (len(rows) + 2)
    w = width - pad_l - pad_r

    def x(v: float) -> float:
        return pad_l + w * (min(max(v, lo), hi) - lo) / (hi - lo)

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"role='img' aria-label='{_e(aria)}'>",
             f"<line x1='{x(0):.1f}' y1='5' x2='{x(0):.1f}' y2='{height - 25}' stroke='#999' "
             "stroke-dasharray='4 3'/>"]  # fmt: skip
    for hr in (0.1, 0.25, 0.5, 1, 2, 4, 10):
        parts.append(f"<text x='{x(math.log(hr)):.1f}' y='{height - 8}' font-size='11' "
                     f"text-anchor='middle'>{hr:g}</text>")  # fmt: skip
    for i, (label, est, low, up, colour) in enumerate(rows):
        yy = row_h * (i + 1)
        parts.append(f"<text x='5' y='{yy + 4}' font-size='12'>{_e(label)}</text>")
        if est is None:
            parts.append(f"<text x='{pad_l}' y='{yy + 4}' font-size='12' fill='#777'>"
                         "not estimable</text>")  # fmt: skip
            continue
        if low is not None and up is not None:
            parts.append(f"<line x1='{x(low):.1f}' y1='{yy}' x2='{x(up):.1f}' y2='{yy}' "
                         f"stroke='{colour}' stroke-width='2'/>")  # fmt: skip
        size = 7 if colour == POOLED_COLOUR else 4
        parts.append(f"<rect x='{x(est) - size:.1f}' y='{yy - size}' width='{2 * size}' "
                     f"height='{2 * size}' fill='{colour}'/>")  # fmt: skip
        ci = "" if low is None or up is None else f" ({math.exp(low):.2f}–{math.exp(up):.2f})"
        parts.append(f"<text x='{width - pad_r + 8}' y='{yy + 4}' font-size='12'>"
                     f"{math.exp(est):.2f}{ci}</text>")  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def render(result: dict[str, Any], tables: dict[str, pd.DataFrame]) -> str:
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>Network results: "
           f"{_e(result['study'])}</title><style>{CSS}</style></head><body>",
           f"<h1>Network results: {_e(result.get('title') or result['study'])}</h1>",
           f"<p class='note'>Round {_e(result['round_id'])}; sites "
           f"{_e(', '.join(result['sites']))}; minimum cell count {result['min_cell']}; "
           f"counts summed by secure aggregation (no site's vector seen by the coordinator); "
           f"pass {_e(result.get('pass', {}).get('number', 1))} of the round (models with "
           "adjustment terms: pass 1 expands each site's likelihood around its own "
           "adjustment coefficients, each further pass around the pooled ones)."
           "</p>"]  # fmt: skip
    km = tables.get("pooled_km", pd.DataFrame())
    out.append("<h2>Pooled Kaplan-Meier</h2>")
    for outcome, info in sorted(result.get("km", {}).items()):
        legend = ", ".join(f"<span style='color:{ARM_COLOURS.get(r, '#333')}'>■</span> "
                           f"{_e(result['arms'].get(r, r))} (ends day {a['last_time']}: "
                           f"{_e(a['ends_because'])})" for r, a in sorted(info["arms"].items()))  # fmt: skip
        out.append(f"<h3>{_e(outcome)}</h3><p class='note'>{legend}</p>")
        out.append(km_svg(km, outcome))
        out.append(at_risk_table(km, outcome))
    tt = result.get("target_trial")
    if tt:
        ci = (f"95% CI {tt['hr_lower']:.3f}–{tt['hr_upper']:.3f} ({_e(tt['ci_method'])})"
              if tt.get("hr_lower") is not None and tt.get("hr_upper") is not None
              else f"no CI yet: {_e(tt.get('reason'))}")  # fmt: skip
        hr = "not estimable" if tt.get("hr") is None else f"{tt['hr']:.3f}"
        out.append("<h2>Target-trial emulation (the clinical question)</h2>"
                   f"<h3>{_e(tt.get('label'))}</h3>"
                   f"<p class='note'>Pooled hazard ratio {hr}; {ci}. {_e(tt.get('question'))}. "
                   f"Weights: {_e(tt.get('weights'))}. Point estimate: "
                   f"{_e(tt.get('point_method'))} (pass {_e(tt.get('pass'))}). Weighted "
                   "survival curves, risks and RMST are not pooled (docs/network.md).</p>"
                   + target_trial_svg(tt))  # fmt: skip
    out.append("<h2>Hazard ratios (forest plots)</h2>")
    if tt:
        out.append(
            "<p class='note'>The published design's arms as the study defines them, "
            "and the sensitivity analyses; not the target-trial estimate above.</p>"
        )
    for analysis, entry in sorted(result.get("hazard_ratios", {}).items()):
        label = entry.get("label") or analysis
        out.append(f"<h3>{_e(label)}</h3><p class='note'>analysis <code>{_e(analysis)}</code>"
                   "</p>" + forest_svg(entry))  # fmt: skip
    lr = result.get("logrank_stratified_by_site", {})
    if lr:
        out.append("<h2>Log-rank stratified by site</h2>")
        out.append(_table(pd.DataFrame([{"outcome": o, "chi_square": e["chi_square"],
                                         "p_value": e["p_value"], "observed": e["observed"],
                                         "withheld": e["suppressed"]}
                                        for o, e in sorted(lr.items())]), 4))  # fmt: skip
    if "pooled_attrition" in tables:
        out.append("<h2>Attrition (summed over sites)</h2>" + _table(tables["pooled_attrition"]))
    if "pooled_table1" in tables:
        out.append("<h2>Table 1 (pooled)</h2>" + _table(tables["pooled_table1"]))
        out.append("<h3>Standardised mean differences</h3>" + _table(tables["pooled_smd"]))
    out.append("<h2>Provenance per site</h2>" + _table(tables["provenance"]))
    out.append("</body></html>")
    return "\n".join(out)


def write_report(result: dict[str, Any], tables: dict[str, pd.DataFrame], path: Path) -> Path:
    Path(path).write_text(render(result, tables), encoding="utf-8")
    return Path(path)
