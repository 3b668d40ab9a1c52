"""Bayesian random effects on likelihood profiles, recomputed in R from the sites'
exact Cox log-likelihoods (``coxph`` with ``init = b, iter.max = 0``), and the profile
fixed-effect CI against the likelihood-ratio interval of ``coxph(... + strata(site))``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.network.sites import (
    INFO,
    SITES,
    make_network,
    persons,
    provenance,
    site_data_from_persons,
)
from tests.stats.r_oracle import run_r

from cohort_etl.network.keys import read_key
from cohort_etl.network.package import build_package, read_package, write_package
from cohort_etl.network.pool import pool_network, verify_packages
from cohort_etl.network.profile import MU_STEP, PRIOR_SD_MU, PRIOR_SD_TAU, TAU_GRID

R_RE = r"""
library(survival)
lo <- log(0.01); hi <- log(100)
b <- seq(lo, hi, by = 0.1)
fine <- seq(lo, hi, by = 0.005)
mus <- seq(lo, lo + round((hi - lo) / P$mu_step) * P$mu_step, by = P$mu_step)
taus <- T$tau
total <- matrix(0, length(taus), length(mus))
for (s in unique(d$site)) {
  x <- d[d$site == s, ]
  ll <- sapply(b, function(v) coxph(Surv(time, event) ~ treated, data = x, init = v,
               control = coxph.control(iter.max = 0))$loglik[2])
  f <- splinefun(b, ll, method = "natural")(fine)
  for (r in seq_along(taus)) {
    if (taus[r] == 0) { total[r, ] <- total[r, ] + f[match(round(mus, 6), round(fine, 6))]; next }
    for (k in seq_along(mus)) {
      lw <- dnorm(fine, mus[k], taus[r], log = TRUE)
      lw <- lw - (max(lw) + log(sum(exp(lw - max(lw)))))
      a <- lw + f
      total[r, k] <- total[r, k] + max(a) + log(sum(exp(a - max(a))))
    }
  }
}
lp <- total + matrix(dnorm(mus, 0, P$sd_mu, log = TRUE), length(taus), length(mus), byrow = TRUE) +
  matrix(log(2) + dnorm(taus, 0, P$sd_tau, log = TRUE), length(taus), length(mus))
post <- exp(lp - max(lp))
w <- c(diff(taus) / 2, 0) + c(0, diff(taus) / 2)
mu_d <- colSums(post * w)
tau_d <- rowSums(post) * w
med <- function(x, d) approx(cumsum(d / sum(d)), x, 0.5, ties = "ordered")$y
f3 <- coxph(Surv(time, event) ~ treated + strata(site), data = d)
prof <- function(v) coxph(Surv(time, event) ~ treated + strata(site), data = d, init = v,
                          control = coxph.control(iter.max = 0))$loglik[2]
target <- f3$loglik[2] - qchisq(0.95, 1) / 2
cf <- unname(coef(f3))
result <- list(mu = med(mus, mu_d), tau = med(taus, tau_d),
               lr_lower = uniroot(function(v) prof(v) - target, c(cf - 2, cf), tol = 1e-10)$root,
               lr_upper = uniroot(function(v) prof(v) - target, c(cf, cf + 2), tol = 1e-10)$root)
"""


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("re")
    net = make_network(root, interval_days=90, horizon_days=1800)
    pkgs = []
    for s in SITES:
        data = site_data_from_persons(persons(s), multivariable=False)
        key = read_key(root / "keys" / f"{s.site_id}.key.json")
        pkg = build_package(data, INFO, s.site_id, key, net, provenance(s.site_id))
        pkgs.append(read_package(write_package(pkg, key, root / s.site_id)))
    result, _ = pool_network(verify_packages(pkgs, net), net)
    return result["hazard_ratios"]["outcome:os:matched"]


@pytest.mark.r_oracle
def test_random_effects_and_lr_interval_match_r(pooled: dict[str, Any]) -> None:
    d = pd.concat([persons(s) for s in SITES], ignore_index=True)
    d = d[d["matched"]][["site", "time", "event", "treated"]]
    params = pd.DataFrame({"mu_step": [MU_STEP], "sd_mu": [PRIOR_SD_MU], "sd_tau": [PRIOR_SD_TAU]})
    r = run_r(R_RE, {"d": d, "P": params, "T": pd.DataFrame({"tau": list(TAU_GRID)})})
    re = pooled["profile_random_effects"]
    fe = pooled["profile_fixed_effect"]
    assert abs(re["mu"] - r["mu"]) < 2e-3, (re["mu"], r["mu"])
    assert abs(re["tau"] - r["tau"]) < 5e-3, (re["tau"], r["tau"])
    np.testing.assert_allclose(
        [fe["lower"], fe["upper"]], [r["lr_lower"], r["lr_upper"]], atol=1e-4
    )
    print(
        f"RE mu {re['mu']:.5f} (R {r['mu']:.5f}), tau {re['tau']:.4f} (R {r['tau']:.4f}); "
        f"LR CI {fe['lower']:.5f}..{fe['upper']:.5f} (R {r['lr_lower']:.5f}..{r['lr_upper']:.5f})"
    )
