"""One engine, two doors: ``cohort-etl analyze`` on the analysis dataset that ``cohort-etl
run`` wrote, with the same study spec, gives the same results.json in every number and
string; only the provenance (where the data came from) differs. Both files follow the
published schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import DemoRun, run_cli
from tests.engine.schema import assert_valid

STUDIES = ("hsct_after_cart", "salvage_after_cart_relapse")
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _leaves(value: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of a JSON value by its path (numbers, strings, booleans, nulls)."""
    if isinstance(value, dict):
        return {
            k: v for key, item in value.items() for k, v in _leaves(item, f"{path}.{key}").items()
        }
    if isinstance(value, list):
        return {
            k: v for i, item in enumerate(value) for k, v in _leaves(item, f"{path}[{i}]").items()
        }
    return {path: value}


@pytest.mark.parametrize("study", STUDIES)
def test_analyze_on_the_run_dataset_gives_the_run_results(
    demo_run: DemoRun, tmp_path: Path, study: str
) -> None:
    folder = demo_run.out / study
    out = tmp_path / study
    proc = run_cli(
        ["analyze", "--data", str(folder / "analysis_dataset.csv"),
         "--spec", str(ROOT / "studies" / f"{study}.yaml"), "--out", str(out)],
        {},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = assert_valid(folder / "results.json")
    analyzed = assert_valid(out / "results.json")
    assert run["provenance"]["door"] == "run" and analyzed["provenance"]["door"] == "analyze"
    assert run["provenance"]["attrition"], "run reads the cohort's attrition by name"
    a = _leaves({k: v for k, v in run.items() if k != "provenance"})
    b = _leaves({k: v for k, v in analyzed.items() if k != "provenance"})
    assert a.keys() == b.keys()
    differ = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert not differ, differ
    numbers = [v for v in a.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    assert len(numbers) > 200, "too few numbers compared"


def test_every_results_json_of_the_demo_run_follows_the_schema(demo_run: DemoRun) -> None:
    files = sorted(demo_run.out.glob("*/results.json"))
    assert {f.parent.name for f in files} >= set(STUDIES)
    for path in files:
        assert json.loads(path.read_text())["schema_version"] == 2
        assert_valid(path)
