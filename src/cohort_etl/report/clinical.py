"""What a clinician reads: time units, test names, human labels and Table 1.

* Times are computed in days; a study shows them in its ``display_unit`` (``days``,
  ``weeks``, ``months`` = 30.4375 days, ``years`` = 365.25 days). results.json keeps days
  and names the unit.
* A comparison's headline names the test the engine's chooser picked (Pearson chi-square,
  Yates-corrected chi-square or Fisher's exact test).
* Covariates, levels and arms get human labels: the spec's ``labels`` map first, else a
  default from the column name and the level's text (the marts' levels are concept names,
  e.g. race ``asian``); the propensity score is called so, not "distance".
* Table 1 gives n (%) for binary covariates and categorical levels and mean (SD) for
  continuous ones, per arm, before and after matching, beside the SMDs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from cohort_etl.matching.design import factor_levels, is_categorical
from cohort_etl.studies.spec import UNIT_DAYS

DisplayUnit = Literal["days", "weeks", "months", "years"]

#: the chooser's method ids (cohort_etl.outcomes.binary) and their names in a report
TEST_NAMES = {
    "pearson-chi-square": "Pearson chi-square",
    "pearson-chi-square-yates": "Yates-corrected chi-square",
    "fisher-exact": "Fisher's exact test",
}

#: names the engine gives to derived rows (balance tables, designs) and what they mean
DERIVED_LABELS = {"distance": "propensity score", "ps": "propensity score"}


def in_unit(days: float | None, unit: str = "days") -> float | None:
    """``days`` expressed in ``unit`` (None stays None)."""
    if days is None or not np.isfinite(days):
        return None
    return float(days) / UNIT_DAYS[unit]


def duration(days: float | None, unit: str = "days", missing: str = "not reached") -> str:
    """A time for the reader: ``262 days``, ``8.6 months``, ``1.2 years``."""
    value = in_unit(days, unit)
    if value is None:
        return missing
    if unit == "days":
        return f"{value:.0f} days"
    return f"{value:.1f} {unit}"


def duration_range(lower: float | None, upper: float | None, unit: str = "days") -> str:
    """A confidence interval of times in one unit: ``4.2–13.1 months``."""
    lo, hi = in_unit(lower, unit), in_unit(upper, unit)
    digits = 0 if unit == "days" else 1
    lo_s = "–" if lo is None else f"{lo:.{digits}f}"
    hi_s = "not reached" if hi is None else f"{hi:.{digits}f}"
    return f"{lo_s}–{hi_s} {unit}"


def stat_test_name(method: str | None) -> str:
    """The report name of a test method id (unknown ids are shown as they are)."""
    if method is None:
        return "test"
    return TEST_NAMES.get(method, method)


def pretty(name: str) -> str:
    """Default label of a column name: ``age_at_relapse`` -> ``Age at relapse``."""
    if name in DERIVED_LABELS:
        return DERIVED_LABELS[name]
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else name


def label(name: str, labels: Mapping[str, str] | None = None) -> str:
    """The human label of a column (``labels`` first, else :func:`pretty`)."""
    if labels and name in labels:
        return labels[name]
    return pretty(name)


def level_label(variable: str, level: str | None, labels: Mapping[str, str] | None = None) -> str:
    """The label of one categorical level, e.g. ``Race: Asian``.

    ``labels`` may name the level alone (``"asian": "Asian"``) or with its column
    (``"race.asian": "Asian"``); the variable's own label comes first.
    """
    head = label(variable, labels)
    if level is None:
        return head
    lab = dict(labels or {})
    text = lab.get(f"{variable}.{level}", lab.get(str(level)))
    if text is None:
        text = str(level).replace("_", " ")
        text = text[:1].upper() + text[1:]
    return f"{head}: {text}"


def _mean_sd(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    sw = float(w.sum())
    m = float((w * x).sum() / sw)
    denom = sw - float((w * w).sum()) / sw
    sd = float(np.sqrt((w * (x - m) ** 2).sum() / denom)) if denom > 0 else float("nan")
    return m, sd


def _cells(x: np.ndarray, w: np.ndarray, binary: bool) -> str:
    if w.sum() == 0:
        return "–"
    if binary:
        n = float((w * x).sum())
        pct = 100 * n / float(w.sum())
        count = f"{n:.0f}" if abs(n - round(n)) < 1e-9 else f"{n:.1f}"
        return f"{count} ({pct:.1f}%)"
    m, sd = _mean_sd(x, w)
    return f"{m:.1f} ({sd:.1f})"


def table_one(
    data: pd.DataFrame,
    treated: np.ndarray,
    covariates: list[str],
    weights: np.ndarray | None = None,
    *,
    categorical: list[str] | None = None,
    arm_labels: tuple[str, str] = ("treated", "control"),
    labels: Mapping[str, str] | None = None,
    smd: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Table 1: one row per covariate (one per level of a categorical one).

    Parameters
    ----------
    data
        One row per person, the unmatched sample.
    treated
        Boolean per row.
    covariates
        Columns, in order.
    weights
        Matching weights (0 = not matched); None: only the "before matching" columns.
    categorical
        Numeric columns to treat as categorical.
    arm_labels
        (treated, control) labels for the column headers.
    labels
        Human labels (see :func:`label`, :func:`level_label`).
    smd
        A :func:`cohort_etl.matching.balance.balance_table`; its ``smd_before`` /
        ``smd_after`` are joined on the covariate row.

    Returns
    -------
    pandas.DataFrame
        ``Characteristic``, then ``<arm> before, n (%) / mean (SD)`` for both arms, SMD
        before, and the same after matching when ``weights`` are given.
    """
    t = np.asarray(treated, dtype=bool)
    forced = set(categorical or [])
    stages: list[tuple[str, np.ndarray]] = [("before matching", np.ones(len(data)))]
    if weights is not None:
        stages.append(("after matching", np.asarray(weights, dtype=float)))
    rows: list[dict[str, object]] = []
    smd_by: dict[str, dict[str, float]] | None = None
    if smd is not None:
        smd_by = {
            str(c): {"before": float(b), "after": float(a)}
            for c, b, a in zip(smd["covariate"], smd["smd_before"], smd["smd_after"], strict=True)
        }
    for col in covariates:
        series = data[col]
        if col in forced or is_categorical(series):
            codes, names, levels = factor_levels(series)
            values = np.asarray(names, dtype=object)[codes]
            items = [
                (
                    f"{col}{lv}",
                    level_label(col, lv, labels) + ", n (%)",
                    (values == lv).astype(float),
                    True,
                )
                for lv in levels
            ]
        else:
            x = series.to_numpy(dtype=float)
            binary = bool(np.all((x == 0) | (x == 1)))
            suffix = ", n (%)" if binary else ", mean (SD)"
            items = [(col, label(col, labels) + suffix, x, binary)]
        for key, text, x, binary in items:
            row: dict[str, object] = {"Characteristic": text}
            for stage, w in stages:
                row[f"{arm_labels[0]}, {stage}"] = _cells(x[t], w[t], binary)
                row[f"{arm_labels[1]}, {stage}"] = _cells(x[~t], w[~t], binary)
                if smd_by is not None and key in smd_by:
                    value = smd_by[key]["before" if stage == "before matching" else "after"]
                    row[f"SMD, {stage}"] = "–" if np.isnan(value) else f"{value:.3f}"
            rows.append(row)
    n_row: dict[str, object] = {"Characteristic": "Patients, n"}
    for stage, w in stages:
        n_row[f"{arm_labels[0]}, {stage}"] = f"{float(w[t].sum()):.0f}"
        n_row[f"{arm_labels[1]}, {stage}"] = f"{float(w[~t].sum()):.0f}"
        if smd_by is not None:
            n_row[f"SMD, {stage}"] = ""
    return pd.DataFrame([n_row, *rows])


