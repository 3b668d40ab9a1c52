"""Kaplan-Meier input validation and not-estimable results (no R needed).

Each bad input must raise cohort_etl.errors.InputDataError naming the argument at fault;
statistics that do not exist on the data come back as None with a reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohort_etl.errors import CohortEtlError, InputDataError, NotEstimable
from cohort_etl.outcomes.km import KaplanMeier, fit_by_group, median_follow_up


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"durations": [1, np.nan, 3], "events": [1, 0, 1]}, "durations: 1 missing"),
        ({"durations": [1, -2, 3], "events": [1, 0, 1]}, "durations: 1 negative value"),
        ({"durations": [1, np.inf, 3], "events": [1, 0, 1]}, "durations: 1 missing or infinite"),
        ({"durations": ["a", "b"], "events": [1, 0]}, "durations: values are not numeric"),
        ({"durations": [], "events": []}, "durations: no observations"),
        ({"durations": [1, 2, 3], "events": [1, 2, 1]}, "events: must be coded 0/1"),
        ({"durations": [1, 2, 3], "events": [1, np.nan, 1]}, "events: must be coded 0/1"),
        ({"durations": [1, 2, 3], "events": [1, 0]}, "events: has 2 values but durations has 3"),
        (
            {"durations": [1, 2, 3], "events": [1, 0, 1], "weights": [1, -1, 1]},
            "weights: must be finite and >= 0",
        ),
        (
            {"durations": [1, 2, 3], "events": [1, 0, 1], "weights": [0, 0, 0]},
            "weights: all weights are zero",
        ),
        (
            {"durations": [1, 2, 3], "events": [1, 0, 1], "entry": [0, 2, 0]},
            "entry: must be finite and < durations",
        ),
    ],
)
def test_bad_inputs_name_the_argument(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputDataError, match=message):
        KaplanMeier().fit(**kwargs)  # type: ignore[arg-type]


def test_bad_options() -> None:
    with pytest.raises(InputDataError, match="conf_type"):
        KaplanMeier(conf_type="logg").fit([1, 2], [1, 1])  # type: ignore[arg-type]
    with pytest.raises(InputDataError, match="conf_level"):
        KaplanMeier(conf_level=95).fit([1, 2], [1, 1])
    km = KaplanMeier().fit([1, 2, 3], [1, 0, 1])
    with pytest.raises(InputDataError, match="probs"):
        km.quantile([1.5])
    with pytest.raises(InputDataError, match="times: missing"):
        km.survival_at([np.nan])
    with pytest.raises(NotEstimable, match="no horizon within follow-up"):
        km.survival_at([10])
    with pytest.raises(InputDataError, match="tau"):
        km.restricted_mean(-1)
    with pytest.raises(NotEstimable, match="call fit"):
        KaplanMeier().median()
    with pytest.raises(InputDataError, match="groups: missing group label"):
        fit_by_group([1, 2], [1, 1], ["a", None])
    # every error is a CohortEtlError: the CLI prints it on one line
    assert issubclass(InputDataError, CohortEtlError)


def test_zero_events_median_not_reached() -> None:
    km = KaplanMeier().fit([5, 8, 13], [0, 0, 0])
    m = km.median()
    assert m.time is None and not m.reached
    assert m.reason is not None and "not reached" in m.reason and "0 events" in m.reason
    assert np.all(km.survival_ == 1.0)
    q = km.quantile([0.25])[0]
    assert q.time is None and q.reason is not None
    fu = median_follow_up([5, 8, 13], [0, 0, 0])
    assert fu.time == 8.0


def test_pandas_inputs_and_booleans() -> None:
    d = pd.DataFrame({"t": [3.0, 1.0, 2.0, 2.0], "e": [True, False, True, True]})
    km = KaplanMeier().fit(d["t"], d["e"])
    assert list(km.timeline_) == [1.0, 2.0, 3.0]
    assert list(km.n_risk_) == [4.0, 3.0, 1.0]
    assert km.survival_[1] == pytest.approx(1 / 3)
    assert list(km.number_at_risk([0, 2, 5])["n_risk"]) == [4.0, 3.0, 0.0]
