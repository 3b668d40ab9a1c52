"""Immortal-time-safe exposure handling: start/stop splitting and landmark data sets.

An exposure that begins during follow-up (e.g. HSCT at day ``t_h`` after CAR-T) must not
be treated as a baseline group: the "ever exposed" arm would be credited with the
event-free time before ``t_h`` (immortal time). Two remedies are provided:

- :func:`split_at_exposure` turns one row per person into counting-process rows,
  ``(0, t_h]`` unexposed and ``(t_h, T]`` exposed, for a Cox model with a time-varying
  covariate (fit with :func:`time_varying_cox`, robust variance clustered on person);
- :func:`landmark` keeps persons alive and event-free at a landmark day, fixes their
  exposure status at that day and restarts the clock there.

The Mantel-Byar test lives in the log-rank module.

Examples
--------
>>> import pandas as pd
>>> d = pd.DataFrame({"person_id": [1, 2], "time": [300.0, 50.0], "event": [1, 1],
...                   "hsct_day": [90.0, None]})
>>> split_at_exposure(d, id_col="person_id", time_col="time", event_col="event",
...                   exposure_time_col="hsct_day")[["person_id", "start", "stop", "event", "exposed"]]
   person_id  start   stop  event  exposed
0          1    0.0   90.0      0        0
1          1   90.0  300.0      1        1
2          2    0.0   50.0      1        0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cohort_etl.errors import InputDataError
from cohort_etl.outcomes.cox import CoxPH, Ties

__all__ = ["landmark", "split_at_exposure", "time_varying_cox"]


def _check_columns(data: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise InputDataError(f"{what}: column {missing[0]!r} is missing from the data")


def _times(data: pd.DataFrame, column: str, what: str, allow_missing: bool) -> np.ndarray:
    values = pd.to_numeric(data[column], errors="coerce").to_numpy(dtype=np.float64)
    bad_text = data[column].notna().to_numpy() & np.isnan(values)
    if bad_text.any():
        raise InputDataError(f"{what}: column {column!r} has non-numeric values")
    if not allow_missing and np.isnan(values).any():
        raise InputDataError(
            f"{what}: column {column!r} has {int(np.isnan(values).sum())} missing values"
        )
    if np.isinf(values).any():
        raise InputDataError(f"{what}: column {column!r} has infinite values")
    if (values[~np.isnan(values)] < 0).any():
        raise InputDataError(f"{what}: column {column!r} has negative values")
    return values


def _events(data: pd.DataFrame, column: str, what: str) -> np.ndarray:
    values = pd.to_numeric(data[column], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isin(values, (0.0, 1.0)).all():
        raise InputDataError(f"{what}: column {column!r} must be 0/1 without missing values")
    return values.astype(np.int64)


def split_at_exposure(
    data: pd.DataFrame,
    *,
    id_col: str,
    time_col: str,
    event_col: str,
    exposure_time_col: str,
    keep: Sequence[str] = (),
    exposed_col: str = "exposed",
    start_col: str = "start",
    stop_col: str = "stop",
) -> pd.DataFrame:
    """Split person-level follow-up at the start of a time-varying exposure.

    Parameters
    ----------
    data
        One row per person: follow-up time from index, event indicator, and the time the
        exposure starts (missing = never exposed during follow-up).
    id_col, time_col, event_col, exposure_time_col
        Column names. Times are on the same scale (e.g. days from index), ``time > 0``.
    keep
        Baseline columns copied onto every row.
    exposed_col, start_col, stop_col
        Names of the output columns.

    Returns
    -------
    pandas.DataFrame
        Columns ``id, start, stop, event, exposed`` and ``keep``, rows ordered by person
        and start. A person exposed at ``0 < t_h < T`` gets ``(0, t_h]`` with exposed 0
        and event 0, then ``(t_h, T]`` with exposed 1 and the person's event. Exposure at
        or before time 0 means exposed throughout; at or after ``T`` (or missing) means
        unexposed throughout (an event at ``T`` belongs to the unexposed state).

    Raises
    ------
    InputDataError
        Missing columns, duplicated ids, missing / negative / zero follow-up times, events
        not 0/1.
    """
    what = "split_at_exposure"
    _check_columns(data, [id_col, time_col, event_col, exposure_time_col, *keep], what)
    if data[id_col].isna().any():
        raise InputDataError(f"{what}: column {id_col!r} has missing ids")
    if data[id_col].duplicated().any():
        dup = data[id_col][data[id_col].duplicated()].iloc[0]
        raise InputDataError(f"{what}: {id_col!r} value {dup} appears more than once")
    stop = _times(data, time_col, what, allow_missing=False)
    if (stop <= 0).any():
        first = data[id_col].iloc[int(np.flatnonzero(stop <= 0)[0])]
        raise InputDataError(
            f"{what}: {time_col!r} must be > 0 for (start, stop] rows ({id_col} {first} has "
            f"{stop[stop <= 0][0]}); add a small offset to same-day events first"
        )
    event = _events(data, event_col, what)
    exposure = _times(data, exposure_time_col, what, allow_missing=True)

    split = ~np.isnan(exposure) & (exposure > 0) & (exposure < stop)
    from_start = ~np.isnan(exposure) & (exposure <= 0)
    n = len(data)
    # First rows: everyone; split persons stop at t_h with no event.
    first_stop = np.where(split, exposure, stop)
    first_event = np.where(split, 0, event)
    first_exposed = from_start.astype(np.int64)
    rows_first = pd.DataFrame(
        {
            id_col: data[id_col].to_numpy(),
            start_col: np.zeros(n),
            stop_col: first_stop,
            event_col: first_event,
            exposed_col: first_exposed,
            "_order": np.arange(n) * 2,
        }
    )
    idx = np.flatnonzero(split)
    rows_second = pd.DataFrame(
        {
            id_col: data[id_col].to_numpy()[idx],
            start_col: exposure[idx],
            stop_col: stop[idx],
            event_col: event[idx],
            exposed_col: np.ones(idx.shape[0], dtype=np.int64),
            "_order": idx * 2 + 1,
        }
    )
    for column in keep:
        rows_first[column] = data[column].to_numpy()
        rows_second[column] = data[column].to_numpy()[idx]
    out = pd.concat([rows_first, rows_second], ignore_index=True)
    out = out.sort_values("_order", kind="stable").drop(columns="_order")
    return out.reset_index(drop=True)


def landmark(
    data: pd.DataFrame,
    landmark_time: float,
    *,
    time_col: str,
    event_col: str,
    exposure_time_col: str,
    exposed_col: str = "exposed",
) -> pd.DataFrame:
    """Landmark data set: persons still under follow-up and event-free at ``landmark_time``.

    Parameters
    ----------
    data
        One row per person (time from index, event 0/1, exposure start time or missing).
    landmark_time
        The landmark, on the scale of ``time_col`` (e.g. day 100).
    time_col, event_col, exposure_time_col
        Column names.
    exposed_col
        Name of the output exposure-status column.

    Returns
    -------
    pandas.DataFrame
        The kept rows (``time > landmark_time``), with ``exposed_col`` = 1 when the
        exposure started on or before the landmark, and ``time_col`` reset to time since
        the landmark; the original time is kept as ``<time_col>_from_index``. Exposures
        after the landmark are ignored (the person stays in the unexposed group).
    """
    what = "landmark"
    _check_columns(data, [time_col, event_col, exposure_time_col], what)
    if not np.isfinite(landmark_time) or landmark_time < 0:
        raise InputDataError(f"{what}: landmark_time must be finite and >= 0")
    time = _times(data, time_col, what, allow_missing=False)
    _events(data, event_col, what)
    exposure = _times(data, exposure_time_col, what, allow_missing=True)
    keep = time > landmark_time
    out = data.loc[keep].copy()
    out[f"{time_col}_from_index"] = time[keep]
    out[time_col] = time[keep] - landmark_time
    exp_kept = exposure[keep]
    out[exposed_col] = (~np.isnan(exp_kept) & (exp_kept <= landmark_time)).astype(np.int64)
    return out.reset_index(drop=True)


def time_varying_cox(
    split: pd.DataFrame,
    *,
    id_col: str,
    covariates: Sequence[str] = ("exposed",),
    event_col: str = "event",
    start_col: str = "start",
    stop_col: str = "stop",
    ties: Ties = "efron",
) -> CoxPH:
    """Cox model on ``(start, stop]`` rows with a robust variance clustered on person.

    Parameters
    ----------
    split
        Output of :func:`split_at_exposure` (or any counting-process data).
    id_col
        Person id (the cluster).
    covariates
        Design-matrix columns (numeric).
    event_col, start_col, stop_col
        Column names.
    ties
        ``"efron"`` or ``"breslow"``.

    Returns
    -------
    CoxPH
        The fitted estimator (``robust_se_`` is the person-clustered SE).
    """
    _check_columns(split, [id_col, event_col, start_col, stop_col, *covariates], "time_varying_cox")
    model = CoxPH(ties=ties)
    return model.fit(
        split[stop_col],
        split[event_col],
        split[list(covariates)],
        entry=split[start_col],
        cluster=split[id_col],
    )
