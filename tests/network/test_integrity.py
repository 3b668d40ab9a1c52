"""The coordinator refuses every tampered, mismatched or duplicated package and names
the site and the field (issue 13's list), through the ``pool`` CLI (exit code 5)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.network.sites import SITES, export_in_processes, make_network, provenance

from cohort_etl.network.keys import read_key, sign

CLI = [sys.executable, "-m", "cohort_etl.cli"]


def pool(root: Path, paths: list[Path], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "pool", *map(str, paths), "--network", str(root / "network.json"), "--out",
         str(root / "pooled"), *extra],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("integrity")
    make_network(root, interval_days=90, horizon_days=1800)
    export_in_processes(root)
    return root


def _copy(good: Path, tmp: Path) -> tuple[Path, list[Path]]:
    shutil.copytree(good, tmp / "net")
    root = tmp / "net"
    return root, [root / "packages" / s.site_id for s in SITES]


def _edit_json(path: Path, change: Any) -> None:
    meta = json.loads((path / "package.json").read_text())
    change(meta)
    (path / "package.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def _refused(proc: subprocess.CompletedProcess[str], site: str, *words: str) -> None:
    assert proc.returncode == 5, proc.stderr
    assert f"site {site!r}" in proc.stderr, proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_untouched_packages_pool(good: Path, tmp_path: Path) -> None:
    root, paths = _copy(good, tmp_path)
    proc = pool(root, paths)
    assert proc.returncode == 0, proc.stderr
    assert (root / "pooled" / "report.html").is_file()


def test_altered_data_with_recomputed_sha256_is_refused(good: Path, tmp_path: Path) -> None:
    root, paths = _copy(good, tmp_path)
    mb = paths[1] / "masked.bin"
    data = bytearray(mb.read_bytes())
    data[17] ^= 1
    mb.write_bytes(bytes(data))
    _edit_json(paths[1], lambda m: m["files"].update(
        {"masked.bin": hashlib.sha256(bytes(data)).hexdigest()}))  # fmt: skip
    _refused(pool(root, paths), "site_b", "signature")


def test_altered_data_without_new_sha256_is_refused(good: Path, tmp_path: Path) -> None:
    root, paths = _copy(good, tmp_path)
    mb = paths[0] / "masked.bin"
    mb.write_bytes(mb.read_bytes()[:-16] + bytes(16))
    _refused(pool(root, paths), "site_a", "files.masked.bin")


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.update(min_cell=1),
        lambda m: m["provenance"].update(duckdb_version="0.0.1"),
        lambda m: m["arms"].update(treated="Placebo"),
    ],
    ids=["min_cell", "versions", "arm_labels"],
)
def test_edited_package_json_is_refused(good: Path, tmp_path: Path, edit: Any) -> None:
    root, paths = _copy(good, tmp_path)
    _edit_json(paths[2], edit)
    _refused(pool(root, paths), "site_c", "signature")


def test_unsigned_and_foreign_signed_packages_are_refused(good: Path, tmp_path: Path) -> None:
    root, paths = _copy(good, tmp_path)
    (paths[0] / "package.sig").unlink()
    _refused(pool(root, paths), "site_a", "not signed")
    other = read_key(root / "keys" / "site_b.key.json")
    (paths[0] / "package.sig").write_text(sign(other, (paths[0] / "package.json").read_bytes()))
    _refused(pool(root, paths), "site_a", "signature")


def _resign(root: Path, path: Path, site: str, change: Any) -> None:
    _edit_json(path, change)
    key = read_key(root / "keys" / f"{site}.key.json")
    (path / "package.sig").write_text(sign(key, (path / "package.json").read_bytes()))


def test_other_concept_set_is_refused_naming_the_set(good: Path, tmp_path: Path) -> None:
    root, paths = _copy(good, tmp_path)
    prov = provenance("site_c", concept_sets={"a.json": "11", "b.json": "99"})
    prov["concept_sets_sha256"] = hashlib.sha256(b"a.json\t11\nb.json\t99\n").hexdigest()
    shutil.rmtree(paths[2])
    export_in_processes(root, SITES[2:], prov_over={"site_c": prov}, workers=1)
    _refused(pool(root, paths), "site_c", "provenance.concept_sets_sha256", "b.json")


def test_dirty_tree_is_refused_unless_allowed(good: Path, tmp_path: Path) -> None:
    root, paths = _copy(good, tmp_path)
    shutil.rmtree(paths[1])
    export_in_processes(root, SITES[1:2], prov_over={"site_b": {"code_dirty": True}}, workers=1)
    _refused(pool(root, paths), "site_b", "provenance.code_dirty")
    assert pool(root, paths, "--allow-dirty").returncode == 0


def test_min_cell_below_the_network_minimum_is_refused(good: Path, tmp_path: Path) -> None:
    root, paths = _copy(good, tmp_path)
    shutil.rmtree(paths[0])
    export_in_processes(root, SITES[:1], min_cell={"site_a": 0}, workers=1)
    _refused(pool(root, paths), "site_a", "min_cell", "network minimum 5")


def test_same_run_under_another_site_id_is_refused(good: Path, tmp_path: Path) -> None:
    root, paths = _copy(good, tmp_path)
    shutil.rmtree(paths[2])
    same = provenance("site_a")["source_manifest_sha256"]
    export_in_processes(root, SITES[2:], prov_over={"site_c": {"source_manifest_sha256": same}},
                        workers=1)  # fmt: skip
    _refused(pool(root, paths), "site_c", "provenance.source_manifest_sha256", "site_a")


def test_other_round_and_missing_roster_site_are_refused(good: Path, tmp_path: Path) -> None:
    root, paths = _copy(good, tmp_path)
    proc = pool(root, paths[:2])
    assert proc.returncode == 5 and "site_c" in proc.stderr and "roster" in proc.stderr
    _resign(root, paths[1], "site_b", lambda m: m.update(round_id="round-0"))
    _refused(pool(root, paths), "site_b", "round_id")


def test_unregistered_site_is_refused(good: Path, tmp_path: Path) -> None:
    root, paths = _copy(good, tmp_path)
    net = json.loads((root / "network.json").read_text())
    del net["sites"]["site_b"]
    (root / "network.json").write_text(json.dumps(net))
    _refused(pool(root, paths), "site_b", "not registered")


def test_packages_of_different_passes_are_refused(good: Path, tmp_path: Path) -> None:
    """A refinement pass (expanded at the pooled anchors of pass 1) cannot be pooled with
    pass-1 packages of other sites: field ``pass`` (and its masks differ)."""
    from tests.network.sites import INFO, site_data

    from cohort_etl.network.keys import read_network
    from cohort_etl.network.package import build_package, read_anchors, write_package

    root, paths = _copy(good, tmp_path)
    assert pool(root, paths).returncode == 0
    anchors = read_anchors(root / "pooled" / "anchors.json")
    assert anchors.pass_number == 2 and anchors.nuisance
    spec = SITES[-1]
    key = read_key(root / "keys" / f"{spec.site_id}.key.json")
    net = read_network(root / "network.json")
    pkg = build_package(site_data(spec), INFO, spec.site_id, key, net,
                        provenance(spec.site_id), anchors=anchors)  # fmt: skip
    assert pkg.meta["pass"] == {"number": 2, "anchors_sha256": anchors.sha256}
    second = write_package(pkg, key, root / "pass2" / spec.site_id)
    _refused(pool(root, [*paths[:-1], second]), spec.site_id, "field pass")
