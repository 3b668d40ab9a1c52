"""Covariate balance before and after matching: SMDs, variance ratios, love-plot data.

Two standardized-mean-difference conventions:

``method="pooled"`` (OHDSI CohortMethod)
    ``(m_T - m_C) / sqrt((s_T^2 + s_C^2) / 2)``, each sample's own SDs: before matching
    the full sample's, after matching the matched (weighted) sample's.
``method="matchit"`` (MatchIt ``summary()`` for the ATT)
    ``(m_T - m_C) / s_T`` with ``s_T`` the treated SD *before* matching in both columns;
    after matching the means are weighted by the matching weights.

Means and variances are weighted (weights = 1 before matching, the matching weights
after). A continuous variance is ``sum w (x - m)^2 / (sum w - sum w^2 / sum w)`` (the
usual ``n - 1`` form with unit weights); for binary covariates and category indicators
the SD is ``sqrt(p (1 - p))``, as MatchIt and CohortMethod use. Categorical covariates
get one row per level, including the reference level. Variance ratios (treated /
control) are reported for continuous covariates only (NaN otherwise, as MatchIt).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from cohort_etl.errors import InputDataError
from cohort_etl.matching.design import (
    check_columns,
    factor_levels,
    is_categorical,
    treatment_vector,
)

#: Conventional threshold for an acceptable |SMD| (CohortMethod, TriNetX).
SMD_THRESHOLD = 0.1


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(w * x) / np.sum(w))


def _wvar(x: np.ndarray, w: np.ndarray, binary: bool) -> float:
    m = _wmean(x, w)
    if binary:
        return m * (1 - m)
    sw = float(np.sum(w))
    denom = sw - float(np.sum(w * w)) / sw
    if denom <= 0:
        return float("nan")
    return float(np.sum(w * (x - m) ** 2) / denom)


def _rows(
    data: pd.DataFrame, covariates: list[str], categorical: list[str] | None
) -> list[tuple[str, str, str | None, str, np.ndarray]]:
    """(label, variable, level, kind, values) for each balance row."""
    forced = set(categorical or [])
    out: list[tuple[str, str, str | None, str, np.ndarray]] = []
    for col in covariates:
        series = data[col]
        if col in forced or is_categorical(series):
            codes, labels, levels = factor_levels(series)
            label_of_code = np.asarray(labels, dtype=object)
            values = label_of_code[codes]
            for level in levels:
                out.append((f"{col}{level}", col, level, "level", (values == level).astype(float)))
            continue
        x = series.to_numpy(dtype=float)
        binary = bool(np.all((x == 0) | (x == 1)))
        out.append((col, col, None, "binary" if binary else "continuous", x))
    return out


def balance_table(
    data: pd.DataFrame,
    treatment: str,
    covariates: list[str],
    weights: np.ndarray | None = None,
    *,
    categorical: list[str] | None = None,
    method: Literal["pooled", "matchit"] = "pooled",
    extra: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Balance of each covariate (and each categorical level) before and after matching.

    Parameters
    ----------
    data
        One row per person (the full, unmatched sample).
    treatment
        0/1 treatment column.
    covariates
        Columns to describe.
    weights
        Matching weights per row (0 = not in the matched sample); None: only the
        "before" columns are filled.
    categorical
        Numeric columns to treat as categorical.
    method
        ``"pooled"`` or ``"matchit"`` SMD (see module docstring).
    extra
        Additional continuous variables (e.g. ``{"distance": ps}``), listed first.

    Returns
    -------
    pandas.DataFrame
        Columns ``covariate``, ``variable``, ``level``, ``kind``, ``mean_treated_before``,
        ``mean_control_before``, ``smd_before``, ``var_ratio_before``,
        ``mean_treated_after``, ``mean_control_after``, ``smd_after``, ``var_ratio_after``
        (the love plot uses ``covariate``, ``smd_before``, ``smd_after``).
    """
    if method not in ("pooled", "matchit"):
        raise InputDataError(f"SMD method must be 'pooled' or 'matchit', not {method!r}")
    t = treatment_vector(data, treatment).astype(bool)
    check_columns(data, covariates)
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        if weights.shape != (len(data),):
            raise InputDataError(
                f"weights have length {weights.shape[0]}, the data {len(data)} rows"
            )
        if np.any(weights < 0) or not np.all(np.isfinite(weights)):
            raise InputDataError("matching weights must be finite and non-negative")
    rows: list[tuple[str, str, str | None, str, np.ndarray]] = [
        (name, name, None, "continuous", np.asarray(v, dtype=float))
        for name, v in (extra or {}).items()
    ]
    rows += _rows(data, covariates, categorical)
    ones = np.ones(len(data))
    records = []
    for label, variable, level, kind, x in rows:
        binary = kind != "continuous"
        rec: dict[str, object] = {
            "covariate": label,
            "variable": variable,
            "level": level,
            "kind": kind,
        }
        sd_t_before = np.sqrt(_wvar(x[t], ones[t], binary))
        for stage, w in (("before", ones), ("after", weights)):
            if w is None:
                for k in ("mean_treated", "mean_control", "smd", "var_ratio"):
                    rec[f"{k}_{stage}"] = np.nan
                continue
            wt, wc = w[t], w[~t]
            if wt.sum() == 0 or wc.sum() == 0:
                for k in ("mean_treated", "mean_control", "smd", "var_ratio"):
                    rec[f"{k}_{stage}"] = np.nan
                continue
            mt, mc = _wmean(x[t], wt), _wmean(x[~t], wc)
            vt, vc = _wvar(x[t], wt, binary), _wvar(x[~t], wc, binary)
            denom = sd_t_before if method == "matchit" else np.sqrt((vt + vc) / 2)
            diff = mt - mc
            smd = 0.0 if diff == 0 else (diff / denom if denom > 0 else np.inf * np.sign(diff))
            rec[f"mean_treated_{stage}"] = mt
            rec[f"mean_control_{stage}"] = mc
            rec[f"smd_{stage}"] = smd
            rec[f"var_ratio_{stage}"] = vt / vc if not binary and vc > 0 else np.nan
        records.append(rec)
    columns = [
        "covariate", "variable", "level", "kind",
        "mean_treated_before", "mean_control_before", "smd_before", "var_ratio_before",
        "mean_treated_after", "mean_control_after", "smd_after", "var_ratio_after",
    ]  # fmt: skip
    return pd.DataFrame.from_records(records, columns=columns)


def max_abs_smd(table: pd.DataFrame, stage: Literal["before", "after"] = "after") -> float:
    """Largest absolute SMD of a :func:`balance_table` at one stage."""
    return float(table[f"smd_{stage}"].abs().max())


def imbalanced(
    table: pd.DataFrame,
    threshold: float = SMD_THRESHOLD,
    stage: Literal["before", "after"] = "after",
) -> list[str]:
    """Covariates whose |SMD| at ``stage`` is at least ``threshold``."""
    col = table[f"smd_{stage}"].abs()
    return table.loc[col >= threshold, "covariate"].tolist()
