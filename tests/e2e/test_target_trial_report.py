"""Study A's demo report leads with the target-trial estimate and warns on the published
design (HTML text and a real headless browser), and results.json has the section."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from tests.e2e.conftest import DemoRun

WARNING_RGB = (0xFD, 0xEC, 0xEA)  # the warning panel background (report/html.py)


def _html(demo_run: DemoRun) -> str:
    return (demo_run.out / "hsct_after_cart" / "report.html").read_text()


def test_results_json_has_the_target_trial_section(demo_run: DemoRun) -> None:
    res = json.loads((demo_run.out / "hsct_after_cart" / "results.json").read_text())
    tt = res["target_trial"]
    assert 0 < tt["hr_lower"] < tt["hr"] < tt["hr_upper"]
    five = next(h for h in tt["horizons"] if h["days"] == 1826)
    assert five["difference_lower"] < five["difference"] < five["difference_upper"]
    assert tt["immortal_time"]["published_design"]["flagged"] is True
    assert tt["immortal_time"]["target_trial"]["flagged"] is False
    assert tt["bootstrap_replicates"] == 500


def test_report_text_leads_with_the_target_trial(demo_run: DemoRun) -> None:
    html = _html(demo_run)
    body = html[html.index("<body>") :]
    text = re.sub(r"<[^>]+>", " ", body)
    first_rows = text[text.index("Headline results") :][:1500]
    assert "Question (target-trial emulation)" in first_rows
    assert "5-year overall survival, difference (target trial)" in first_rows
    assert "Hazard ratio of death (target trial)" in first_rows
    # section order: the emulation, then the published design with its warning panel
    i_tt = body.index("<h2>Target-trial emulation:")
    i_pub = body.index("<h2>As published (TriNetX design)</h2>")
    i_warn = body.index("<div class='warning'>Immortal-time bias")
    i_lm = body.index("<h2>Landmark analyses")
    assert i_tt < i_pub < i_warn < i_lm
    assert "Estimate vs known truth (synthetic data)" in text
    assert "class='warning'" in body or 'class="warning"' in body


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian chromium (.ci/run installs it)"
)
def test_browser_shows_strategy_curves_first_and_the_warning_panel(
    demo_run: DemoRun, tmp_path: Path
) -> None:
    report = demo_run.out / "hsct_after_cart" / "report.html"
    shots = {}
    for name, height in (("top", 1900), ("long", 6000)):
        shot = tmp_path / f"{name}.png"
        proc = subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / ('profile_' + name)}",
                f"--screenshot={shot}",
                f"--window-size=1200,{height}",
                report.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shot.exists(), proc.stderr[-2000:]
        shots[name] = mpimg.imread(shot)
    from cohort_etl.report.figures import PALETTE

    def share(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 10) -> float:
        target = np.array(rgb) / 255.0
        return float((np.abs(pixels[..., :3] - target) <= tol / 255.0).all(axis=-1).mean())

    def hex_rgb(c: str) -> tuple[int, int, int]:
        return tuple(int(c[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]

    top = shots["top"]
    # first screen: the headline table and the strategy curves (both strategy colours)
    for colour in PALETTE[:2]:
        assert share(top, hex_rgb(colour)) > 0.0005, f"strategy curve colour {colour} not seen"
    # further down: the warning panel of the published design
    assert share(shots["long"], WARNING_RGB, tol=3) > 0.001, "no immortal-time warning panel"
