"""The counterfactual HSCT truth and the shared hazard model (hazards.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.synthetic.conftest import Generated

from cohort_etl.db import connected
from cohort_etl.synthetic import hazards as hz
from cohort_etl.synthetic.natural_history import draw_time
from cohort_etl.synthetic.params import SynthParams
from cohort_etl.synthetic.truth_hsct import CoreCovariates, covariates_of, hsct_truth


def _covariates(n: int = 400) -> CoreCovariates:
    rng = np.random.default_rng(5)
    return covariates_of(rng.uniform(2, 76, n), rng.integers(1, 4, n), rng.random(n) < 0.3)


def test_vectorised_hazard_inversion_equals_the_scalar_one() -> None:
    rng = np.random.default_rng(3)
    n, k = 300, 3
    starts = np.sort(rng.uniform(0, 800, (n, k)), axis=1)
    starts[:, 0] = 0.0
    rates = rng.uniform(0, 0.01, (n, k))
    rates[rng.random((n, k)) < 0.2] = 0.0
    target = rng.exponential(1.0, n)
    vec = hz.piecewise_time(target, starts, rates)
    for i in range(n):
        ref = draw_time(float(target[i]), list(zip(starts[i], rates[i], strict=True)))
        assert vec[i] == ref or (math.isinf(vec[i]) and math.isinf(ref))


def test_constant_hazard_gives_exponential_times() -> None:
    """Closed form: with rate r the time is target / r."""
    target = np.array([0.1, 1.0, 2.5])
    got = hz.piecewise_time(target, np.zeros((3, 1)), np.full((3, 1), 0.02))
    np.testing.assert_allclose(got, target / 0.02, rtol=1e-15)


def test_no_effect_gives_hazard_ratio_one() -> None:
    truth = hsct_truth(SynthParams(hsct_hr_os=1.0, hsct_hr_relapse=1.0), _covariates(), 50_000)
    assert truth.os_hr_itt == pytest.approx(1.0, abs=1e-6)
    assert truth.os_hr_att == pytest.approx(1.0, abs=1e-6)


def test_without_relapse_and_heterogeneity_the_att_is_the_direct_effect() -> None:
    """No relapse and one death rate for everyone: among the transplanted the hazards differ
    only after the HSCT day, by exactly ``hsct_hr_os`` (proportional), so the Cox HR of the
    two counterfactual worlds converges to it (sampling error ~0.01 at 200k)."""
    p = SynthParams(relapse_rate=0.0, death_coef_age10=0.0, death_coef_burden=0.0, hsct_hr_os=0.5)
    truth = hsct_truth(p, _covariates())
    assert truth.os_hr_att == pytest.approx(0.5, abs=0.02)
    # intention to transplant: deaths before the planned day dilute the effect
    assert 0.5 < truth.os_hr_itt < 1.0


def test_truth_is_deterministic_by_seed() -> None:
    a = hsct_truth(SynthParams(seed=3), _covariates(), 20_000)
    b = hsct_truth(SynthParams(seed=3), _covariates(), 20_000)
    c = hsct_truth(SynthParams(seed=4), _covariates(), 20_000)
    assert a == b
    assert a.os_hr_itt != c.os_hr_itt


def test_truth_rows_are_written(small_cdm: Generated) -> None:
    with connected(small_cdm.profile, read_only=True) as db:
        ref = db.table_ref("synthetic_truth", "parameters")
        frame = db.query_df(f"select name, value from {ref}")
    rows = dict(zip(frame["name"], frame["value"], strict=True))
    itt, att = float(rows["truth.hsct_os_hr_itt"]), float(rows["truth.hsct_os_hr_att"])
    assert 0 < att < 1 and 0 < itt < 1
    assert int(rows["truth.hsct_n_simulated"]) == 200_000
    strategy = float(rows["truth.hsct_os_hr_strategy"])
    assert 0 < strategy < 1
    for label in ("os_surv", "relapse_cif", "rfs"):
        for years in (1, 5):
            a = float(rows[f"truth.hsct_{label}_{years}y_within_grace"])
            b = float(rows[f"truth.hsct_{label}_{years}y_never"])
            diff = float(rows[f"truth.hsct_{label}_{years}y_difference"])
            assert diff == pytest.approx(a - b, abs=2e-6)


def test_strategy_truth_without_effect_is_null() -> None:
    """No HSCT effect on death or relapse: the two worlds share every random number, so
    the strategy worlds are identical up to rounding in the piecewise hazard inversion
    (a breakpoint at the HSCT day with equal rates on both sides)."""
    truth = hsct_truth(SynthParams(hsct_hr_os=1.0, hsct_hr_relapse=1.0), _covariates(), 20_000)
    s = truth.strategy
    assert s is not None
    assert s.os_hr == pytest.approx(1.0, abs=1e-5)
    for table in (s.os_survival, s.relapse_cif, s.rfs):
        for years in (1, 5):
            assert table[(years, "within_grace")] == pytest.approx(
                table[(years, "never")], abs=1e-4
            )


def test_strategy_truth_without_relapse_or_heterogeneity() -> None:
    """No relapse, one death rate, every patient a responder: the *within grace* world
    multiplies each patient's hazard by ``hsct_hr_os`` from the planned day on, so its
    5-year survival is the closed form exp(-r (d + hr (1826 - d))) averaged over the
    planned days d (simulated with the same timing draw)."""
    import math as m

    p = SynthParams(
        relapse_rate=0.0,
        death_coef_age10=0.0,
        death_coef_burden=0.0,
        hsct_hr_os=0.5,
        p_cr_after_cart=1.0,
    )
    truth = hsct_truth(p, _covariates(), 200_000)
    s = truth.strategy
    assert s is not None
    r = p.death_rate / 365.25
    rng = np.random.default_rng(0)
    d = np.clip(rng.lognormal(m.log(p.hsct_median_days), 0.35, 400_000), 40, p.hsct_window_days - 5)
    expected = float(np.mean(np.exp(-r * (d + 0.5 * (1826 - d)))))
    assert s.os_survival[(5, "never")] == pytest.approx(m.exp(-r * 1826), abs=0.004)
    assert s.os_survival[(5, "within_grace")] == pytest.approx(expected, abs=0.004)
    assert s.relapse_cif[(5, "never")] == 0.0
