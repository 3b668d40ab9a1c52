"""The CLI round on a real ``cohort-etl run`` folder (slow: reuses the e2e demo run).

One demo run stands for three sites: each site gets a copy of the folder whose manifest
carries a site note (so the runs differ in their manifest hash while the data are the
same); one copy exported again under a second site id is refused as a duplicate run. The
pooled results of three identical sites are then the site's own: the profile-pooled log
HR equals the run's Cox coefficient, the pooled KM at the site's KM times its survival.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from tests.demo import DemoRun

CLI = [sys.executable, "-m", "cohort_etl.cli"]
SITES = ("s1", "s2", "s3")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_network_round_on_a_real_study_folder(
    demo_run: DemoRun,
    tmp_path: Path,
) -> None:
    study = demo_run.out / "hsct_after_cart"
    results = json.loads((study / "results.json").read_text())
    net = tmp_path / "network.json"
    proc = cli("network", "init", "--study", "hsct_after_cart", "--round-id", "t1",
               "--interval-days", "30", "--level", "race=asian,black,unknown,white",
               "--level", "ethnicity=hispanic,not_hispanic,unknown", "--out", str(net))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for s in SITES:
        assert (
            cli("network", "keygen", "--site-id", s, "--out-dir", str(tmp_path / "keys")).returncode
            == 0
        )
    pubs = [str(tmp_path / "keys" / f"{s}.pub.json") for s in SITES]
    assert cli("network", "register", "--network", str(net), *pubs).returncode == 0

    def export(site: str, folder: Path) -> Path:
        out = tmp_path / "pkg" / site
        p = cli("export", "--study-dir", str(folder), "--site-id", site, "--key",
                str(tmp_path / "keys" / f"{site}.key.json"), "--network", str(net),
                "--out", str(out))  # fmt: skip
        assert p.returncode == 0, p.stderr
        return out

    pkgs = []
    for s in SITES:
        copy = tmp_path / "runs" / s / "hsct_after_cart"
        shutil.copytree(study, copy)
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest["site_note"] = s
        (copy / "manifest.json").write_text(json.dumps(manifest, indent=2))
        pkgs.append(export(s, copy))
    pkg_text = (pkgs[0] / "package.json").read_text()
    for word in ("person_id", "index_date", "death_date", "set_id", "birth"):
        assert word not in pkg_text, word
    # the same run exported under a second site id is refused as a duplicate
    twin = tmp_path / "pkg" / "s2-twin"
    p = cli("export", "--study-dir", str(tmp_path / "runs" / "s1" / "hsct_after_cart"),
            "--site-id", "s2", "--key", str(tmp_path / "keys" / "s2.key.json"),
            "--network", str(net), "--out", str(twin))  # fmt: skip
    assert p.returncode == 0, p.stderr
    proc = cli("pool", str(pkgs[0]), str(twin), str(pkgs[2]), "--network", str(net),
               "--allow-dirty", "--out", str(tmp_path / "x"))  # fmt: skip
    assert proc.returncode == 5 and "source_manifest_sha256" in proc.stderr, proc.stderr
    meta = json.loads((pkgs[0] / "package.json").read_text())
    if meta["provenance"]["code_dirty"]:
        proc = cli("pool", *map(str, pkgs), "--network", str(net), "--out", str(tmp_path / "x"))
        assert proc.returncode == 5 and "provenance.code_dirty" in proc.stderr
    proc = cli("pool", *map(str, pkgs), "--network", str(net), "--allow-dirty", "--out",
               str(tmp_path / "pooled"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    pooled = json.loads((tmp_path / "pooled" / "pooled.json").read_text())
    for outcome in ("os", "relapse"):
        cox = results["outcomes"][outcome]["cox"]
        got = pooled["hazard_ratios"][f"outcome:{outcome}:matched"]["profile_fixed_effect"]
        assert got["estimate"] == pytest.approx(cox["coef"], abs=1e-3)
    pairs = results["outcomes"]["os"]["cox_stratified_sets"]["coef"]
    got = pooled["hazard_ratios"]["outcome:os:matched_stratified_sets"]["profile_fixed_effect"]
    assert got["estimate"] == pytest.approx(pairs, abs=1e-3)
    # every sensitivity analysis of the run (landmark, time-varying, unmatched, ...) is
    # exported from analysis_dataset.csv on the engine's own rows and pools to the run's
    sens = {k: v["cox"]["coef"] for k, v in results["sensitivity"].items()
            if v.get("cox") and v["cox"].get("estimable")}  # fmt: skip
    assert len(sens) >= 5
    for key, coef in sens.items():
        entry = pooled["hazard_ratios"][f"sensitivity:{key}"]
        assert entry["label"] and entry["label"] != f"sensitivity:{key}"
        assert entry["profile_fixed_effect"]["estimate"] == pytest.approx(coef, abs=1e-3), key
    assert not any(s["section"].startswith("sensitivity:")
                   for s in pooled["not_exported"]["s1"])  # fmt: skip
    # the target-trial estimate (pass 1: point estimate; the robust CI needs pass 2)
    tt = pooled["target_trial"]
    assert tt["estimate"] == pytest.approx(math.log(results["target_trial"]["hr"]), abs=1e-3)
    assert tt["se"] is None and "refinement pass" in tt["reason"]
    # three copies of one site: the pooled grid KM is the site's KM on the grouped times
    km = pd.read_csv(tmp_path / "pooled" / "pooled_km.csv")
    assert len(km) > 0 and (km["n_risk"] >= 5).all() and (km["n_risk"] % 3 == 0).all()
    assert (tmp_path / "pooled" / "report.html").is_file()


@pytest.mark.slow
def test_multivariable_cox_of_a_real_study_is_profiled_per_covariate(
    demo_run: DemoRun,
    tmp_path: Path,
) -> None:
    """Study B's multivariable Cox (no arms): every coefficient is exported as a profile;
    three copies of the site pool to the run's own coefficients."""
    study = demo_run.out / "salvage_after_cart_relapse"
    results = json.loads((study / "results.json").read_text())
    want = {
        c["covariate"]: c["coef"] for c in results["cox_models"]["os_multivariable"]["coefficients"]
    }
    net = tmp_path / "network.json"
    assert cli("network", "init", "--study", "salvage_after_cart_relapse", "--round-id", "b1",
               "--out", str(net)).returncode == 0  # fmt: skip
    pkgs = []
    for s in SITES:
        assert (
            cli("network", "keygen", "--site-id", s, "--out-dir", str(tmp_path / "keys")).returncode
            == 0
        )
        assert cli("network", "register", "--network", str(net),
                   str(tmp_path / "keys" / f"{s}.pub.json")).returncode == 0  # fmt: skip
    for s in SITES:
        copy = tmp_path / "runs" / s / study.name
        shutil.copytree(study, copy)
        manifest = json.loads((copy / "manifest.json").read_text())
        (copy / "manifest.json").write_text(json.dumps({**manifest, "site_note": s}))
        out = tmp_path / "pkg" / s
        p = cli("export", "--study-dir", str(copy), "--site-id", s, "--key",
                str(tmp_path / "keys" / f"{s}.key.json"), "--network", str(net), "--out", str(out))  # fmt: skip
        assert p.returncode == 0, p.stderr
        pkgs.append(out)
    proc = cli("pool", *map(str, pkgs), "--network", str(net), "--allow-dirty", "--out",
               str(tmp_path / "pooled"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    hrs = json.loads((tmp_path / "pooled" / "pooled.json").read_text())["hazard_ratios"]
    assert {f"cox_model:os_multivariable:{c}" for c in want} <= set(hrs)
    for c, coef in want.items():
        got = hrs[f"cox_model:os_multivariable:{c}"]["profile_fixed_effect"]["estimate"]
        assert got == pytest.approx(coef, abs=1e-3), c
