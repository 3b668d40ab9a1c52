"""Site packages: small-cell suppression, no person-level leakage, determinism, and the
coordinator's refusal of packages that do not belong together; the CLI end to end."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.network.sites import INFO, SITES, site_data, write_site_packages

from cohort_etl.network.package import (
    km_grid,
    read_package,
    suppress_attrition,
    suppress_grid,
    suppress_table1,
)
from cohort_etl.network.pool import pool_packages

CLI = [sys.executable, "-m", "cohort_etl.cli"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


# -- suppression rules ----------------------------------------------------------------------
def test_grid_counts_and_tail_suppression() -> None:
    t = np.array([0, 5, 30, 31, 60, 61, 61, 100, 200, 200, 200, 200, 200, 200], dtype=float)
    e = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0], dtype=float)
    g = km_grid(t, e, 30)
    assert g["time"].tolist() == [30, 60, 90, 120, 150, 180, 210]
    assert g["n_risk"].tolist() == [14, 11, 9, 7, 6, 6, 6]
    assert g["n_event"].tolist() == [2, 1, 2, 0, 0, 0, 5]
    assert g["n_censor"].tolist() == [1, 1, 0, 1, 0, 0, 1]
    # min_cell 2: interval 1 has one censoring -> withheld from there, n_risk 14 kept
    s = suppress_grid(g, 2)
    assert len(s) == 1 and s["n_risk"].iloc[0] == 14
    assert s["n_event"].iloc[0] is None and s["n_censor"].iloc[0] is None
    assert s["suppressed"].iloc[0] == "n_event;n_censor;after"
    # min_cell 1: nothing withheld, the whole table, identity n = d + c + n_next holds
    full = suppress_grid(g, 1)
    assert (full["suppressed"] == "").all() and len(full) == len(g)
    nxt = np.append(g["n_risk"].to_numpy()[1:], 0)
    assert (g["n_risk"] == g["n_event"] + g["n_censor"] + nxt).all()


def test_no_withheld_count_is_recoverable_by_subtraction_in_the_grid() -> None:
    """For every published interval all three counts are there or the table has ended;
    the withheld row keeps at most n_risk, and no row follows it."""
    for site in SITES:
        d = site_data(site)
        for role, part in d.groupby("arm_role"):
            g = suppress_grid(km_grid(part["time"].to_numpy(), part["event"].to_numpy(), 30), 5)
            published = g[g["suppressed"] == ""]
            for c in ("n_risk", "n_event", "n_censor"):
                vals = published[c].astype(int)
                assert ((vals == 0) | (vals >= 5)).all(), (site, role, c)
            withheld = g[g["suppressed"] != ""]
            assert len(withheld) <= 1 and (len(withheld) == 0 or withheld.index[0] == g.index[-1])


def test_attrition_small_removals_are_merged_not_subtractable() -> None:
    att = pd.DataFrame(
        {
            "rule_number": [0, 1, 2, 3, 4],
            "rule": ["all", "a", "b", "c", "d"],
            "persons_remaining": [1000, 997, 900, 898, 880],
            "persons_removed": [0, 3, 97, 2, 18],
        }
    )
    s = suppress_attrition(att, 5)
    assert s["rule"].tolist() == ["all", "a + b", "c + d"]
    assert s["persons_remaining"].tolist() == [1000, 900, 880]
    assert s["persons_removed"].tolist() == [0, 100, 20]
    removed = s["persons_remaining"].shift(1) - s["persons_remaining"]
    assert (removed.iloc[1:] == s["persons_removed"].iloc[1:]).all()
    assert not any(0 < x < 5 for x in removed.iloc[1:])
    # small removal at the end is merged into the previous row; small final cohort hidden
    att2 = att.assign(persons_remaining=[1000, 997, 900, 7, 3], persons_removed=[0, 3, 97, 893, 4])
    s2 = suppress_attrition(att2, 5)
    assert s2["rule"].tolist() == ["all", "a + b", "c + d"]
    assert s2["persons_remaining"].tolist()[:2] == [1000, 900]
    assert pd.isna(s2["persons_remaining"].iloc[2]) and pd.isna(s2["persons_removed"].iloc[2])
    # all rules together remove a small number: the first count is withheld too
    att3 = att.assign(persons_remaining=[1000, 999, 999, 998, 998], persons_removed=[0, 1, 0, 1, 0])
    s3 = suppress_attrition(att3, 5)
    assert pd.isna(s3["persons_remaining"].iloc[0])
    assert pd.isna(s3["persons_removed"].iloc[-1])


def test_table1_small_proportions_and_their_smd_are_withheld() -> None:
    bal = pd.DataFrame(
        {
            "covariate": ["age", "female", "racea", "raceb", "racec"],
            "variable": ["age", "female", "race", "race", "race"],
            "level": [None, None, "a", "b", "c"],
            "kind": ["continuous", "binary", "level", "level", "level"],
            "mean_treated_before": [40.0, 0.5, 0.02, 0.5, 0.48],
            "mean_control_before": [41.0, 0.98, 0.3, 0.3, 0.4],
            "smd_before": [0.1, -0.2, 0.3, 0.4, 0.1],
            "mean_treated_after": [40.0, 0.5, 0.3, 0.4, 0.3],
            "mean_control_after": [40.5, 0.5, 0.3, 0.4, 0.3],
            "smd_after": [0.01, 0.0, 0.0, 0.0, 0.0],
        }
    )
    n = {"before": {"treated": 100, "control": 100}, "after": {"treated": 100, "control": 100}}
    s = suppress_table1(bal, n, 5).set_index("covariate")
    # race a treated = 2 persons -> all race levels of treated (before) withheld, SMDs too
    assert s.loc[["racea", "raceb", "racec"], "mean_treated_before"].isna().all()
    assert s.loc[["racea", "raceb", "racec"], "smd_before"].isna().all()
    assert s.loc["raceb", "mean_control_before"] == 0.3
    # female control 98 of 100: the complement (2 men) is small -> withheld
    assert pd.isna(s.loc["female", "mean_control_before"]) and pd.isna(
        s.loc["female", "smd_before"]
    )
    assert s.loc["female", "mean_treated_before"] == 0.5
    assert s.loc["age", "mean_treated_before"] == 40.0 and s.loc["age", "suppressed"] == ""
    assert (s["smd_after"].notna()).all()


# -- packages ---------------------------------------------------------------------------------
def test_package_has_no_person_level_data(tmp_path: Path) -> None:
    paths = write_site_packages(tmp_path, min_cell=5, interval_days=30)
    for path, site in zip(paths, SITES, strict=True):
        _assert_no_leak(path, site_data(site))


def _assert_no_leak(package: Path, persons: pd.DataFrame) -> None:
    files = sorted(package.iterdir())
    assert {f.name for f in files} == {
        "package.json", "attrition.csv", "table1.csv", "km_grid.csv", "logrank.csv",
        "hazard_ratios.csv", "binary.csv",
    }  # fmt: skip
    ids = {str(int(x)) for x in persons["person_id"]}
    for f in files:
        text = f.read_text(encoding="utf-8").lower()
        for word in ("person_id", "subject_id", "patient_id", "birth", "_date"):
            assert word not in text, f"{f.name} mentions {word}"
        if f.suffix == ".csv":
            frame = pd.read_csv(f, dtype=str, keep_default_na=False)
            assert len(frame) < len(persons) / 2, f"{f.name}: as many rows as persons"
            for col in frame.columns:
                values = set(frame[col]) - {""}
                assert not (len(values) > 10 and values <= ids), f"{f.name}:{col} holds ids"


def test_package_bytes_are_deterministic(tmp_path: Path) -> None:
    a = write_site_packages(tmp_path / "a")
    b = write_site_packages(tmp_path / "b")
    for pa, pb in zip(a, b, strict=True):
        for f in sorted(pa.iterdir()):
            assert f.read_bytes() == (pb / f.name).read_bytes(), f.name
    pool_packages(a, tmp_path / "pa")
    pool_packages(list(reversed(b)), tmp_path / "pb")
    for name in ("pooled.json", "pooled_km.csv", "pooled_hazard_ratios.csv"):
        assert (tmp_path / "pa" / name).read_bytes() == (tmp_path / "pb" / name).read_bytes()


def test_altered_package_is_refused(tmp_path: Path) -> None:
    p = write_site_packages(tmp_path)[0]
    km = p / "km_grid.csv"
    km.write_text(km.read_text().replace(",", ";", 1))
    with pytest.raises(Exception, match="sha256 differs"):
        read_package(p)


def test_pool_refuses_mixed_studies_and_duplicate_sites(tmp_path: Path) -> None:
    good = write_site_packages(tmp_path / "good")
    other = dataclasses.replace(INFO, spec_sha256="fedcba9876543210")
    bad = write_site_packages(tmp_path / "other", info=other)
    proc = cli("pool", str(good[0]), str(bad[1]), "--out", str(tmp_path / "x"))
    assert proc.returncode == 5
    assert "study_spec_sha256" in proc.stderr and str(bad[1]) in proc.stderr
    coarse = write_site_packages(tmp_path / "coarse", interval_days=60)
    proc = cli("pool", str(good[0]), str(coarse[1]), "--out", str(tmp_path / "x"))
    assert proc.returncode == 5 and "interval_days" in proc.stderr
    proc = cli("pool", str(good[0]), str(good[0]), "--out", str(tmp_path / "x"))
    assert proc.returncode == 5 and "site_id" in proc.stderr
    meta = json.loads((good[1] / "package.json").read_text())
    meta["schema_version"] = 99
    (good[1] / "package.json").write_text(json.dumps(meta))
    proc = cli("pool", str(good[0]), str(good[1]), "--out", str(tmp_path / "x"))
    assert proc.returncode == 5 and "schema_version" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_export_of_a_folder_that_is_not_a_study(tmp_path: Path) -> None:
    proc = cli(
        "export", "--study-dir", str(tmp_path), "--site-id", "s", "--out", str(tmp_path / "p")
    )
    assert proc.returncode == 5 and "results.json" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- the real path: `cohort-etl run` output -> export -> pool ------------------------------------
from tests.e2e.conftest import DemoRun, demo_run, demo_runs  # noqa: E402,F401


@pytest.mark.slow
def test_export_and_pool_of_a_real_study_folder(
    demo_run: DemoRun,  # noqa: F811
    tmp_path: Path,
) -> None:
    study = demo_run.out / "hsct_after_cart"
    results = json.loads((study / "results.json").read_text())
    pkgs = []
    for site in ("site_1", "site_2"):
        out = tmp_path / site
        proc = cli("export", "--study-dir", str(study), "--site-id", site,
                   "--interval-days", "365", "--out", str(out))  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        pkgs.append(out)
        _assert_no_leak(out, pd.read_csv(study / "analysis_dataset.csv"))
    again = tmp_path / "again"
    cli("export", "--study-dir", str(study), "--site-id", "site_1", "--interval-days", "365",
        "--out", str(again))  # fmt: skip
    for f in sorted(pkgs[0].iterdir()):
        assert f.read_bytes() == (again / f.name).read_bytes(), f.name
    meta = json.loads((pkgs[0] / "package.json").read_text())
    assert meta["study"] == "hsct_after_cart" and meta["min_cell"] == results["min_cell_count"]
    lr = pd.read_csv(pkgs[0] / "logrank.csv")
    os_lr = lr[lr["outcome"] == "os"].sort_values("arm_role")  # control, treated = codes 0, 1
    np.testing.assert_allclose(os_lr["observed"], results["outcomes"]["os"]["logrank"]["observed"])
    np.testing.assert_allclose(
        os_lr["expected"], results["outcomes"]["os"]["logrank"]["expected"], rtol=1e-9
    )
    proc = cli("pool", *map(str, pkgs), "--out", str(tmp_path / "pooled"))
    assert proc.returncode == 0, proc.stderr
    pooled = json.loads((tmp_path / "pooled" / "pooled.json").read_text())
    hr = pooled["hazard_ratios"]["outcome:os:matched"]["FE"]
    cox = results["outcomes"]["os"]["cox"]
    # the same site twice: the pooled log HR is the site's, its SE shrinks by sqrt(2)
    assert hr["estimate"] == pytest.approx(cox["coef"], rel=1e-9)
    assert hr["se"] == pytest.approx(cox["se"] / np.sqrt(2), rel=1e-9)
    assert hr["q"] == 0 and pooled["hazard_ratios"]["outcome:os:matched"]["DL"]["tau_squared"] == 0
    # stratified log-rank of two identical strata: O, E, V double, chi-square doubles
    site_chi = results["outcomes"]["os"]["logrank"]["chi_square"]
    assert pooled["logrank_stratified_by_site"]["os"]["chi_square"] == pytest.approx(
        2 * site_chi, rel=1e-8
    )
