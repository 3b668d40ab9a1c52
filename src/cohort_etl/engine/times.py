"""Outcome columns of the data as numbers: the one step that turns dates into times.

A time-to-event outcome given as dates becomes days from ``start`` to the event or to
censoring (capped at the data cut-off); one given as ready columns is checked (numeric,
finite, >= 0, event coded 0/1) and used as it is. A binary outcome becomes 0/1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cohort_etl.errors import InputDataError
from cohort_etl.studies.spec import Binary, TimeToEvent


@dataclass
class Times:
    """Per row: ``time`` (NaN where it cannot be derived), ``event`` 0/1 and ``code``
    (0 censored, 1 event, 2 competing event); ``bad`` marks rows left out (a date-based
    end before the start, or a missing start)."""

    time: np.ndarray
    event: np.ndarray
    code: np.ndarray

    @property
    def bad(self) -> np.ndarray:
        return ~np.isfinite(self.time) | (self.time < 0)


def dates(data: pd.DataFrame, column: str) -> pd.Series:
    """A date column as datetime64[ns] (DuckDB gives datetime64[us], PostgreSQL dates,
    a CSV file text)."""
    return pd.to_datetime(data[column], errors="coerce").astype("datetime64[ns]")


def numeric(data: pd.DataFrame, column: str, what: str) -> np.ndarray:
    """A numeric column without missing values, else InputDataError naming it."""
    raw = data[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = int((values.isna() & raw.notna()).sum())
    if bad:
        raise InputDataError(f"{what} column {column!r} has {bad} non-numeric value(s)")
    missing = int(values.isna().sum())
    if missing:
        raise InputDataError(f"{what} column {column!r} has {missing} missing value(s)")
    return values.to_numpy(dtype=float)


def zero_one(data: pd.DataFrame, column: str, what: str) -> np.ndarray:
    x = numeric(data, column, what)
    bad = int((~np.isin(x, [0.0, 1.0])).sum())
    if bad:
        raise InputDataError(f"{what} column {column!r} must be coded 0/1 ({bad} other value(s))")
    return x.astype(np.int64)


def check_ready_columns(o: TimeToEvent | Binary, data: pd.DataFrame) -> None:
    """Ready outcome columns: numeric, finite, non-negative times, 0/1 events."""
    if isinstance(o, TimeToEvent) and not o.from_dates:
        assert o.time and o.event
        t = numeric(data, o.time, f"outcome {o.name!r} time")
        if not np.all(np.isfinite(t)):
            raise InputDataError(f"outcome {o.name!r} time column {o.time!r} is not finite")
        neg = int((t < 0).sum())
        if neg:
            raise InputDataError(
                f"outcome {o.name!r} time column {o.time!r} has {neg} negative value(s)"
            )
        zero_one(data, o.event, f"outcome {o.name!r} event")
    elif isinstance(o, Binary) and o.column:
        zero_one(data, o.column, f"outcome {o.name!r}")


def time_to_event(data: pd.DataFrame, o: TimeToEvent, cutoff: pd.Timestamp | None) -> Times:
    """Times and event indicators of one outcome, from dates or ready columns."""
    if not o.from_dates:
        assert o.time and o.event
        t = pd.to_numeric(data[o.time], errors="coerce").to_numpy(dtype=float)
        e = pd.to_numeric(data[o.event], errors="coerce").to_numpy(dtype=float)
        e = np.nan_to_num(e).astype(int)
        return Times(t, e, e.copy())
    assert o.start and o.censor_date and cutoff is not None
    start = dates(data, o.start)
    event = pd.concat([dates(data, c) for c in o.event_dates], axis=1).min(axis=1)
    censor = dates(data, o.censor_date).fillna(cutoff)
    censor = censor.where(censor <= cutoff, cutoff)
    end = censor.copy()
    has_event = event.notna() & (event <= censor)
    end[has_event] = event[has_event]
    code = has_event.astype(int).to_numpy()
    if o.competing_date:
        comp = dates(data, o.competing_date)
        has_comp = comp.notna() & (comp <= censor) & (~has_event | (comp < event))
        end[has_comp] = comp[has_comp]
        code = np.where(has_comp, 2, code)
    days = (end - start).dt.days.to_numpy(dtype=float)
    return Times(days, has_event.to_numpy().astype(int) * (code == 1), code)


def binary_outcome(data: pd.DataFrame, o: Binary, cutoff: pd.Timestamp | None) -> np.ndarray:
    """0/1 per row: the column, or an event within ``window_days`` of ``start``."""
    if o.column:
        y = zero_one(data, o.column, f"binary outcome {o.name!r}")
    else:
        assert o.start and o.event_date and o.window_days and cutoff is not None
        start = dates(data, o.start)
        event = dates(data, o.event_date)
        limit = start + pd.Timedelta(days=o.window_days)
        limit = limit.where(limit <= cutoff, cutoff)
        y = (event.notna() & (event <= limit)).to_numpy(int)
    return 1 - y if o.negate else y
