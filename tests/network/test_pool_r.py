"""Pooled results equal R on the patient-level union of the sites.

Three synthetic sites export their packages in separate processes (secure aggregation:
the coordinator sees only sums); R runs on the union of their persons:

- pooled KM = ``survfit`` on the union's grid-grouped times (1e-10) up to the published
  cut, and the cut is where pooled n at risk drops below the min cell (data cutoff off)
  or the 0.9 quantile of the grouped follow-up (``quantile(type = 1)``);
- site-stratified log-rank = ``survdiff(... + strata(site))``;
- profile-pooled log HR within 1e-3 of ``coxph(... + strata(site))`` for every analysis,
  also for the union split into 36 small sites, some with no events in an arm.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.network.sites import (
    INFO,
    SITES,
    export_in_processes,
    make_network,
    provenance,
    site_data_from_persons,
    union,
)
from tests.stats.r_oracle import run_r

from cohort_etl.network.keys import Network, generate_key, register, write_key
from cohort_etl.network.package import build_package, read_package, write_package
from cohort_etl.network.pool import pool_network, pool_packages, verify_packages

D = 7
MIN_CELL = 5

R_UNION = r"""
library(survival)
m <- d[d$matched == 1, ]
m$g <- pmax(1, ceiling(m$time / D$d)) * D$d
km <- list(); cut <- list()
for (a in c("control", "treated")) {
  x <- m[m$arm_role == a, ]
  f <- survfit(Surv(g, event) ~ 1, data = x)
  grid <- seq(D$d, max(x$g), by = D$d)
  s <- summary(f, times = grid, extend = TRUE)
  km[[a]] <- data.frame(time = s$time, n_risk = s$n.risk, surv = s$surv,
                        std_err = s$std.err, lower = s$lower, upper = s$upper)
  at_risk <- sapply(grid, function(t) sum(x$g >= t))
  cut[[a]] <- grid[min(which(at_risk < D$min_cell))] - D$d
}
lr <- survdiff(Surv(time, event) ~ arm_role + strata(site), data = m)
c1 <- coxph(Surv(time, event) ~ treated + strata(site), data = m)
c2 <- coxph(Surv(time, event) ~ treated + age + female + strata(site), data = d)
result <- list(km = km, cut = cut, q90 = unname(quantile(m$g, 0.9, type = 1)),
               chisq = lr$chisq, matched = unname(coef(c1)),
               mv = as.list(coef(c2)))
