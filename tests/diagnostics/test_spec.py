"""The diagnostics block of a study spec: defaults, overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cohort_etl.errors import SpecError
from cohort_etl.studies.spec import load_spec

STUDY_A = Path(__file__).resolve().parents[2] / "studies" / "hsct_after_cart.yaml"


def _write(tmp_path: Path, change: dict) -> Path:
    spec = yaml.safe_load(STUDY_A.read_text())
    spec["diagnostics"].update(change)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_study_a_lists_controls_and_cohortmethod_thresholds() -> None:
    spec = load_spec(STUDY_A)
    d = spec.diagnostics
    assert d is not None and len(d.negative_controls) >= 25 and d.immortal_time is True
    assert d.thresholds.max_mdrr == 10 and d.thresholds.min_equipoise == 0.2
    assert spec.diagnostics_outcome() is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"outcome": "remission_5y"}, "time-to-event outcome given as dates"),
        ({"outcome": "nope"}, "diagnostics.outcome 'nope' is not a defined outcome"),
        ({"thresholds": {"max_smd": 0.2}}, "max_smd"),
        ({"positive_controls": {"pc_x": 1.0}}, "true HR > 0 and != 1"),
        ({"matching_sensitivity": {"calipers": [0.0]}}, "calipers must be > 0"),
    ],
)
def test_bad_diagnostics_block(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(_write(tmp_path, change))
