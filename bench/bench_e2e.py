"""End to end, as `make cohorts` runs it: demo CDM generation, dbt build, both studies,
reports. Timed per stage (the run's own stage timings) on the default demo and on a
1M-person CDM, each in a fresh process against a throw-away DuckDB file.

Targets (issue 3): demo end to end <= 60 s after install; 1M persons <= 3 min.
Set COHORT_ETL_BENCH_E2E_SIZES (comma-separated; 'demo' = the default demo) to choose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"demo": 60.0, "1000000": 180.0}


def _run(size: str, tmp: Path) -> dict:
    db = tmp / "omop.duckdb"
    env = {**os.environ, "COHORT_ETL_DUCKDB": str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    cli = [sys.executable, "-m", "cohort_etl.cli"]
    start = time.perf_counter()
    if size != "demo":
        subprocess.run([*cli, "-q", "synth", "--persons", size], env=env, check=True)
    subprocess.run(
        [*cli, "-q", "run", "--out", str(tmp / "out")], env=env, check=True, capture_output=True
    )
    total = time.perf_counter() - start
    stages = json.loads((tmp / "out" / "run_timings.json").read_text())
    return {"seconds": round(total, 1), **{f"stage_{k}": v for k, v in stages.items()}}


def run() -> list[dict]:
    sizes = os.environ.get("COHORT_ETL_BENCH_E2E_SIZES", "demo,1000000").split(",")
    out = []
    for size in (s.strip() for s in sizes):
        with tempfile.TemporaryDirectory(prefix="bench_e2e_") as tmp:
            got = _run(size, Path(tmp))
        target = TARGETS.get(size)
        out.append(
            {
                "name": f"e2e_{size}",
                **got,
                "target_seconds": target,
                "meets_target": None if target is None else got["seconds"] <= target,
            }
        )
    return out
