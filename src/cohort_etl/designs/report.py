"""Report parts of the target-trial section: headline rows and sections.

A study with a ``target_trial`` section leads its report with the emulated trial's
answer (strategy curves with numbers at risk, the 5-year survival difference and the
hazard ratio with their intervals); the published (TriNetX-style) design follows under
"As published (TriNetX design)" with the immortal-time warning; on synthetic data a table
sets each estimate beside the generator's known truth.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cohort_etl.designs.section import TargetTrialSection
from cohort_etl.designs.target_trial import NEVER, WITHIN_GRACE
from cohort_etl.report import figures
from cohort_etl.report.html import Section

#: the truth rows of the synthetic generator compared in the report
TRUTH_HR = "truth.hsct_os_hr_strategy"
TRUTH_HR_FOLLOWUP = "truth.hsct_os_hr_strategy_study_followup"

PUBLISHED_TITLE = "As published (TriNetX design)"

PUBLISHED_EXPLANATION = (
    "In the published design a patient is HSCT+ only if the transplant happened, up to 180 "
    "days after the CAR-T infusion. To be transplanted a patient has to be alive and "
    "relapse-free until that day, so the HSCT+ group is guaranteed to survive that stretch "
    "(immortal time), while every early death, non-response and early relapse is counted "
    "in the HSCT- group. The comparison therefore flatters transplantation whatever its "
    "real effect. The target-trial emulation above assigns both strategies at the "
    "infusion, so it does not have this bias; its estimate is the one to use."
)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _pp(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:+.1f} percentage points"


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _years(days: int) -> str:
    y = days / 365.25
    return f"{y:.0f}-year" if abs(y - round(y)) < 0.01 else f"day-{days}"


def headline_rows(section: TargetTrialSection) -> list[tuple[str, str]]:
    """The emulated trial's results, in the order the report opens with."""
    within = section.strategies[WITHIN_GRACE]
    never = section.strategies[NEVER]
    level = "95% CI"
    rows = [
        (
            "Question (target-trial emulation)",
            f"{within} (within {section.grace_days} days of time zero) vs {never}; "
            f"{section.n_eligible} eligible patients, each cloned into both strategies",
        )
    ]
    for h in reversed(section.horizons):
        s = h.survival
        rows.append(
            (
                f"{_years(h.days)} overall survival, difference (target trial)",
                f"{_pct(s[WITHIN_GRACE])} vs {_pct(s[NEVER])}: {_pp(h.difference)} "
                f"({level} {_pp(h.difference_lower)} to {_pp(h.difference_upper)})",
            )
        )
    rows.append(
        (
            "Hazard ratio of death (target trial)",
            f"HR = {_num(section.hr)}, {level}: {_num(section.hr_lower)}–"
            f"{_num(section.hr_upper)} ({section.ci_method})",
        )
    )
    return rows


def _suppress(counts: list[int], min_cell: int) -> list[int | str]:
    return [f"<{min_cell}" if 0 < c < min_cell else c for c in counts]


def sections(
    section: TargetTrialSection,
    curves: dict[str, dict[str, list[float]]],
    at_risk: dict[str, list[int]],
    risk_times: list[int],
    fig_dir: Path,
    min_cell: int,
    truth: dict[str, str] | None = None,
) -> tuple[list[Section], Path]:
    """The target-trial sections (first: the curves) and the figure's path."""
    within = section.strategies[WITHIN_GRACE]
    never = section.strategies[NEVER]
    tables = {
        label: pd.DataFrame(
            {
                "time": curves[key]["time"],
                "surv": curves[key]["survival"],
                "lower": curves[key]["survival"],
                "upper": curves[key]["survival"],
            }
        )
        for key, label in ((WITHIN_GRACE, within), (NEVER, never))
    }
    fig = figures.km_plot(
        tables,
        fig_dir / "target_trial_os.png",
        title="Overall survival by strategy (clone-censor-weight)",
        risk_times=risk_times,
        risk_table={
            within: _suppress(at_risk[WITHIN_GRACE], min_cell),
            never: _suppress(at_risk[NEVER], min_cell),
        },
        time_unit="days",
    )
    rows = []
    for h in section.horizons:
        rows.append(
            {
                "horizon (days)": h.days,
                f"survival: {within}": _pct(h.survival[WITHIN_GRACE]),
                f"95% CI ({within})": f"{_pct(h.survival_lower[WITHIN_GRACE])}–"
                f"{_pct(h.survival_upper[WITHIN_GRACE])}",
                f"survival: {never}": _pct(h.survival[NEVER]),
                f"95% CI ({never})": f"{_pct(h.survival_lower[NEVER])}–"
                f"{_pct(h.survival_upper[NEVER])}",
                "difference": _pp(h.difference),
                "95% CI (difference)": f"{_pp(h.difference_lower)} to {_pp(h.difference_upper)}",
                "risk ratio of death": _num(h.risk_ratio, 2),
            }
        )
    main = Section(
        f"Target-trial emulation: {within} within {section.grace_days} days vs {never}",
        paragraphs=[
            f"Every eligible patient ({section.n_eligible}) enters both strategies at time "
            f"zero (clones). A clone is censored when the patient's record departs from its "
            f"strategy: the '{never}' clone at a transplant, the '{within}' clone at day "
            f"{section.grace_days} if still untransplanted and eligible. Inverse-probability-"
            f"of-censoring weights ({section.censoring_model}; covariates: "
            f"{', '.join(section.covariates) or 'none'}) remove the selection this "
            f"censoring creates. Hazard ratio {_num(section.hr)} ({_num(section.hr_lower)}–"
            f"{_num(section.hr_upper)}); restricted mean survival to day "
            f"{section.rmst_days:.0f}: {_num(section.rmst[WITHIN_GRACE], 0)} vs "
            f"{_num(section.rmst[NEVER], 0)} days, difference "
            f"{_num(section.rmst_difference, 0)} days ({_num(section.rmst_difference_lower, 0)}"
            f" to {_num(section.rmst_difference_upper, 0)}). Intervals: {section.ci_method}.",
        ],
        figures=[
            (
                "Weighted Kaplan-Meier curves per strategy; numbers at risk are clones "
                "(unweighted). Intervals are in the table below.",
                fig,
            )
        ],
        tables=[("Survival by strategy at each horizon", pd.DataFrame(rows))],
    )
    out = [main]
    if truth:
        out.append(truth_section(section, truth))
    return out, fig


