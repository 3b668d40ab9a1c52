"""Issue 11 on the demo: study A's results.json carries the diagnostics, and the report
shows them (checked in a real browser)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.e2e.conftest import DemoRun

from cohort_etl.synthetic.controls import NEGATIVE_CONTROLS, POSITIVE_CONTROLS

pytestmark = pytest.mark.slow  # the demo run takes minutes


def _results(demo_run: DemoRun) -> dict:
    return json.loads((demo_run.out / "hsct_after_cart" / "results.json").read_text())


def test_study_a_diagnostics_in_results(demo_run: DemoRun) -> None:
    r = _results(demo_run)
    diag = r["diagnostics"]
    assert diag["thresholds"]["max_ease"] == 0.25 and diag["thresholds"]["max_sdm"] == 0.1
    d = diag["designs"]["primary"]
    # >= 25 negative-control estimates, every one estimable on the demo
    neg = [c for c in d["controls"] if c["kind"] == "negative"]
    assert len(neg) >= 25 and d["negative_controls_estimable"] >= 25
    assert all(c["hr"] is not None and c["lower"] < c["hr"] < c["upper"] for c in neg)
    assert {c["name"] for c in neg} == {c.key for c in NEGATIVE_CONTROLS}
    # the null, EASE and a calibrated HR with CI for the primary estimate
    assert d["null"]["n_controls"] >= 25 and d["ease"] is not None and d["ease"] >= 0
    (cal,) = d["calibrated"]
    assert cal["name"] == "os"
    assert cal["calibrated_lower"] < cal["calibrated_hr"] < cal["calibrated_upper"]
    assert cal["hr"] == pytest.approx(r["outcomes"]["os"]["cox"]["hr"], rel=1e-6)
    # a verdict for every diagnostic; the published design fails at least one
    names = {c["name"] for c in d["checks"]}
    assert names == {
        "balance_max_abs_smd", "equipoise", "mdrr", "ease", "ph_test_global_p",
        "share_treated_matched", "immortal_time",
    }  # fmt: skip
    assert all(c["verdict"] in ("pass", "fail", "not evaluated") for c in d["checks"])
    assert d["verdict"] == "fail" and "immortal_time" in d["failed"]
    # the positive controls' known effects: estimated HRs increase with the true HR
    pos = {c["name"]: c for c in d["controls"] if c["kind"] == "positive"}
    assert set(pos) == {c.key for c in POSITIVE_CONTROLS}
    for base in ("dental_caries", "allergic_rhinitis"):
        hrs = [pos[f"pc_{base}_hr{h}"]["hr"] for h in ("1_5", "2", "4")]
        assert hrs == sorted(hrs)
    # E-value of the primary HR (closed form from the HR)
    hr = cal["hr"]
    rr = 1 / hr if hr < 1 else hr
    assert d["e_value"]["point"] == pytest.approx(rr + math.sqrt(rr * (rr - 1)), rel=1e-6)
    # the headline marks the failing estimate
    lines = {h["result"]: h["estimate"] for h in r["headline"]}
    assert "FAILS DIAGNOSTICS" in lines["overall survival: hazard ratio"]
    # sensitivity: 5 seeds x 3 calipers of the spec's preset, and the cohortmethod preset
    ms = diag["matching_sensitivity"]
    assert len(ms["rows"]) == 16
    assert {row["preset"] for row in ms["rows"]} == {"trinetx", "cohortmethod"}
    assert all(row["hr"] is not None for row in ms["rows"])
    assert ms["hr_min"] == min(row["hr"] for row in ms["rows"]) < ms["hr_max"]


def test_study_a_target_trial_diagnostics_in_results(demo_run: DemoRun) -> None:
    """The headline (target-trial) estimate gets the same diagnostics, beside the
    published design's: every control through the emulation, calibration, verdicts."""
    r = _results(demo_run)
    d = r["diagnostics"]["designs"]["target_trial"]
    neg = [c for c in d["controls"] if c["kind"] == "negative"]
    assert {c["name"] for c in neg} == {c.key for c in NEGATIVE_CONTROLS}
    assert d["negative_controls_estimable"] >= 25 and d["null"]["n_controls"] >= 25
    assert all(c["hr"] is not None and c["lower"] < c["hr"] < c["upper"] for c in neg)
    assert d["ease"] is not None and d["ease"] >= 0
    (cal,) = d["calibrated"]
    tt = r["target_trial"]
    assert cal["name"] == "os" and cal["hr"] == pytest.approx(tt["hr"], rel=1e-9)
    assert cal["calibrated_lower"] < cal["calibrated_hr"] < cal["calibrated_upper"]
    # the controls' variance is the cheap robust one; the headline keeps its bootstrap
    assert "cluster" in d["control_variance"]
    assert d["estimate_variance"] == tt["ci_method"] and d["estimate_se"] == tt["log_hr_se"]
    checks = {c["name"]: c for c in d["checks"]}
    assert set(checks) == {c["name"] for c in r["diagnostics"]["designs"]["primary"]["checks"]}
    assert checks["immortal_time"]["verdict"] == "pass"
    assert checks["equipoise"]["verdict"] == "not evaluated" and checks["equipoise"]["detail"]
    assert d["verdict"] == ("fail" if d["failed"] else "pass")
    # the target trial's HR headline row carries its own verdict and calibrated HR
    lines = {h["result"]: h["estimate"] for h in r["headline"]}
    assert "calibrated HR" in lines["Hazard ratio of death (target trial)"]


