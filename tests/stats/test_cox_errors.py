"""CoxPH input validation and not-estimable cases: one clear domain error each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohort_etl.errors import CohortEtlError, InputDataError, NotEstimable
from cohort_etl.outcomes.cox import CoxPH, cox_zph


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 80
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "time": np.round(rng.exponential(10 / np.exp(0.5 * x)), 1) + 0.1,
            "event": rng.integers(0, 2, n),
            "x": x,
            "g": rng.integers(0, 2, n).astype(float),
        }
    )


def test_zero_events(data: pd.DataFrame) -> None:
    with pytest.raises(NotEstimable, match="no events"):
        CoxPH().fit(data["time"], np.zeros(len(data)), data[["x"]])


def test_constant_covariate_is_named(data: pd.DataFrame) -> None:
    X = data[["x"]].assign(const=1.0)
    with pytest.raises(NotEstimable, match="'const' is constant"):
        CoxPH().fit(data["time"], data["event"], X)


def test_collinear_covariates_are_named(data: pd.DataFrame) -> None:
    X = data[["x", "g"]].assign(x2=2 * data["x"] + 1)
    with pytest.raises(NotEstimable, match="'x2' is collinear"):
        CoxPH().fit(data["time"], data["event"], X)


def test_covariate_constant_within_strata(data: pd.DataFrame) -> None:
    with pytest.raises(NotEstimable, match="'g'"):
        CoxPH().fit(data["time"], data["event"], data[["x", "g"]], strata=data["g"])


def test_monotone_likelihood_raises_with_variable_name(data: pd.DataFrame) -> None:
    events = np.where(data["g"] == 1, 0, 1)  # no events at all in group g = 1
    with pytest.raises(NotEstimable, match="Loglik converged before variable 'g'"):
        CoxPH().fit(data["time"], events, data[["x", "g"]])
    fit = CoxPH(allow_infinite=True).fit(data["time"], events, data[["x", "g"]])
    assert fit.coef_[1] < -10
    assert "'g'" in fit.warnings_[0]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_missing_or_infinite_time(data: pd.DataFrame, bad: float) -> None:
    time = data["time"].copy()
    time.iloc[5] = bad
    with pytest.raises(
        InputDataError, match=r"durations \(column 'time'\): 1 missing or infinite value"
    ):
        CoxPH().fit(time, data["event"], data[["x"]])


def test_negative_time(data: pd.DataFrame) -> None:
    time = data["time"].copy()
    time.iloc[3] = -1.0
    with pytest.raises(
        InputDataError,
        match=r"durations \(column 'time'\): 1 negative value\(s\), first at position 3",
    ):
        CoxPH().fit(time, data["event"], data[["x"]])


def test_events_not_binary(data: pd.DataFrame) -> None:
    events = data["event"].copy()
    events.iloc[7] = 2
    with pytest.raises(
        InputDataError,
        match=r"events \(column 'event'\): must be coded 0/1, found 2 at position 7",
    ):
        CoxPH().fit(data["time"], events, data[["x"]])


def test_missing_covariate_named(data: pd.DataFrame) -> None:
    X = data[["x", "g"]].copy()
    X.loc[4, "g"] = np.nan
    with pytest.raises(InputDataError, match="'g' has 1 missing"):
        CoxPH().fit(data["time"], data["event"], X)


def test_duplicated_covariate_name(data: pd.DataFrame) -> None:
    X = pd.concat([data[["x"]], data[["x"]]], axis=1)
    with pytest.raises(InputDataError, match="'x' appears more than once"):
        CoxPH().fit(data["time"], data["event"], X)


def test_nullable_integer_events_with_missing(data: pd.DataFrame) -> None:
    events = data["event"].astype("Int64")
    events.iloc[1] = pd.NA
    with pytest.raises(InputDataError, match=r"events \(column 'event'\): .* 1 missing"):
        CoxPH().fit(data["time"], events, data[["x"]])


def test_non_numeric_covariate_named(data: pd.DataFrame) -> None:
    X = data[["x"]].assign(arm=np.where(data["g"] == 1, "a", "b"))
    with pytest.raises(InputDataError, match="'arm' is not numeric"):
        CoxPH().fit(data["time"], data["event"], X)


def test_entry_not_before_stop(data: pd.DataFrame) -> None:
    entry = np.zeros(len(data))
    entry[2] = data["time"].iloc[2]
    with pytest.raises(
        InputDataError, match="entry: must be finite and < durations, .* at position 2"
    ):
        CoxPH().fit(data["time"], data["event"], data[["x"]], entry=entry)


def test_length_mismatch_and_bad_options(data: pd.DataFrame) -> None:
    with pytest.raises(
        InputDataError, match=r"events \(column 'event'\): has 79 values but durations has 80"
    ):
        CoxPH().fit(data["time"], data["event"].iloc[:-1], data[["x"]])
    with pytest.raises(InputDataError, match="ties must be"):
        CoxPH(ties="exact").fit(data["time"], data["event"], data[["x"]])  # type: ignore[arg-type]
    with pytest.raises(InputDataError, match="weights must be > 0"):
        CoxPH().fit(data["time"], data["event"], data[["x"]], weights=np.zeros(len(data)))
    with pytest.raises(InputDataError, match="cluster was given with robust=False"):
        CoxPH(robust=False).fit(data["time"], data["event"], data[["x"]], cluster=data["g"])
    strata = data["g"].copy()
    strata.iloc[9] = np.nan
    with pytest.raises(InputDataError, match=r"strata \(column 'g'\) has 1 missing"):
        CoxPH().fit(data["time"], data["event"], data[["x"]], strata=strata)


def test_errors_are_domain_errors(data: pd.DataFrame) -> None:
    with pytest.raises(CohortEtlError):
        cox_zph(CoxPH().fit(data["time"], data["event"], data[["x"]]), "loglog")  # type: ignore[arg-type]
    with pytest.raises(NotEstimable, match="not been fitted"):
        cox_zph(CoxPH())
