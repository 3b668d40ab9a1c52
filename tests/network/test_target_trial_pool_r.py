"""The pooled target-trial estimate equals R's site-stratified weighted Cox on the union.

Three simulated sites (date-based persons, tests/network/sites.py) each run the
emulation with the engine's own functions (eligible persons of ``study_rows``, clones,
censoring models and weights fitted on the site's persons only), export the profile of
their weighted log partial likelihood (pass 1) and, at the pooled log HR of pass 1 (the
anchor), the pieces (U, A, B) of the person-clustered robust variance (pass 2). The
site side writes its clone rows and weights; R fits
``coxph(Surv(start, stop, event) ~ arm + strata(site), weights = w, cluster = id,
ties = "efron")`` on their union, the independent reference of the Cox and sandwich
part (the weights themselves are R-checked in tests/designs/test_target_trial_r.py).
Also: nothing per site in the clear but its own estimate (package.json keys, the
site estimate's fields), and the masked blocks readable only in the sum.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.network.sites import INFO, SITES, dated_persons, provenance, target_trial_site_data
from tests.network.test_secagg import CLEAR_KEYS
from tests.stats.r_oracle import run_r

from cohort_etl.network import secagg
from cohort_etl.network.keys import Network, generate_key, register, write_key
from cohort_etl.network.package import (
    anchors_json,
    build_package,
    read_anchors,
    read_package,
    write_package,
)
from cohort_etl.network.pool import pool_network, verify_packages
from cohort_etl.network.report import render
from cohort_etl.network.site import contribution

R_TT = r"""
library(survival)
fit <- coxph(Surv(entry, time, event) ~ arm + strata(site), data = d, weights = weight,
             cluster = cluster, ties = "efron")
per_site <- sapply(sort(unique(d$site)), function(s) {
  f <- coxph(Surv(entry, time, event) ~ arm, data = d[d$site == s, ], weights = weight,
             cluster = cluster, ties = "efron")
  c(unname(coef(f)), unname(sqrt(vcov(f)[1, 1])))
})
result <- list(coef = unname(coef(fit)), robust_se = unname(sqrt(vcov(fit)[1, 1])),
               naive_se = unname(sqrt(fit$naive.var[1, 1])), n = nrow(d),
               persons = length(unique(d$cluster)), site_coef = unname(per_site[1, ]),
               site_se = unname(per_site[2, ]))
