"""Sensitivity analyses pooled from likelihood profiles equal R's site-stratified Cox on
the patient-level union.

Each site runs the engine's own row selection (``study_rows``) and sensitivity data
(``sensitivity_data``: unmatched, naive ever-treated, landmark with and without the
event-free rule, time-varying exposure as (start, stop] rows; unadjusted and adjusted
for age, sex and race) on date-based persons and exports the profile of the exposure's
coefficient. R rebuilds every data set from the dates itself (complete-window rule,
times capped at the cut-off, landmark rows, counting-process split) and fits
``coxph(... + strata(site))``; the time-varying model is
``coxph(Surv(start, stop, event) ~ exposed + strata(site))``. Checked on three sites
and (``check_36_small_sites``, run by ``python -m bench network_sensitivity``) on their
union split into 36 small sites (some with no events in an exposure group
or no exposed persons at all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.network.sites import (
    CUTOFF,
    INFO,
    SITES,
    dated_persons,
    provenance,
    sensitivity_site_data,
)
from tests.stats.r_oracle import run_r

from cohort_etl.network.keys import Network, generate_key, register, write_key
from cohort_etl.network.package import (
    anchors_json,
    build_package,
    read_anchors,
    read_package,
    write_package,
)
from cohort_etl.network.pool import pool_network, verify_packages

TOL = 1e-3
PASSES = 3

R_SENSITIVITY = r"""
library(survival)
cut <- as.Date(P$cutoff)
d$index <- as.Date(d$index_date)
d <- d[d$index <= cut - 180, ]                       # complete 180-day window
cens <- pmin(as.Date(d$end_of_followup_date), cut)
death <- as.Date(d$death_date)
ev <- !is.na(death) & death <= cens
d$time <- as.numeric(ifelse(ev, death, cens) - as.numeric(d$index))
d$event <- as.integer(ev)
d$treated <- as.integer(d$arm == "treated")
d$h <- as.numeric(as.Date(d$hsct_date) - d$index)
d$rel <- as.numeric(as.Date(d$relapse_date) - d$index)
d$ever <- as.integer(!is.na(d$h))
d$race <- factor(d$race)
lm <- d[d$time > 100, ]
lm$exposed <- as.integer(!is.na(lm$h) & lm$h <= 100)
lm$t <- lm$time - 100
ef <- lm[is.na(lm$rel) | lm$rel > 100, ]
# counting process: (0, h] unexposed, (h, T] exposed when 0 < h < T
d$tt <- pmax(d$time, 0.5)
sp <- !is.na(d$h) & d$h > 0 & d$h < d$tt
first <- data.frame(site = d$site, start = 0, stop = ifelse(sp, d$h, d$tt),
                    event = ifelse(sp, 0L, d$event),
                    exposed = as.integer(!is.na(d$h) & d$h <= 0),
                    age = d$age, female = d$female, race = d$race)
second <- data.frame(site = d$site[sp], start = d$h[sp], stop = d$tt[sp], event = d$event[sp],
                     exposed = 1L, age = d$age[sp], female = d$female[sp], race = d$race[sp])
tv <- rbind(first, second)
co <- function(f, data) unname(coef(coxph(f, data = data, ties = "efron"))[1])
result <- list(
  unmatched_os = co(Surv(time, event) ~ treated + strata(site), d),
  unmatched_os_adjusted = co(Surv(time, event) ~ treated + age + female + race + strata(site), d),
  naive_ever_treated_os = co(Surv(time, event) ~ ever + strata(site), d),
  landmark_os_day100 = co(Surv(t, event) ~ exposed + strata(site), lm),
  landmark_os_day100_adjusted = co(Surv(t, event) ~ exposed + age + female + race + strata(site), lm),
  landmark_os_day100_event_free = co(Surv(t, event) ~ exposed + strata(site), ef),
  time_varying_os = co(Surv(start, stop, event) ~ exposed + strata(site), tv),
  time_varying_os_adjusted = co(Surv(start, stop, event) ~ exposed + age + female + race +
                                strata(site), tv),
  n = nrow(d), n_landmark = nrow(lm), n_event_free = nrow(ef), n_tv = nrow(tv))
