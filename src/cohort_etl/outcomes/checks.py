"""Input checks shared by every estimator in :mod:`cohort_etl.outcomes`.

Durations, event indicators, case weights and entry times are checked the same way by
Kaplan-Meier, the log-rank tests, Cox, competing risks and RMST, and every message names
the argument (and the pandas column, when the input is a named Series), the number of
bad values and the first bad position. ``conf_level`` is the one name of a confidence
level across the package; :func:`z_value` turns it into a normal quantile.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from cohort_etl.errors import InputDataError

FloatArray = NDArray[np.float64]
ArrayLike = Sequence[Any] | NDArray[Any] | pd.Series | pd.Index


def label(values: Any, name: str) -> str:
    """``name``, plus the pandas column name when there is one (for error messages)."""
    column = getattr(values, "name", None)
    return f"{name} (column {column!r})" if isinstance(column, str) else name


def as_float_array(values: Any, name: str) -> FloatArray:
    """Convert ``values`` to a 1-d float array (pandas missing values, including the
    nullable dtypes' ``pd.NA``, become NaN), naming ``name`` in any error."""
    if isinstance(values, pd.DataFrame) and values.shape[1] == 1:
        values = values.iloc[:, 0]
    try:
        if isinstance(values, pd.Series | pd.Index) and pd.api.types.is_numeric_dtype(values):
            arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputDataError(f"{name}: values are not numeric ({exc})") from None
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise InputDataError(f"{name}: expected a one-dimensional sequence, got shape {arr.shape}")
    return arr


def _first_bad(bad: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(bad)[0])


def check_finite(arr: FloatArray, name: str) -> FloatArray:
    """No missing or infinite values."""
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputDataError(
            f"{name}: {int(bad.sum())} missing or infinite value(s), first at position "
            f"{_first_bad(bad)}"
        )
    return arr


def check_durations(values: ArrayLike, name: str = "durations") -> FloatArray:
    """Durations: numeric, finite, not missing, >= 0."""
    name = label(values, name)
    arr = as_float_array(values, name)
    if arr.size == 0:
        raise InputDataError(f"{name}: no observations")
    check_finite(arr, name)
    neg = arr < 0
    if neg.any():
        first = _first_bad(neg)
        raise InputDataError(
            f"{name}: {int(neg.sum())} negative value(s), first at position {first} "
            f"({arr[first]:g})"
        )
    return arr


def check_length(arr: NDArray[Any] | Sequence[Any], n: int, name: str) -> None:
    """Raise when ``arr`` does not have ``n`` elements."""
    if len(arr) != n:
        raise InputDataError(f"{name}: has {len(arr)} values but durations has {n}")


def check_events(values: ArrayLike | None, n: int, name: str = "events") -> FloatArray:
    """Event indicators coded 0/1 (or booleans); ``None`` means every row is an event."""
    if values is None:
        return np.ones(n, dtype=float)
    name = label(values, name)
    arr = as_float_array(values, name)
    check_length(arr, n, name)
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        first = _first_bad(bad)
        raise InputDataError(
            f"{name}: must be coded 0/1, found {arr[first]:g} at position {first} "
            f"({int(bad.sum())} bad value(s), {int(np.isnan(arr).sum())} missing)"
        )
    return arr


def check_weights(values: ArrayLike | None, n: int, name: str = "weights") -> FloatArray:
    """Case weights: finite and >= 0; ``None`` means 1 for every row."""
    if values is None:
        return np.ones(n, dtype=float)
    name = label(values, name)
    arr = as_float_array(values, name)
    check_length(arr, n, name)
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        first = _first_bad(bad)
        raise InputDataError(
            f"{name}: must be finite and >= 0, found {arr[first]:g} at position {first}"
        )
    return arr


def check_entry(values: ArrayLike | None, durations: FloatArray, name: str = "entry") -> FloatArray:
    """Delayed-entry times: finite and strictly before the matching duration."""
    n = durations.size
    if values is None:
        return np.full(n, -np.inf)
    name = label(values, name)
    arr = as_float_array(values, name)
    check_length(arr, n, name)
    bad = ~np.isfinite(arr) | (arr >= durations)
    if bad.any():
        first = _first_bad(bad)
        raise InputDataError(
            f"{name}: must be finite and < durations, found entry {arr[first]:g} with "
            f"duration {durations[first]:g} at position {first}"
        )
    return arr


def z_value(conf_level: float) -> float:
    """Two-sided normal quantile for ``conf_level`` (0.95 -> 1.959964)."""
    if not 0.0 < conf_level < 1.0:
        raise InputDataError(f"conf_level: must lie strictly between 0 and 1, got {conf_level!r}")
    return float(stats.norm.ppf(1.0 - (1.0 - conf_level) / 2.0))