"""


def _passes(
    data: dict[str, Any], root: Path, passes: int
) -> tuple[list[dict[str, Any]], list[list[Path]]]:
    net = Network(round_id="tt", study=INFO.study, interval_days=30)
    keys = {}
    for site in data:
        keys[site] = generate_key(site)
        _, pub = write_key(keys[site], root / "keys")
        register(net, pub)
    out, paths = [], []
    anchors = None
    for number in range(1, passes + 1):
        pkgs, written = [], []
        for site, sd in data.items():
            pkg = build_package(sd, INFO, site, keys[site], net, provenance(site),
                                anchors=anchors)  # fmt: skip
            written.append(write_package(pkg, keys[site], root / f"{site}-{number}"))
            pkgs.append(read_package(written[-1]))
        nuisance: dict[str, np.ndarray] = {}
        result, tables = pool_network(verify_packages(pkgs, net), net, nuisance)
        assert result["pass"]["number"] == number
        assert "target_trial" in set(tables["pooled_hazard_ratios"]["analysis"])
        html = render(result, tables)
        assert "Target-trial emulation (the clinical question)" in html
        assert html.count("aria-label='forest plot (target trial)'") == 1
        assert ("no CI yet" in html) == (number == 1)
        out.append(result)
        paths.append(written)
        path = root / f"anchors-{number}.json"
        path.write_bytes(anchors_json(net.round_id, number + 1, nuisance))
        anchors = read_anchors(path)
    return out, paths


def _sites(split: int | None) -> dict[str, pd.DataFrame]:
    """The three simulated sites, or their union split at random into ``split`` sites."""
    d = pd.concat([dated_persons(s) for s in SITES], ignore_index=True)
    if split is not None:
        rng = np.random.default_rng(1)
        share = rng.dirichlet(np.full(split, 0.6))
        d["site"] = [f"s{int(i):02d}" for i in rng.choice(split, len(d), p=share)]
    return {str(s): part for s, part in d.groupby("site")}


@pytest.mark.r_oracle
@pytest.mark.parametrize(
    ("split", "options"),
    [(None, {}), (None, {"stabilized": True, "truncate_percentile": 99}), (36, {})],
    ids=["3 sites", "3 sites, stabilised weights truncated at p99", "36-way split"],
)
def test_pooled_target_trial_equals_stratified_weighted_coxph(
    tmp_path: Path, split: int | None, options: dict[str, Any]
) -> None:
    site_data, frames, engine = {}, [], {}
    for site, persons in _sites(split).items():
        sd, log_hr = target_trial_site_data(persons, **options)
        site_data[site] = sd
        engine[site] = log_hr
        # the site side writes its clone rows and own weights for the reference
        frames.append(sd.cox[0].data.assign(site=site))
    assert len(site_data) >= 3
    union = pd.concat(frames, ignore_index=True)
    r = run_r(R_TT, {"d": union})
    assert r["n"] == len(union) and r["persons"] == union["cluster"].nunique()
    results, paths = _passes(site_data, tmp_path, 3)

    # pass 1: the point estimate from the summed weighted profiles; no CI yet
    tt1 = results[0]["target_trial"]
    assert tt1["question"] and "clinical question" in tt1["question"]
    assert tt1["se"] is None and tt1["lower"] is None and "refinement pass" in tt1["reason"]
    d1 = tt1["estimate"] - r["coef"]
    # pass 2: one Newton step at the anchor, robust SE from the summed sandwich pieces
    # at the anchor (pass 3: at the pass-2 estimate)
    tt2, tt3 = results[1]["target_trial"], results[2]["target_trial"]
    assert tt2["anchor"] == tt1["estimate"] and tt3["anchor"] == tt2["estimate"]
    d2, d3 = tt2["estimate"] - r["coef"], tt3["estimate"] - r["coef"]
    dse2, dse3 = tt2["se"] - r["robust_se"], tt3["se"] - r["robust_se"]
    print(f"target trial, {len(site_data)} sites {options} ({r['n']} clone rows, {r['persons']} persons): coxph "
          f"{r['coef']:+.6f} (robust SE {r['robust_se']:.6f}, naive {r['naive_se']:.6f}); "
          f"pass 1 {d1:+.2e}; pass 2 {d2:+.2e}, robust SE {dse2:+.2e}; pass 3 {d3:+.2e}, "
          f"robust SE {dse3:+.2e}")  # fmt: skip
    assert abs(d1) < 1e-4
    assert abs(d2) < 1e-8 and abs(d3) < 1e-8
    assert abs(dse2) < 1e-6 and abs(dse3) < 1e-9
    assert tt2["lower"] == pytest.approx(tt2["estimate"] - 1.959963984540054 * tt2["se"])
    assert abs(r["robust_se"] - r["naive_se"]) > 1e-3  # the sandwich matters here
    # per-site rows: the site's own estimate (engine log HR, R's robust SE per site)
    # (R's per-site fits: the sites with clone rows, in order; a site without an
    # estimable strategy contrast, e.g. no event in one strategy, reports none)
    with_rows = sorted(union["site"].unique())
    estimable = 0
    for site in sorted(site_data):
        est = tt2["sites"][site]
        assert est["profile"]["lower"] is None  # no LR interval of a pseudo-likelihood
        if engine[site] is None:
            assert est["coef"] is None and est["reason"], (site, est)
            continue
        i = with_rows.index(site)
        estimable += 1
        assert est["coef"] == pytest.approx(engine[site], abs=1e-9)
        assert est["coef"] == pytest.approx(r["site_coef"][i], abs=1e-8)
        assert est["se"] == pytest.approx(r["site_se"][i], rel=1e-7)
    if split is None:
        assert estimable == len(site_data)
    else:  # small sites: some without an emulation, some with an event-free strategy
        empty = len(site_data) - len(with_rows)
        print(
            f"{split}-way split: {len(site_data)} sites, {empty} without an emulation "
            f"(< 2 eligible persons), {len(site_data) - estimable} without a site estimate"
        )
        assert len(site_data) >= 30 and estimable < len(site_data)
    assert tt2["wald_FE"]["estimate"] is not None

    # disclosure: the clear part holds the settings and the site's own estimate only
    for number, written in enumerate(paths, start=1):
        masked, plain = {}, {}
        for p in written:
            pkg, body = read_package(p)
            meta = json.loads(body)
            assert set(meta) <= CLEAR_KEYS
            assert set(meta["site_estimates"]) == {"target_trial"}
            est = meta["site_estimates"]["target_trial"]
            assert set(est) <= {"coef", "se", "se_kind", "reason", "profile"}
            assert set(est["profile"]) == {"estimate", "lower", "upper", "reason"}
            assert set(meta["pass"]) <= {"number", "anchors_sha256", "robust_at"}
            keys = [c["key"] for c in meta["layout"]]
            if number == 1:
                assert keys == ["wprofile|target_trial"]
            else:  # the anchor is the network's pooled value, the same at every site
                assert keys == ["wprofile|target_trial", "sandwich|target_trial"]
                # (pooled.json holds it rounded to 10 digits, anchors.json exactly)
                anchor = meta["pass"]["robust_at"]["target_trial"]
                assert set(meta["pass"]["robust_at"]) == {"target_trial"}
                assert anchor == pytest.approx(results[number - 2]["target_trial"]["estimate"],
                                               rel=1e-9)  # fmt: skip
            comps, vals = contribution(
                site_data[pkg.site_id], Network(round_id="tt", study=INFO.study),
                None if number == 1 else {"target_trial": np.array([anchor])},
            )  # fmt: skip
            ring: list[int] = []
            for c, v in zip(comps, vals, strict=True):
                ring.extend(secagg.encode(v, c.kind))
            masked[pkg.site_id], plain[pkg.site_id] = pkg.masked, ring
            same = sum(a == b for a, b in zip(pkg.masked, ring, strict=True))
            assert same == 0, (pkg.site_id, number, same)
        total = secagg.aggregate(list(masked.values()))
        assert total == secagg.aggregate(list(plain.values()))
