"""Immortal-time diagnostic of a comparison design.

A design has immortal time when membership of an arm is defined by something that happens
after time zero: the arm is then guaranteed to survive until it happens. The diagnostic
flags a design when

* ``exposure_after_start``: for some person of the exposed arm the defining exposure is
  dated after the start of follow-up (time zero); or
* ``no_event_before_exposure``: an arm has no outcome event before the earliest exposure
  of its members (the typical trace of guaranteed survival).

A target-trial emulation assigns strategies at time zero (clones), so its defining day is
0 for everyone and neither check fires.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class ImmortalTimeCheck:
    """Result of :func:`immortal_time_check` (``flagged`` if any reason applies)."""

    flagged: bool
    exposure_after_start: bool
    no_event_before_exposure: bool
    n_exposed_after_start: int
    earliest_exposure_day: float | None
    events_before_earliest_exposure: int | None
    message: str

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def immortal_time_check(
    arm: ArrayLike, defining_day: ArrayLike, time: ArrayLike, event: ArrayLike
) -> ImmortalTimeCheck:
    """Check a two-arm design for immortal time.

    Parameters
    ----------
    arm
        1 = exposed arm, 0 = comparator, per person (or clone).
    defining_day
        Day, since time zero, on which the person's arm membership is established (the
        exposure day for the exposed; 0 when assigned at time zero; NaN = 0).
    time, event
        Follow-up from time zero and the outcome indicator.
    """
    a = np.asarray(arm).astype(bool)
    d = np.nan_to_num(np.asarray(defining_day, dtype=np.float64), nan=0.0)
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(event).astype(bool)
    late = a & (d > 0)
    n_late = int(late.sum())
    earliest = float(d[late].min()) if n_late else None
    before = None
    no_event = False
    if earliest is not None:
        before = int(np.sum(a & e & (t < earliest)))
        no_event = before == 0
    flagged = n_late > 0 or no_event
    parts = []
    if n_late:
        parts.append(
            f"exposure defined after time zero for {n_late} exposed persons "
            f"(earliest on day {earliest:g})"
        )
    if no_event:
        parts.append(f"the exposed arm has no event before day {earliest:g}: guaranteed survival")
    msg = "; ".join(parts) if parts else "arms assigned at time zero: no immortal time"
    return ImmortalTimeCheck(flagged, n_late > 0, no_event, n_late, earliest, before, msg)
