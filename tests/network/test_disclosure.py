"""Property test over random small networks: the published tables have no count in
(0, min_cell), and no small count of the patient-level union (a Table 1 cell, an
unmatched count, a rule's removal, events or non-events of an arm) is determined by the
published tables.

Method (independent of the implementation's rank test): for each block of related
counts the finest cells are nonnegative unknowns; every published number is a linear
equation on them. For every count whose true value (from the union's persons) is in
(0, min_cell), linear programming (scipy ``linprog``) gives the smallest and largest
value consistent with all published equations; the count is protected when the two
differ by at least one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog
from tests.network.sites import (
    INFO,
    RACES,
    SiteSpec,
    make_network,
    persons,
    provenance,
    site_data_from_persons,
)

from cohort_etl.network.keys import read_key
from cohort_etl.network.package import build_package, read_package, write_package
from cohort_etl.network.pool import pool_packages

N_NETWORKS = 30


def _bounds(
    n_cells: int, eqs: list[tuple[list[int], float]], target: list[int]
) -> tuple[float, float]:
    a = np.zeros((len(eqs), n_cells))
    b = np.zeros(len(eqs))
    for r, (idx, val) in enumerate(eqs):
        a[r, idx] = 1
        b[r] = val
    c = np.zeros(n_cells)
    c[target] = 1
    kw: dict[str, Any] = {"A_eq": a, "b_eq": b} if eqs else {}
    lo = linprog(c, bounds=[(0, None)] * n_cells, method="highs", **kw)
    hi = linprog(-c, bounds=[(0, None)] * n_cells, method="highs", **kw)
    assert lo.status == 0, "published tables are inconsistent with the truth"
    return float(lo.fun), float(-hi.fun) if hi.status == 0 else float("inf")


def _protected(n_cells: int, eqs: list[tuple[list[int], float]], target: list[int]) -> bool:
    lo, hi = _bounds(n_cells, eqs, target)
    return hi - lo >= 1 - 1e-7


def _network(seed: int, root: Path) -> tuple[pd.DataFrame, dict[str, Any], int]:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 6))
    min_cell = int(rng.choice([5, 11]))
    specs = []
    for i in range(k):
        p = rng.dirichlet([0.5, 1, 3])
        specs.append(SiteSpec(f"s{i}", int(rng.integers(6, 60)), 0.003, seed * 100 + i,
                              matched_share=float(rng.uniform(0.5, 0.97)),
                              race_p=(float(p[0]), float(p[1]), float(p[2]))))  # fmt: skip
    net = make_network(root, specs, interval_days=30, min_cell=min_cell, horizon_days=900)
    data = []
    for s in specs:
        d = persons(s)
        removed = [0, int(rng.integers(0, 300)), int(rng.integers(0, 8)), int(rng.integers(0, 8))]
        total = s.n + sum(removed)
        rules = []
        for name, r in zip(["all", "r1", "r2", "r3"], removed, strict=True):
            total -= r
            rules.append((name, total))
        site = site_data_from_persons(d, rules, multivariable=False)
        site.cox = []
        key = read_key(root / "keys" / f"{s.site_id}.key.json")
        pkg = build_package(site, INFO, s.site_id, key, net, provenance(s.site_id))
        write_package(pkg, key, root / "packages" / s.site_id)
        data.append(d.assign(removed=[removed] * len(d)))
    paths = [root / "packages" / s.site_id for s in specs]
    assert all(read_package(p) for p in paths)
    pooled = pool_packages(paths, net, root / "pooled")
    return pd.concat(data, ignore_index=True), pooled, min_cell


def _counts_ok(values: Any, min_cell: int, where: str) -> None:
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        assert not 0 < float(v) < min_cell, f"{where}: published small count {v}"


@pytest.mark.parametrize("seed", range(N_NETWORKS))
def test_random_network_publishes_nothing_small(tmp_path: Path, seed: int) -> None:
    union, pooled, mc = _network(seed, tmp_path)
    out = tmp_path / "pooled"
    t1 = pd.read_csv(out / "pooled_table1.csv", keep_default_na=False, na_values=[""])
    att = pd.read_csv(out / "pooled_attrition.csv", keep_default_na=False, na_values=[""])
    km = pd.read_csv(out / "pooled_km.csv")
    assert json.loads((out / "pooled.json").read_text())["min_cell"] == mc
    # 1. no published count in (0, min_cell), in any table
    _counts_ok(t1["n"], mc, "table1 n")
    _counts_ok(t1["count"], mc, "table1 count")
    _counts_ok(att["persons_remaining"], mc, "attrition remaining")
    _counts_ok(att["persons_removed"], mc, "attrition removed")
    _counts_ok(km["n_risk"], mc, "km n_risk")
    for arms in pooled["binary"].values():
        for e in arms.values():
            _counts_ok([e["events"], e["n"]], mc, "binary")
    for e in pooled["logrank_stratified_by_site"].values():
        _counts_ok([*(e["observed"] or []), e["total_events"]], mc, "logrank")
    checked = 0
    # 2. Table 1: cells (level incl. the rest, matched / unmatched) per variable and arm
    for var, levels in (("female", ["1"]), ("race", RACES)):
        for role in ("control", "treated"):
            arm = union[union["arm_role"] == role]
            vals = arm[var].astype(str) if var == "race" else arm[var].astype(int).astype(str)
            all_levels = [*levels, "<rest>"]
            in_level = [vals == lv for lv in levels]
            in_level.append(~np.logical_or.reduce(in_level))
            truth = {}
            for i, mask in enumerate(in_level):
                truth[(i, "m")] = int((mask & arm["matched"]).sum())
                truth[(i, "u")] = int((mask & ~arm["matched"]).sum())
            cell = {key: j for j, key in enumerate(truth)}
            rows = t1[(t1["variable"] == var) & (t1["arm_role"] == role)]
            eqs: list[tuple[list[int], float]] = []
            for r in rows.itertuples():
                lv = "1" if var == "female" else r.level
                i = all_levels.index(lv)
                idx = [cell[(i, "m")]] if r.phase == "after" else [cell[(i, "m")], cell[(i, "u")]]
                if not pd.isna(r.count):
                    eqs.append((idx, float(r.count)))
                    assert int(r.count) == sum(truth[k] for k in [(i, "m"), (i, "u")][: len(idx)])
            for phase in ("before", "after"):
                n = rows[rows["phase"] == phase]["n"].dropna()
                if len(n):
                    idx = [cell[(i, t)] for i in range(len(all_levels))
                           for t in (("m", "u") if phase == "before" else ("m",))]  # fmt: skip
                    eqs.append((idx, float(n.iloc[0])))
            targets = {f"{lv} matched": [cell[(i, "m")]] for i, lv in enumerate(all_levels)}
            targets |= {f"{lv} unmatched": [cell[(i, "u")]] for i, lv in enumerate(all_levels)}
            targets |= {f"{lv} before": [cell[(i, "m")], cell[(i, "u")]]
                        for i, lv in enumerate(all_levels)}  # fmt: skip
            for name, idx in targets.items():
                value = sum(list(truth.values())[j] for j in idx)
                if 0 < value < mc:
                    checked += 1
                    assert _protected(len(truth), eqs, idx), f"{var} {role} {name} = {value}"
    # 3. attrition: cells = removal by each rule and the final cohort
    removed = np.sum(np.stack(union.groupby("site")["removed"].first().to_list()), axis=0)
    final = len(union)
    last_remaining = att["persons_remaining"].dropna()
    assert last_remaining.empty or int(last_remaining.iloc[-1]) >= final
    n_cells = len(removed) + 1  # x_1..x_3 removals, x_final
    order = ["all", "r1", "r2", "r3"]
    eqs = []
    for r in att.itertuples():
        if pd.isna(r.persons_remaining):
            continue
        last = order.index(str(r.rule).split(" + ")[-1])
        # remaining after rule `last` = removals by the later rules + the final cohort
        eqs.append(([j - 1 for j in range(last + 1, len(removed))] + [n_cells - 1],
                    float(r.persons_remaining)))  # fmt: skip
    for j in range(1, len(removed)):
        if 0 < removed[j] < mc:
            checked += 1
            assert _protected(n_cells, eqs, [j - 1]), f"rule r{j} removed {removed[j]}"
    # 4. binary outcome and log-rank: events / non-events per arm (the same persons)
    m = union[union["matched"]]
    truth_b = {(r, e): int(((m["arm_role"] == r) & (m["event"] == e)).sum())
               for r in ("control", "treated") for e in (1, 0)}  # fmt: skip
    cell_b = {k: j for j, k in enumerate(truth_b)}
    eqs = []
    for role, e in pooled["binary"]["any_event"].items():
        if e["events"] is not None:
            eqs.append(([cell_b[(role, 1)]], float(e["events"])))
        if e["n"] is not None:
            eqs.append(([cell_b[(role, 1)], cell_b[(role, 0)]], float(e["n"])))
    lr = pooled["logrank_stratified_by_site"]["os"]
    if lr["observed"] is not None:
        eqs += [([cell_b[("control", 1)]], lr["observed"][0]),
                ([cell_b[("treated", 1)]], lr["observed"][1])]  # fmt: skip
    for role in ("control", "treated"):  # the KM's first n at risk is the arm's n
        first = km[(km["arm_role"] == role) & (km["interval"] == 1)]["n_risk"]
        if len(first):
            eqs.append(([cell_b[(role, 1)], cell_b[(role, 0)]], float(first.iloc[0])))
    if lr["total_events"] is not None:
        eqs.append(([cell_b[("control", 1)], cell_b[("treated", 1)]], lr["total_events"]))
    for key, value in truth_b.items():
        if 0 < value < mc:
            checked += 1
            assert _protected(len(truth_b), eqs, [cell_b[key]]), f"binary {key} = {value}"
    print(f"seed {seed}: min cell {mc}, {checked} small counts checked, all protected")
