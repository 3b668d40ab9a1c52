"""Plain-dict summaries of fitted statistics, as written into results.json.

One place decides the keys of each kind of estimate, so `cohort-etl analyze` and the study
runner describe a Cox fit, a log-rank test or a two-arm proportion comparison the same way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cohort_etl.outcomes.binary import ProportionComparison, TestResult
from cohort_etl.outcomes.cox import CoxResult
from cohort_etl.outcomes.logrank import LogRankResult


def cox_dict(r: CoxResult, term: int = 0) -> dict[str, Any]:
    """HR with CI, coefficient, SEs and the three tests' p-values for one model term."""
    return {
        "estimable": True,
        "hr": r.hazard_ratio[term],
        "lower": r.ci_lower[term],
        "upper": r.ci_upper[term],
        "coef": r.coef[term],
        "se": r.se[term],
        "robust_se": None if r.robust_se is None else r.robust_se[term],
        "wald_p": r.p_value[term],
        "lr_p": r.lr_test.p_value,
        "score_p": r.score_test.p_value,
        "n": r.n,
        "events": r.n_events,
    }


def logrank_dict(lr: LogRankResult, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "chi_square": lr.chi_square,
        "df": lr.df,
        "p_value": lr.p_value,
        "reason": lr.reason,
    }
    if detail:
        out["groups"] = [str(g) for g in lr.groups]
        out["observed"] = lr.observed.tolist()
        out["expected"] = lr.expected.tolist()
    return out


def stat_test_dict(t: TestResult) -> dict[str, Any]:
    return {
        "method": t.method,
        "statistic": t.statistic,
        "df": t.df,
        "p_value": t.p_value,
        "reason": t.reason,
    }


def proportions_dict(cmp: ProportionComparison) -> dict[str, Any]:
    """Risk difference (Wald and Newcombe), risk ratio, odds ratio and the z-test."""
    return {
        "risk_difference": vars(cmp.risk_difference),
        "risk_difference_newcombe": vars(cmp.risk_difference_newcombe),
        "risk_ratio": vars(cmp.risk_ratio),
        "odds_ratio": vars(cmp.odds_ratio),
        "z_test": {"z": cmp.z_statistic, "p_value": cmp.p_value, "method": cmp.p_method},
    }


#: significant digits of every published number (results.json, result CSVs, pooled
#: results): enough for R agreement, few enough that DuckDB and PostgreSQL runs and reruns
#: give the same bytes
RESULT_DIGITS = 10
#: ``float_format`` of result CSV files, at RESULT_DIGITS
RESULT_FLOAT_FORMAT = f"%.{RESULT_DIGITS}g"


def json_safe(value: Any, digits: int | None = None) -> Any:
    """Plain JSON values: numpy scalars and arrays to Python, tuples to lists, NaN and
    infinity to None; floats rounded to ``digits`` significant digits when given (so reruns
    and different database engines give the same bytes)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, digits) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v, digits) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if digits is not None:
            return float(f"{value:.{digits}g}")
    return value
