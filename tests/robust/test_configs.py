"""The pipeline end to end on many generator configurations (bench/bench_configs.py):
``cohort-etl synth`` then ``cohort-etl run``, both exit 0 and every study writes its
results. A handful run here (no CAR-T patients at all, a single one, and seed 101 of
issue 10 at 2,000 persons); all 21 run as a benchmark (``python -m bench configs``, about
20-70 minutes on 2 cores), which records the result: too long for ``make test``."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.bench_configs import FAST, ROOT, Config, run_config

from cohort_etl.studies.spec import discover, load_spec


def _check(config: Config, tmp_path: Path) -> None:
    row = run_config(config, tmp_path / config.name)
    assert row["synth_exit"] == 0, row
    assert row.get("run_exit") == 0, row
    studies = sorted(load_spec(p).name for p in discover(ROOT / "studies"))
    assert row["studies_with_results"] == studies, row
    lines = row["run_stdout_tail"]
    assert isinstance(lines, list)
    for study in studies:
        assert any(line.startswith(f"{study}: ") and "patients" in line for line in lines), lines
    if config.cart_patients == 0:
        # no CAR-T patient: said on the last lines, not only in a warning further up
        assert any(line.startswith("EMPTY COHORT: ") for line in lines), lines


@pytest.mark.parametrize("config", FAST, ids=[c.name for c in FAST])
def test_fast_configurations(config: Config, tmp_path: Path) -> None:
    _check(config, tmp_path)
