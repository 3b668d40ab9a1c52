"""How published numbers are written: significant digits and plain JSON values.

The typed result models (:mod:`cohort_etl.engine.results`), result CSVs and the
network's pooled results all round with these, so DuckDB and PostgreSQL runs and reruns
give the same bytes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

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