def test_study_a_outcome_extras(demo_run: DemoRun) -> None:
    r = _results(demo_run)
    os_, rel = r["outcomes"]["os"], r["outcomes"]["relapse"]
    for o in (os_, rel):
        assert o["rmst"]["tau"] == 1826 and 0 <= o["ph_test"]["global_p"] <= 1
        assert (
            o["rmst"]["difference_lower"] < o["rmst"]["difference"] < o["rmst"]["difference_upper"]
        )
    # Fine-Gray beside the cause-specific HR for relapse with death competing
    assert os_["fine_gray"] is None
    assert (
        rel["fine_gray"]["n_competing"] > 0 and rel["fine_gray"]["lower"] < rel["fine_gray"]["shr"]
    )
    binary = r["outcomes"]["remission_5y"]
    for key in ("risk_difference", "risk_ratio", "odds_ratio"):
        assert binary[key]["lower"] < binary[key]["estimate"] < binary[key]["upper"]


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian chromium (.ci/run installs it)"
)
def test_diagnostics_panel_in_headless_chromium(demo_run: DemoRun, tmp_path: Path) -> None:
    """The DOM the browser builds from report.html has the diagnostics panel: its verdict
    table with a FAIL row, the calibration plot and the matching sensitivity table."""
    report = demo_run.out / "hsct_after_cart" / "report.html"
    proc = subprocess.run(
        [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", report.as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    dom = proc.stdout
    assert "<h2>Study diagnostics</h2>" in dom, proc.stderr[-2000:]
    panel = dom.split("<h2>Study diagnostics</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<td>FAIL</td>" in panel and "immortal time" in panel
    for design in ("published design (trinetx)", "target trial (clone-censor-weight)"):
        assert f'alt="Controls and the empirical null (calibration plot): {design}"' in panel
    # the target trial's diagnostics beside the published design's, and what to read
    beside = panel.split("Diagnostics beside each other", 1)[1].split("</table>", 1)[0]
    assert "target trial (clone-censor-weight): verdict" in beside
    assert "published design (trinetx): verdict" in beside
    assert "is the one that answers the question" in panel
    assert "Matching sensitivity" in panel and "cohortmethod" in panel
    headline = dom.split("Headline results</h2>", 1)[1].split("<h2>", 1)[0]
    assert "FAILS DIAGNOSTICS" in headline