"""


@pytest.fixture(scope="module")
def network_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("net3")
    net = make_network(root, interval_days=D, min_cell=MIN_CELL)
    paths = export_in_processes(root)
    loaded = [read_package(p) for p in paths]
    pkgs = verify_packages(loaded, net)
    no_cutoff = dataclasses.replace(net, data_cutoff=None)
    full = pool_network(pkgs, no_cutoff)
    pooled = pool_packages(paths, net, root / "pooled")
    return {"root": root, "net": net, "paths": paths, "full": full, "pooled": pooled}


@pytest.fixture(scope="module")
def r_union() -> dict[str, Any]:
    d = union().assign(matched=lambda x: x["matched"].astype(int))
    return run_r(R_UNION, {"d": d, "D": pd.DataFrame({"d": [D], "min_cell": [MIN_CELL]})})


@pytest.mark.r_oracle
def test_pooled_km_equals_survfit_until_n_at_risk_drops_below_min_cell(
    network_run: dict[str, Any], r_union: dict[str, Any]
) -> None:
    result, tables = network_run["full"]
    km = tables["pooled_km"]
    for arm in ("control", "treated"):
        ours = km[km["arm_role"] == arm].reset_index(drop=True)
        theirs = r_union["km"][arm].iloc[: len(ours)]
        # the cut: the last published interval is the one before pooled n at risk < 5
        assert ours["time"].iloc[-1] == r_union["cut"][arm], arm
        assert result["km"]["os"]["arms"][arm]["ends_because"].startswith("pooled n at risk")
        assert (ours["n_risk"] >= MIN_CELL).all()
        np.testing.assert_array_equal(ours["time"], theirs["time"])
        np.testing.assert_array_equal(ours["n_risk"], theirs["n_risk"])
        for col in ("surv", "std_err", "lower", "upper"):
            np.testing.assert_allclose(ours[col].astype(float), theirs[col], rtol=1e-10,
                                       atol=1e-12, err_msg=col)  # fmt: skip


@pytest.mark.r_oracle
def test_published_km_stops_at_the_90th_percentile_of_follow_up(
    network_run: dict[str, Any], r_union: dict[str, Any]
) -> None:
    km = pd.read_csv(network_run["root"] / "pooled" / "pooled_km.csv")
    info = network_run["pooled"]["km"]["os"]
    assert info["cutoff_time"] == r_union["q90"]
    for arm in ("control", "treated"):
        ours = km[km["arm_role"] == arm]
        assert ours["time"].max() == min(r_union["q90"], r_union["cut"][arm])
        theirs = r_union["km"][arm].iloc[: len(ours)]
        np.testing.assert_allclose(ours["surv"], theirs["surv"], rtol=1e-9)  # 10 digits in CSV


@pytest.mark.r_oracle
def test_stratified_logrank_equals_survdiff(
    network_run: dict[str, Any], r_union: dict[str, Any]
) -> None:
    lr = network_run["pooled"]["logrank_stratified_by_site"]["os"]
    np.testing.assert_allclose(lr["chi_square"], r_union["chisq"], rtol=1e-9)


@pytest.mark.r_oracle
def test_profile_pooled_log_hr_equals_site_stratified_coxph(
    network_run: dict[str, Any], r_union: dict[str, Any]
) -> None:
    hrs = network_run["pooled"]["hazard_ratios"]
    want = {
        "outcome:os:matched": r_union["matched"],
        "cox_model:os_mv:treated": r_union["mv"]["treated"],
        "cox_model:os_mv:age": r_union["mv"]["age"],
    }
    assert set(hrs) == set(want)
    for analysis, coef in want.items():
        got = hrs[analysis]["profile_fixed_effect"]["estimate"]
        print(
            f"{analysis}: profile - coxph = {got - coef:+.2e}, Wald FE - coxph = "
            f"{hrs[analysis]['wald_FE']['estimate'] - coef:+.2e}"
        )
        assert abs(got - coef) < 1e-3, (analysis, got, coef)
        re = hrs[analysis]["profile_random_effects"]
        assert re["mu_lower"] < coef < re["mu_upper"]


SPLIT = 36


@pytest.mark.r_oracle
def test_36_small_sites_with_zero_event_arms(tmp_path: Path) -> None:
    """The union split into 36 small sites: profile pooling stays within 1e-3 of the
    site-stratified Cox although several sites have no events in an arm (their own Wald
    estimate does not exist); the Wald FE of the estimable sites is visibly off."""
    d = union(SITES)
    rng = np.random.default_rng(0)
    share = rng.dirichlet(np.full(SPLIT, 0.6))  # unequal sizes: several sites of 1-5 persons
    d["site"] = [f"s{int(i):02d}" for i in rng.choice(SPLIT, len(d), p=share)]
    m = d[d["matched"]]
    zero_arm = sum(
        1 for _, g in m.groupby("site")
        if g.groupby("arm_role")["event"].sum().reindex(["control", "treated"]).fillna(0).min() == 0
    )  # fmt: skip
    assert zero_arm >= 3, "the split should have sites with a zero-event arm"
    assert d["site"].nunique() >= 30
    net = Network(round_id="split", study=INFO.study, interval_days=30, min_cell=MIN_CELL,
                  table1_levels={"race": ["asian", "black", "white"]})  # fmt: skip
    keys = {}
    for site in sorted(d["site"].unique()):
        keys[site] = generate_key(site)
        _, pub = write_key(keys[site], tmp_path / "keys")
        register(net, pub)
    pkgs = []
    for site, part in d.groupby("site"):
        data = site_data_from_persons(part, multivariable=False)
        pkg = build_package(data, INFO, str(site), keys[str(site)], net, provenance(str(site)))
        pkgs.append(read_package(write_package(pkg, keys[str(site)], tmp_path / str(site))))
    result, _ = pool_network(verify_packages(pkgs, net), net)
    r = run_r(
        "library(survival)\n"
        "f <- coxph(Surv(time, event) ~ treated + strata(site), data = d)\n"
        "result <- list(coef = unname(coef(f)))",
        {"d": m},
    )
    entry = result["hazard_ratios"]["outcome:os:matched"]
    got = entry["profile_fixed_effect"]["estimate"]
    assert abs(got - r["coef"]) < 1e-3, (got, r["coef"])
    assert len(entry["sites_without_wald"]) >= zero_arm
    wald_bias = entry["wald_FE"]["estimate"] - r["coef"]
    print(
        f"36 sites: profile {got - r['coef']:+.2e}, Wald FE bias {wald_bias:+.3f}, "
        f"{zero_arm} sites with a zero-event arm"
    )
