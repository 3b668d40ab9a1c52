"""`cohort-etl run` on the default demo CDM, as `make cohorts` runs it (issue 3)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg
from tests.e2e.conftest import DemoRun

STUDIES = ("hsct_after_cart", "salvage_after_cart_relapse")
pytestmark = pytest.mark.slow


def test_every_output_is_written(demo_run: DemoRun) -> None:
    for study in STUDIES:
        folder = demo_run.out / study
        for name in (
            "results.json",
            "report.html",
            "manifest.json",
            "analysis_dataset.csv",
            "matched_data.csv",
        ):
            assert (folder / name).stat().st_size > 200, f"{study}/{name} is (nearly) empty"
        results = json.loads((folder / "results.json").read_text())
        assert results["study"] == study
        assert results["headline"], "no headline results"
        manifest = json.loads((folder / "manifest.json").read_text())
        for key in (
            "package_version",
            "dbt_core_version",
            "git_revision",
            "profile",
            "concept_sets_sha256",
            "vocabulary_version",
            "data_cutoff",
            "timings_seconds",
        ):
            assert manifest[key] not in (None, "", {}), f"manifest lacks {key}"
    tables = demo_run.out / "hsct_after_cart" / "tables"
    for name in ("attrition", "table1_balance", "km_os"):
        assert len(pd.read_csv(tables / f"{name}.csv")) > 3
    matched = pd.read_csv(demo_run.out / "hsct_after_cart" / "matched_data.csv")
    sizes = matched.groupby("set_id")["_treated"].agg(["size", "sum"])
    assert (sizes["size"] == 2).all() and (sizes["sum"] == 1).all(), "1:1 pairs expected"


def test_figures_are_real_pictures(demo_run: DemoRun) -> None:
    figures = sorted((demo_run.out / "hsct_after_cart" / "figures").glob("*.png"))
    names = {p.stem for p in figures}
    assert {"km_os", "love_plot", "ps_distribution", "forest", "attrition"} <= names
    for path in figures:
        pixels = mpimg.imread(path)[..., :3]
        assert path.stat().st_size > 10_000, path
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300, path
        # a blank or single-colour image has (almost) no spread
        assert pixels.std() > 0.05, f"{path} looks blank"
        assert (pixels.reshape(-1, 3) < 0.9).any(axis=1).mean() > 0.01, f"{path} nearly white"


def test_second_run_reproduces_results_exactly(demo_runs: tuple[DemoRun, DemoRun]) -> None:
    first, second = demo_runs
    for study in STUDIES:
        a = (first.out / study / "results.json").read_bytes()
        b = (second.out / study / "results.json").read_bytes()
        assert a == b, f"{study}: results.json differs between two runs"
    assert json.loads((first.out / STUDIES[0] / "manifest.json").read_text())["demo_cdm"][
        "generated"
    ]
    assert not json.loads((second.out / STUDIES[0] / "manifest.json").read_text())["demo_cdm"][
        "generated"
    ], "the second run must reuse the demo CDM, not regenerate it"


def _colour_share(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> float:
    target = np.array(rgb) / 255.0
    close = (np.abs(pixels[..., :3] - target) <= tol / 255.0).all(axis=-1)
    return float(close.mean())


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian chromium (.ci/run installs it)"
)
@pytest.mark.parametrize(
    ("study", "height", "curves"),
    [("hsct_after_cart", 1900, 2), ("salvage_after_cart_relapse", 3000, 1)],
)
def test_report_in_headless_chromium(
    demo_run: DemoRun, tmp_path: Path, study: str, height: int, curves: int
) -> None:
    """Open report.html in a real browser; the first screen shows the headline table
    (its header colour) and the primary Kaplan-Meier figure (its curves' colours: both
    arms of study A, the one group of study B, whose headline is longer)."""
    report = demo_run.out / study / "report.html"
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            f"--window-size=1200,{height}",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), proc.stderr[-2000:]
    pixels = mpimg.imread(shot)
    assert pixels.shape[0] >= height - 100 and pixels.shape[1] >= 1100
    from cohort_etl.report.figures import PALETTE

    def rgb(hex_colour: str) -> tuple[int, int, int]:
        return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]

    assert _colour_share(pixels, (0xEE, 0xF3, 0xFA), tol=3) > 0.002, "no headline table header"
    for colour in PALETTE[:curves]:
        assert _colour_share(pixels, rgb(colour)) > 0.0005, f"KM curve colour {colour} not visible"
    html = report.read_text()
    assert "Headline results" in html and "Kaplan-Meier" in html
    assert "http://" not in html and "https://" not in html, "report must be self-contained"


def _truth(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        truth = con.execute("select * from synthetic_truth.patients").df()
        params = dict(con.execute("select name, value from synthetic_truth.parameters").fetchall())
        salvage = con.execute("select * from results.analysis_salvage_after_relapse").df()
    return truth.merge(salvage, on="person_id", how="inner", suffixes=("_truth", "")), params


def test_naive_and_time_varying_differ_as_immortal_time_implies(demo_run: DemoRun) -> None:
    """HSCT+ is defined by a transplant after the index, so the naive 'ever transplanted'
    HR is biased towards benefit; treating HSCT as time-varying moves it back up."""
    sens = json.loads((demo_run.out / "hsct_after_cart" / "results.json").read_text())[
        "sensitivity"
    ]
    naive = sens["naive_ever_treated_os"]["cox"]["hr"]
    varying = sens["time_varying_os"]["cox"]["hr"]
    assert naive < varying, (naive, varying)


def test_salvage_cr_by_modality_matches_generator(demo_run: DemoRun) -> None:
    """CR after salvage per modality, as the cohort pipeline found it, agrees with the
    generator's CR probabilities (per patient: modality probability x relapse-site factor,
    capped at 0.97) within 3 binomial standard errors."""
    merged, params = _truth(demo_run.duckdb_path)
    merged = merged[merged["received_salvage"] == 1]
    names = {
        "cart_reinfusion": "reinfusion",
        "monoclonal_antibody": "mab",
        "chemotherapy_tki": "chemo_tki",
        "chemotherapy": "chemo",
    }
    factor = {
        "cns": float(params["salvage.cr_factor_cns"]),
        "emd": float(params["salvage.cr_factor_emd"]),
    }
    checked = 0
    for modality, key in names.items():
        part = merged[merged["salvage_modality"] == modality]
        if len(part) < 5:
            continue
        base = float(params[f"salvage.cr_{key}"])
        p = np.minimum(
            base * part["relapse_site_truth"].map(factor).fillna(1.0).to_numpy(float), 0.97
        )
        observed = part["cr"].sum()
        se = np.sqrt((p * (1 - p)).sum())
        assert abs(observed - p.sum()) <= 3 * se + 1, (modality, observed, p.sum(), se)
        checked += 1
    assert checked >= 3, "too few modalities with patients to check"


def test_bad_spec_gets_an_explaining_report_and_the_other_study_still_runs(
    demo_run: DemoRun, tmp_path: Path
) -> None:
    import yaml
    from tests.e2e.conftest import run_cli

    from cohort_etl.errors import SpecError

    root = Path(__file__).resolve().parents[2] / "studies"
    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(root / "salvage_after_cart_relapse.yaml", specs)
    broken = yaml.safe_load((root / "hsct_after_cart.yaml").read_text())
    broken["name"] = "broken_study"
    broken["covariates"].append("no_such_column")
    (specs / "broken_study.yaml").write_text(yaml.safe_dump(broken))
    out = tmp_path / "out"
    proc = run_cli(
        ["run", "--skip-build", "--specs", str(specs), "--out", str(out)],
        {"COHORT_ETL_DUCKDB": str(demo_run.duckdb_path)},
    )
    assert proc.returncode == SpecError.exit_code, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 2 studies failed: broken_study:")
    assert "no_such_column" in last
    html = (out / "broken_study" / "report.html").read_text()
    assert "Why this report is empty" in html and "no_such_column" in html
    assert json.loads((out / "salvage_after_cart_relapse" / "results.json").read_text())["headline"]