"""


def _pooled(d: pd.DataFrame, root: Path, round_id: str, passes: int) -> list[dict[str, Any]]:
    """The hazard ratios of each pass: pass 1 expands every site's likelihood in the
    adjustment terms around its own estimates, each later pass around the pooled ones of
    the pass before (anchors, as ``pool`` writes them to anchors.json)."""
    net = Network(round_id=round_id, study=INFO.study, interval_days=30)
    keys = {}
    for site in sorted(d["site"].unique()):
        keys[site] = generate_key(site)
        _, pub = write_key(keys[site], root / "keys")
        register(net, pub)
    data = {str(site): sensitivity_site_data(part) for site, part in d.groupby("site")}
    out: list[dict[str, Any]] = []
    anchors = None
    for number in range(1, passes + 1):
        pkgs = []
        for site, sd in data.items():
            pkg = build_package(sd, INFO, site, keys[site], net, provenance(site),
                                anchors=anchors)  # fmt: skip
            pkgs.append(read_package(write_package(pkg, keys[site], root / f"{site}-{number}")))
        nuisance: dict[str, np.ndarray] = {}
        result, _ = pool_network(verify_packages(pkgs, net), net, nuisance)
        assert result["pass"]["number"] == number
        out.append(result["hazard_ratios"])
        path = root / f"anchors-{number}.json"
        path.write_bytes(anchors_json(round_id, number + 1, nuisance))
        anchors = read_anchors(path)
    return out


def _r(d: pd.DataFrame) -> dict[str, Any]:
    return run_r(R_SENSITIVITY, {"d": d, "P": pd.DataFrame({"cutoff": [CUTOFF]})})


ADJUSTED = ("unmatched_os_adjusted", "landmark_os_day100_adjusted", "time_varying_os_adjusted")


def _compare(passes: list[dict[str, Any]], r: dict[str, Any], what: str) -> dict[str, float]:
    """Every analysis within TOL of R after the last pass; the unadjusted ones (no other
    terms: exact site-stratified likelihood) already after the first."""
    keys = [k for k in r if k.split("_")[0] in ("unmatched", "naive", "landmark", "time")]
    assert len(keys) == 8, (keys, r.get("_warnings"))
    for number, hrs in enumerate(passes, start=1):
        assert {f"sensitivity:{k}" for k in keys} == set(hrs)
        diffs = {}
        for k in keys:
            entry = hrs[f"sensitivity:{k}"]
            assert entry["label"].startswith("OS: "), entry["label"]
            got = entry["profile_fixed_effect"]["estimate"]
            assert got is not None, (k, entry["profile_fixed_effect"]["reason"])
            diffs[k] = got - r[k]
            print(f"{what}, pass {number}: {k}: profile - coxph = {diffs[k]:+.2e} "
                  f"(coxph {r[k]:+.4f})")  # fmt: skip
        for k, diff in diffs.items():
            if number == len(passes) or k not in ADJUSTED:
                assert abs(diff) < TOL, (what, number, k, diff)
    return {k: abs(diff) for k, diff in diffs.items()}


@pytest.mark.r_oracle
@pytest.mark.slow
def test_sensitivity_profiles_pool_to_site_stratified_coxph(tmp_path: Path) -> None:
    d = pd.concat([dated_persons(s) for s in SITES], ignore_index=True)
    r = _r(d)
    assert r["n"] < len(d) and r["n_landmark"] < r["n"] and r["n_tv"] > r["n"]
    _compare(_pooled(d, tmp_path, "sens3", PASSES), r, "3 sites")


SPLIT = 36


def check_36_small_sites(tmp_path: Path) -> dict[str, float]:
    """The union split into 36 small sites, some with no event in an exposure group or
    nobody exposed: every analysis within TOL of R after the last pass (AssertionError
    otherwise); returns |pooled - R| per analysis after the last pass. 10-45 minutes on 2
    cores, so not part of ``make test``: ``python -m bench network_sensitivity`` runs it
    (bench/bench_network_sensitivity.py); the three-site test above covers the same code."""
    d = pd.concat([dated_persons(s) for s in SITES], ignore_index=True)
    rng = np.random.default_rng(1)
    share = rng.dirichlet(np.full(SPLIT, 0.6))
    d["site"] = [f"s{int(i):02d}" for i in rng.choice(SPLIT, len(d), p=share)]
    assert d["site"].nunique() >= 30
    # sites whose landmark population has no event among the exposed or no exposed at all
    data = {s: sensitivity_site_data(part) for s, part in d.groupby("site")}
    empty = 0
    for sd in data.values():
        a = next(a for a in sd.cox if a.key == "sensitivity:landmark_os_day100")
        exposed = a.data["exposed"] == 1
        if a.data.loc[exposed, "event"].sum() == 0 or a.data.loc[~exposed, "event"].sum() == 0:
            empty += 1
    assert empty >= 3, empty
    return _compare(_pooled(d, tmp_path, "sens36", PASSES), _r(d),
                    f"{SPLIT} sites ({empty} zero-event arms)")  # fmt: skip
