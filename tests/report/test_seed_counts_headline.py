"""The headline names the test the chooser picked, checked on study B's published counts.

Seed (shared seeds/study_b_salvage_after_cart_relapse.txt): CR 61% targeted vs 19%
chemotherapy, P = 0.0035 (only 28/46 vs 4/21 fit; the Yates-corrected chi-square gives
0.00355, Pearson without correction 0.0015); CNS relapse 100% vs non-CNS extramedullary
17%, P = 0.003 (8/8 vs 1/6, Fisher's exact test 0.0030). The study is run through the
real file door (``cohort-etl analyze``) and the published P values are the oracle.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import yaml
from tests.e2e.conftest import run_cli


def _published_dataset() -> pd.DataFrame:
    rows = []
    for targeted, n, cr in ((1, 46, 28), (0, 21, 4)):
        rows += [{"salvage_targeted": targeted, "cr": int(i < cr)} for i in range(n)]
    data = pd.DataFrame(rows)
    data["extramedullary_site"] = "none"
    responders = data.index[data["cr"] == 1]
    non_responders = data.index[data["cr"] == 0]
    data.loc[responders[:8], "extramedullary_site"] = "cns"  # 8/8 CNS in CR
    data.loc[responders[8:9], "extramedullary_site"] = "non_cns"  # 1/6 non-CNS in CR
    data.loc[non_responders[:5], "extramedullary_site"] = "non_cns"
    return data


SPEC = {
    "name": "seed_counts",
    "title": "Study B published counts",
    "outcomes": [{"name": "cr", "type": "binary", "label": "CR/CRi", "column": "cr"}],
    "comparisons": [
        {
            "name": "cr_targeted",
            "outcome": "cr",
            "by": "salvage_targeted",
            "levels": ["1", "0"],
            "level_labels": {"1": "targeted", "0": "chemotherapy"},
            "label": "CR: targeted vs chemotherapy",
        },
        {
            "name": "cr_by_site",
            "outcome": "cr",
            "by": "extramedullary_site",
            "levels": ["cns", "non_cns"],
            "level_labels": {"cns": "CNS", "non_cns": "non-CNS EMD"},
            "label": "CR: CNS vs non-CNS extramedullary",
        },
    ],
}


def _p_after(text: str, test: str) -> float:
    match = re.search(re.escape(test) + r" P = ([0-9.]+)", text)
    assert match, f"{test!r} with a P value not in {text!r}"
    return float(match.group(1))


def test_headline_names_yates_and_fisher_with_the_published_p(tmp_path: Path) -> None:
    data = _published_dataset()
    assert (data.groupby("salvage_targeted")["cr"].agg(["sum", "count"]).values.tolist()) == [
        [4, 21],
        [28, 46],
    ]
    csv, spec = tmp_path / "b.csv", tmp_path / "spec.yaml"
    data.to_csv(csv, index=False)
    spec.write_text(yaml.safe_dump(SPEC))
    out = tmp_path / "out"
    proc = run_cli(["analyze", "--data", str(csv), "--spec", str(spec), "--out", str(out)], {})
    assert proc.returncode == 0, proc.stderr[-2000:]
    head = {
        r["result"]: r["estimate"]
        for r in json.loads((out / "results.json").read_text())["headline"]
    }
    targeted = head["CR: targeted vs chemotherapy"]
    site = head["CR: CNS vs non-CNS extramedullary"]
    # the published P values, to the digits published
    assert abs(_p_after(targeted, "Yates-corrected chi-square") - 0.0035) <= 0.00005 + 1e-12
    assert abs(_p_after(site, "Fisher's exact test") - 0.003) <= 0.0005
    assert "targeted 61% (28/46)" in targeted and "chemotherapy 19% (4/21)" in targeted
    assert "CNS 100% (8/8)" in site and "non-CNS EMD 17% (1/6)" in site
    for text in (targeted, site):  # only the chosen test in the headline
        assert len(re.findall(r"P [=<]", text)) == 1, text
    assert "Pearson" not in targeted and "chi-square" not in site
    html = (out / "report.html").read_text().replace("&#x27;", "'").replace("&#39;", "'")
    assert "Yates-corrected chi-square" in html and "Fisher's exact test" in html