def coefficient_label(row: Any, labels: Mapping[str, str] | None = None) -> str:
    """What one Cox coefficient compares, naming the reference level of every
    categorical or 0/1 term: ``Salvage: chemotherapy vs targeted (reference)``,
    ``Age at relapse (years), per unit increase``."""
    variable = getattr(row, "variable", None) or row.covariate
    level, reference = getattr(row, "level", None), getattr(row, "reference", None)
    if level is None or reference is None:
        scale = getattr(row, "scale", None)
        per = "unit" if scale is None else f"{scale:g}-unit"
        return f"{label(variable, labels)}, per {per} increase"
    lab = dict(labels or {})
    if getattr(row, "kind", None) == "binary":  # a 0/1 column: yes vs no unless labelled
        this = lab.get(f"{variable}.{level}", "yes" if level == "1" else "no")
        ref = lab.get(f"{variable}.{reference}", "yes" if reference == "1" else "no")
        return f"{label(variable, labels)}: {this} vs {ref} (reference)"
    this = level_label(variable, level, labels)
    ref = level_label(variable, reference, labels).split(": ", 1)[1]
    return f"{this} vs {ref} (reference)"


#: what each cohort rule of the dbt project removes (cohort_attrition's rule names)
RULE_REMOVES = {
    "all_diagnosis": "no ALL diagnosis",
    "cart_after_all_diagnosis": "no CD19 CAR-T infusion on or after the ALL diagnosis",
    "not_t_all": "T-ALL",
    "relapsed_refractory_before_cart": "no relapsed / refractory disease before the CAR-T",
    "allo_hsct_consolidation": "no allogeneic HSCT within the window, before relapse",
    "no_allo_hsct_consolidation": "an allogeneic HSCT within the window, before relapse",
    "relapse_after_cart": "no relapse after the CAR-T",
    "salvage_after_relapse": "no salvage line after the relapse",
}


def attrition_labels(attrition: pd.DataFrame) -> pd.DataFrame:
    """The cohort attrition table with a column saying what each step removed."""
    out = attrition.copy()
    removes = [
        "" if str(n) == "0" else RULE_REMOVES.get(str(rule), f"not {rule}")
        for n, rule in zip(out["rule_number"], out["rule"], strict=True)
    ]
    out.insert(list(out.columns).index("rule") + 1, "removed", removes)
    return out


def study_steps(include: Mapping[str, list[str]], cohort: Any) -> pd.DataFrame:
    """The study's own steps from the rows read to the rows analysed: the spec's
    ``include`` filter and the data cut-off, each with what it removed."""
    where = "; ".join(f"{k} in {list(v)}" for k, v in include.items()) or "none"
    n_input = int(cohort.n_input)
    after_include = n_input - int(cohort.excluded_by_include)
    rows = [
        ("rows read from the analysis data", "", n_input, 0),
        ("include filter", f"rows outside it ({where})", after_include,
         int(cohort.excluded_by_include)),
        ("data cut-off", "outcome start after the cut-off or missing",
         int(cohort.n_after_cutoff), int(cohort.excluded_index_after_cutoff)),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["step", "removed", "persons_remaining", "persons_removed"])