def truth_section(section: TargetTrialSection, truth: dict[str, str]) -> Section:
    """Estimate vs the generator's counterfactual truth (synthetic data only)."""

    def t(key: str) -> float | None:
        return float(truth[key]) if key in truth else None

    def covered(value: float | None, lo: float | None, hi: float | None) -> str:
        if value is None or lo is None or hi is None:
            return "–"
        return "yes" if lo <= value <= hi else "no"

    rows = [
        {
            "quantity": "hazard ratio (study follow-up)",
            "estimate": _num(section.hr),
            "95% CI": f"{_num(section.hr_lower)}–{_num(section.hr_upper)}",
            "truth": _num(t(TRUTH_HR_FOLLOWUP)),
            "CI covers truth": covered(t(TRUTH_HR_FOLLOWUP), section.hr_lower, section.hr_upper),
        },
        {
            "quantity": "hazard ratio (complete 5-year follow-up)",
            "estimate": _num(section.hr),
            "95% CI": f"{_num(section.hr_lower)}–{_num(section.hr_upper)}",
            "truth": _num(t(TRUTH_HR)),
            "CI covers truth": covered(t(TRUTH_HR), section.hr_lower, section.hr_upper),
        },
    ]
    for h in section.horizons:
        years = round(h.days / 365.25)
        for key, name in ((WITHIN_GRACE, "within_grace"), (NEVER, "never")):
            true = t(f"truth.hsct_os_surv_{years}y_{name}")
            rows.append(
                {
                    "quantity": f"{years}-year survival, {section.strategies[key]}",
                    "estimate": _pct(h.survival[key]),
                    "95% CI": f"{_pct(h.survival_lower[key])}–{_pct(h.survival_upper[key])}",
                    "truth": _pct(true),
                    "CI covers truth": covered(true, h.survival_lower[key], h.survival_upper[key]),
                }
            )
        true = t(f"truth.hsct_os_surv_{years}y_difference")
        rows.append(
            {
                "quantity": f"{years}-year survival difference",
                "estimate": _pp(h.difference),
                "95% CI": f"{_pp(h.difference_lower)} to {_pp(h.difference_upper)}",
                "truth": _pp(true),
                "CI covers truth": covered(true, h.difference_lower, h.difference_upper),
            }
        )
    return Section(
        "Estimate vs known truth (synthetic data)",
        paragraphs=[
            "The demo data come from a generator whose effects are known: the truths are "
            "computed by simulating every patient under both strategies with the "
            "generator's own hazard model (docs/synthetic.md). The hazard ratio of a "
            "strategy is not constant over time, so its truth depends on follow-up; the "
            "row 'study follow-up' is the one the Cox model on these data estimates."
        ],
        tables=[("", pd.DataFrame(rows))],
    )


def published_section(
    section: TargetTrialSection, published_lines: list[tuple[str, str]]
) -> tuple[Section, str]:
    """'As published (TriNetX design)': its results, the explanation and the warning text."""
    flag = section.immortal_time["published_design"]
    warning = (
        "Immortal-time bias: " + flag.message + ". These results do not estimate the effect "
        "of transplantation; use the target-trial estimate above."
    )
    sec = Section(
        PUBLISHED_TITLE,
        paragraphs=[PUBLISHED_EXPLANATION],
        tables=[("", pd.DataFrame(published_lines, columns=["Result", "Estimate"]))]
        if published_lines
        else [],
    )
    return sec, warning


def landmark_section(section: TargetTrialSection) -> Section | None:
    if not section.landmark:
        return None
    rows = [
        {
            "landmark day(s)": ", ".join(f"{d:g}" for d in lm.landmarks),
            "population": "alive and relapse-free" if lm.relapse_free else "alive",
            "model": "supermodel (stacked, stratified)" if len(lm.landmarks) > 1 else "Cox",
            "persons": lm.n,
            "transplanted by the (first) landmark": lm.n_exposed,
            "HR": _num(lm.hr),
            "95% CI (robust)": f"{_num(lm.hr_lower)}–{_num(lm.hr_upper)}",
        }
        for lm in section.landmark
    ]
    return Section(
        "Landmark analyses (METHODS.md definition)",
        paragraphs=[
            "Patients alive and relapse-free at the landmark, compared by whether they were "
            "transplanted by then; the clock restarts at the landmark. The supermodel stacks "
            "several landmarks (van Houwelingen 2007)."
        ],
        tables=[("", pd.DataFrame(rows))],
    )
