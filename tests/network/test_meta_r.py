"""Fixed-effect and DerSimonian-Laird meta-analysis against R metafor (``rma``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.stats.r_oracle import run_r

from cohort_etl.errors import InputDataError, NotEstimable
from cohort_etl.network.meta import meta_analysis

RTOL = 1e-10

# log HRs with SEs: heterogeneous; homogeneous enough that the DL tau^2 is truncated at 0;
# a wide spread of SEs; two sites; many sites drawn from a random-effects model
_rng = np.random.default_rng(20261122)
_k = 12
_se = _rng.uniform(0.08, 0.6, _k)
DATASETS: dict[str, tuple[list[float], list[float]]] = {
    "heterogeneous": ([-1.2, -0.1, 0.4, -0.8, 0.9], [0.2, 0.25, 0.3, 0.15, 0.4]),
    "tau2_truncated": ([-0.50, -0.52, -0.47, -0.55], [0.2, 0.3, 0.25, 0.35]),
    "wide_se": ([0.05, -0.3, 1.1], [0.05, 0.5, 1.5]),
    "two_sites": ([-1.0566, -0.6], [0.2171, 0.31]),
    "random_effects_12": (
        list(-0.4 + _rng.normal(0, 0.3, _k) + _rng.normal(0, _se)),
        list(_se),
    ),
}

R_META = r"""
library(metafor)
out <- list()
for (name in unique(d$set)) {
  x <- d[d$set == name, ]
  for (m in c("FE", "DL")) {
    f <- rma(yi = x$yi, sei = x$sei, method = m)
    out[[paste(name, m, sep = "__")]] <- list(
      b = as.numeric(f$b), se = f$se, ci_lb = f$ci.lb, ci_ub = f$ci.ub, z = f$zval,
      p = f$pval, QE = f$QE, QEp = f$QEp, I2 = f$I2, tau2 = f$tau2,
      w = as.numeric(weights(f)))
  }
}
result <- out
"""


@pytest.fixture(scope="module")
def metafor() -> dict[str, Any]:
    frame = pd.concat(
        [pd.DataFrame({"set": k, "yi": y, "sei": s}) for k, (y, s) in DATASETS.items()],
        ignore_index=True,
    )
    return run_r(R_META, {"d": frame})


@pytest.mark.r_oracle
@pytest.mark.parametrize("method", ["FE", "DL"])
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_matches_metafor(metafor: dict[str, Any], name: str, method: str) -> None:
    y, s = DATASETS[name]
    r = metafor[f"{name}__{method}"]
    res = meta_analysis(y, s, method=method)
    close = {"rtol": RTOL, "atol": 1e-14}
    np.testing.assert_allclose(res.estimate, r["b"], **close)
    np.testing.assert_allclose(res.se, r["se"], **close)
    np.testing.assert_allclose([res.lower, res.upper], [r["ci_lb"], r["ci_ub"]], **close)
    np.testing.assert_allclose(res.z, r["z"], **close)
    np.testing.assert_allclose(res.p_value, r["p"], rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(res.q, r["QE"], **close)
    np.testing.assert_allclose(res.q_p_value, r["QEp"], **close)
    np.testing.assert_allclose(res.i_squared, r["I2"] / 100, **close)
    np.testing.assert_allclose(res.tau_squared, r["tau2"], **close)
    np.testing.assert_allclose(res.weights, np.asarray(r["w"]) / 100, **close)
    assert res.q_df == len(y) - 1
    assert res.hr == pytest.approx(np.exp(r["b"]), rel=RTOL)


@pytest.mark.r_oracle
def test_datasets_cover_truncation_and_heterogeneity(metafor: dict[str, Any]) -> None:
    """The fixed sets exercise both branches of the DL estimator."""
    assert metafor["tau2_truncated__DL"]["tau2"] == 0
    assert metafor["tau2_truncated__DL"]["QE"] < 3  # Q < k - 1: truncated at 0
    assert metafor["heterogeneous__DL"]["tau2"] > 0.1
    fe, dl = (
        meta_analysis(*DATASETS["tau2_truncated"], method="FE"),
        meta_analysis(*DATASETS["tau2_truncated"], method="DL"),
    )
    assert dl.estimate == fe.estimate and dl.se == fe.se


def test_one_estimate_pools_to_itself_without_heterogeneity() -> None:
    res = meta_analysis([-0.7], [0.2], method="DL", labels=["siteA"])
    assert res.k == 1 and res.estimate == -0.7 and res.se == pytest.approx(0.2)
    assert res.q is None and res.i_squared is None and res.tau_squared is None
    assert res.reason is not None and "k = 1" in res.reason
    assert res.to_dict()["weights"] == {"siteA": 1.0}


def test_no_estimates_and_bad_input_are_clear_errors() -> None:
    with pytest.raises(NotEstimable, match="k = 0"):
        meta_analysis([], [])
    with pytest.raises(InputDataError, match="'b'.*> 0"):
        meta_analysis([0.1, 0.2], [0.1, 0.0], labels=["a", "b"])
    with pytest.raises(InputDataError, match="not finite"):
        meta_analysis([float("nan")], [0.1])
    with pytest.raises(InputDataError, match="2 estimates but 1"):
        meta_analysis([0.1, 0.2], [0.1])
    with pytest.raises(InputDataError, match="method"):
        meta_analysis([0.1], [0.1], method="REML")
