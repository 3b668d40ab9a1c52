"""Study B's demo report as a clinician reads it (issue 12): months, named reference
levels, Table 1 with n (%) / mean (SD); results.json keeps days and names the unit."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from tests.e2e.conftest import DemoRun

pytestmark = pytest.mark.slow
STUDY = "salvage_after_cart_relapse"


def _text(demo_run: DemoRun) -> str:
    html = (demo_run.out / STUDY / "report.html").read_text()
    return unescape(re.sub(r"<[^>]+>", " ", html))


def test_times_in_months_in_the_report_days_in_results_json(demo_run: DemoRun) -> None:
    results = json.loads((demo_run.out / STUDY / "results.json").read_text())
    assert (results["time_unit"], results["display_unit"]) == ("days", "months")
    head = {r["result"]: r["estimate"] for r in results["headline"]}
    median = head["Median overall survival from relapse"]
    assert re.fullmatch(r"[\d.]+ months \(95% CI [\d.]+–[\d.]+ months; SPSS-style\)", median)
    days = results["outcomes"]["os"]["per_arm"]["overall survival from relapse"]["median_spss"]
    shown = float(median.split(" months")[0])
    assert abs(shown - days["time"] / 30.4375) < 0.05  # the same median, in months
    text = _text(demo_run)
    assert median in text
    assert " days" not in " ".join(head.values())  # no day counts in the headline
    assert "Median follow-up (overall survival from relapse, reverse KM)" in head
    assert head["Median follow-up (overall survival from relapse, reverse KM)"].endswith("months")


def test_every_hazard_ratio_names_its_reference(demo_run: DemoRun) -> None:
    results = json.loads((demo_run.out / STUDY / "results.json").read_text())
    model = results["cox_models"]["os_multivariable"]
    assert len(model["coefficients"]) >= 8
    for c in model["coefficients"]:
        if c["kind"] in ("categorical", "binary"):
            assert c["reference"] is not None and c["level"] is not None, c
    variables = {c["variable"] for c in model["coefficients"]}
    assert {"salvage_targeted", "relapse_site", "cd19_status", "age_at_relapse"} <= variables
    assert {"bcr_abl1_positive", "prior_hsct", "days_cart_to_relapse"} <= variables
    per_month = next(c for c in model["coefficients"] if c["variable"] == "days_cart_to_relapse")
    assert per_month["scale"] == 30.4375
    targeted = next(c for c in model["coefficients"] if c["variable"] == "salvage_targeted")
    assert (targeted["level"], targeted["reference"]) == ("0", "1")  # inverted contrast
    text = _text(demo_run)
    rows = [r for r in results["headline"] if r["result"].startswith("Multivariable Cox")]
    assert len(rows) == len(model["coefficients"])
    for row in rows:
        assert "(reference)" in row["result"] or re.search(
            r"per ([\d.]+-)?unit increase", row["result"]
        ), row
        assert row["result"] in text
    assert "Salvage: chemotherapy vs targeted (reference)" in text


def test_table_one_has_counts_with_percentages_and_means_with_sds(demo_run: DemoRun) -> None:
    text = _text(demo_run)
    assert "Table 1: baseline characteristics" in text
    assert "Female, n (%)" in text and "Age at relapse (years), mean (SD)" in text
    assert re.search(r"targeted \(n = \d+\)", text) and re.search(r"chemotherapy \(n = \d+\)", text)
    assert len(re.findall(r"\b\d+ \(\d+\.\d%\)", text)) >= 10
    assert len(re.findall(r"\b\d+\.\d \(\d+\.\d\)", text)) >= 2
