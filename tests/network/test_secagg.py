"""Secure aggregation: the coordinator's transcript (every byte it receives) holds no
site's vector, nor the sum over any strict subset of sites; the sum over the roster is
the plain sum of the sites' vectors."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.network.sites import SITES, export_in_processes, make_network, site_data

from cohort_etl.errors import InputDataError
from cohort_etl.network import secagg
from cohort_etl.network.keys import generate_key, read_network
from cohort_etl.network.package import read_package
from cohort_etl.network.pool import aggregate
from cohort_etl.network.site import contribution

#: every key of a package.json (the clear part): provenance, round settings, the layout,
#: the pass (number, anchors' sha256 and the network's pooled log HR at which weighted
#: analyses' robust-variance pieces were evaluated: the same at every site), the site's
#: own effect estimates (tests/network/test_target_trial_pool_r.py checks their fields)
CLEAR_KEYS = {
    "schema_version", "kind", "site_id", "title", "arms", "data_cutoff_date",
    "min_cell", "round_id", "study", "interval_days", "horizon_days",
    "profile_points", "profile_bounds", "roster", "provenance", "layout",
    "layout_sha256", "analysis_labels", "attrition_rules", "table1_kinds",
    "site_estimates", "pass",
    "not_exported", "files",
}  # fmt: skip


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("secagg")
    make_network(root, interval_days=30)
    paths = export_in_processes(root)
    net = read_network(root / "network.json")
    plain = {}
    for spec in SITES:  # what each site holds before masking (computed here as the oracle)
        comps, vals = contribution(site_data(spec), net)
        plain[spec.site_id] = (comps, vals)
    return {"root": root, "paths": paths, "net": net, "plain": plain}


def _ring(comps: list[secagg.Component], vals: list[np.ndarray]) -> list[int]:
    out: list[int] = []
    for c, v in zip(comps, vals, strict=True):
        out.extend(secagg.encode(v, c.kind))
    return out


def _ring_sum(vectors: list[list[int]]) -> list[int]:
    return [sum(col) % secagg.MODULUS for col in zip(*vectors, strict=True)]


def test_sum_of_masked_vectors_is_the_plain_sum(exported: dict[str, Any]) -> None:
    pkgs = [read_package(p)[0] for p in exported["paths"]]
    sums = aggregate(pkgs)
    for i, comp in enumerate(next(iter(exported["plain"].values()))[0]):
        plain = sum(exported["plain"][s][1][i] for s in exported["plain"])
        if comp.kind == "int":
            np.testing.assert_array_equal(sums[comp.key], plain.astype(np.int64), comp.key)
        else:
            np.testing.assert_allclose(sums[comp.key], plain, rtol=1e-14, atol=3 * 2.0**-40,
                                       err_msg=comp.key)  # fmt: skip


def test_transcript_holds_no_site_vector_nor_partial_sum(exported: dict[str, Any]) -> None:
    masked = {}
    for p in exported["paths"]:
        pkg, body = read_package(p)
        masked[pkg.site_id] = pkg.masked
        # the clear part: provenance, settings, layout, the site's own effect estimates
        meta = json.loads(body)
        assert set(meta) <= CLEAR_KEYS
        # the pass block holds only what is the same at every site of the pass
        assert set(meta["pass"]) <= {"number", "anchors_sha256", "robust_at"}
        comps, vals = exported["plain"][pkg.site_id]
        risk = vals[[c.key for c in comps].index("km|os|treated|n_risk")]
        assert json.dumps([int(x) for x in risk[:6]])[1:-1] not in body.decode()
    plain = {s: _ring(*exported["plain"][s]) for s in exported["plain"]}
    sites = sorted(plain)
    n = len(plain[sites[0]])
    assert n > 5000
    for k in range(1, len(sites)):
        for subset in combinations(sites, k):
            seen = _ring_sum([masked[s] for s in subset])
            truth = _ring_sum([plain[s] for s in subset])
            same = sum(a == b for a, b in zip(seen, truth, strict=True))
            assert same == 0, f"{subset}: {same} of {n} elements readable"
            # and the masked values look uniform on the ring: no small numbers
            small = sum(1 for v in seen if v < 2**100 or v > secagg.MODULUS - 2**100)
            assert small < n * 1e-6 + 1
    total_seen = secagg.aggregate([masked[s] for s in sites])
    assert total_seen == _ring_sum([plain[s] for s in sites])


def test_fewer_than_three_sites_are_refused(tmp_path: Path) -> None:
    a, b = generate_key("a"), generate_key("b")
    roster = {"a": a.exchange.public_key().public_bytes_raw(),
              "b": b.exchange.public_key().public_bytes_raw()}  # fmt: skip
    with pytest.raises(InputDataError, match=">= 3 sites"):
        secagg.mask_vector([1, 2, 3], "a", a.exchange, roster, "r")
    with pytest.raises(InputDataError, match=">= 3 sites"):
        secagg.aggregate([[1], [2]])


def test_pairwise_seeds_agree_and_masks_cancel() -> None:
    keys = {s: generate_key(s) for s in ("x", "y", "z", "w")}
    roster = {s: k.exchange.public_key().public_bytes_raw() for s, k in keys.items()}
    assert secagg.pair_seed(keys["x"].exchange, roster["y"], "r1", "x", "y") == \
        secagg.pair_seed(keys["y"].exchange, roster["x"], "r1", "y", "x")  # fmt: skip
    assert secagg.pair_seed(keys["x"].exchange, roster["y"], "r1", "x", "y") != \
        secagg.pair_seed(keys["x"].exchange, roster["y"], "r2", "x", "y")  # fmt: skip
    values = {s: secagg.encode([i, -i, 0.5 * i], "fixed") for i, s in enumerate(keys)}
    masked = [secagg.mask_vector(values[s], s, keys[s].exchange, roster, "r1") for s in keys]
    np.testing.assert_allclose(secagg.decode(secagg.aggregate(masked), "fixed"), [6, -6, 3])
