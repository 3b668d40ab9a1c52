"""The pooled HTML report in a real headless browser (as the study reports are tested),
and its content: pooled KM per arm with numbers at risk, forest plots, attrition,
Table 1, provenance per site; self-contained."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from tests.network.sites import SITES, export_in_processes, make_network

from cohort_etl.network.keys import read_network
from cohort_etl.network.pool import pool_packages
from cohort_etl.network.report import ARM_COLOURS, HEADER, POOLED_COLOUR


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    make_network(root, interval_days=30, horizon_days=1800)
    paths = export_in_processes(root)
    pool_packages(paths, read_network(root / "network.json"), root / "pooled")
    return root / "pooled" / "report.html"


def test_report_content(report: Path) -> None:
    html = report.read_text()
    for section in (
        "Pooled Kaplan-Meier",
        "Numbers at risk",
        "Hazard ratios (forest plots)",
        "Attrition (summed over sites)",
        "Table 1 (pooled)",
        "Provenance per site",
        "profile FE",
        "profile RE (Bayesian)",
        "Wald DL",
    ):
        assert section in html, section  # fmt: skip
    for s in SITES:
        assert f"site {s.site_id}" in html and s.site_id in html
    assert html.count("aria-label='forest plot'") == 3  # one per pooled hazard ratio
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and "<script" not in html


def _share(pixels: np.ndarray, hex_colour: str, tol: int = 12) -> float:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255.0
    return float((np.abs(pixels[..., :3] - rgb) <= tol / 255.0).all(axis=-1).mean())


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian chromium")
def test_report_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    """The first screen shows both arms' KM curves, the table header colour and the pooled
    diamonds of the forest plot; the DOM after rendering keeps every SVG."""
    shot = tmp_path / "report.png"
    args = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    proc = subprocess.run([*args, f"--screenshot={shot}", "--window-size=1200,2400",
                           report.as_uri()], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert shot.exists(), proc.stderr[-2000:]
    pixels = mpimg.imread(shot)
    assert pixels.shape[0] >= 2300
    for role in ("treated", "control"):
        assert _share(pixels, ARM_COLOURS[role]) > 0.0005, f"KM curve of {role} not visible"
    assert _share(pixels, HEADER, tol=3) > 0.001, "no table header"
    assert _share(pixels, POOLED_COLOUR) > 0.0002, "no pooled estimate in the forest plot"
    dom = subprocess.run([*args, "--dump-dom", report.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout  # fmt: skip
    assert len(re.findall(r"<svg", dom)) == 1 + 3  # one KM, three forest plots
