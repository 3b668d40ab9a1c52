"""The whole pipeline on many generator configurations: does `cohort-etl run` stay green?

Each configuration (seed x background persons x CAR-T patients) gets a fresh DuckDB file
and output folder: ``cohort-etl synth`` then ``cohort-etl run --no-demo``, both as the
user runs them (subprocesses of the project's CLI). A configuration is green when both
exit 0 and every study wrote its results.json. The list includes the three configurations
of issue 10 that used to stop at a dbt test (seeds 101, 111, 121 x 20,000 persons x 200
CAR-T patients), no CAR-T patients at all, and a single one.

Measured once (2026-11-30, commit 77fd621, 2 cores shared with other jobs): 21 of 21
configurations green (synth + run exit 0, both studies written), 46-790 s each, 72 min
in all; the three configurations of issue 10 took 238, 176 and 243 s.

``python -m bench configs`` runs every configuration (about 20-70 minutes on 2 cores);
``COHORT_ETL_BENCH_CONFIGS=0,3,7`` picks some by index. tests/robust/test_configs.py runs
a small handful of them; the full sweep is this benchmark only (too long for ``make test``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Config:
    seed: int
    persons: int
    cart_patients: int

    @property
    def name(self) -> str:
        return f"seed{self.seed}_p{self.persons}_c{self.cart_patients}"


#: The three configurations of issue 10 first, then seeds x sizes x CAR-T patients.
CONFIGS: tuple[Config, ...] = (
    Config(101, 20_000, 200),
    Config(111, 20_000, 200),
    Config(121, 20_000, 200),
    Config(1, 500, 0),
    Config(2, 500, 1),
    Config(3, 500, 5),
    Config(4, 1_000, 20),
    Config(5, 2_000, 50),
    Config(6, 2_000, 440),
    Config(7, 5_000, 100),
    Config(8, 5_000, 200),
    Config(9, 10_000, 20),
    Config(10, 10_000, 300),
    Config(42, 20_000, 440),
    Config(101, 2_000, 200),
    Config(111, 5_000, 50),
    Config(121, 10_000, 100),
    Config(2024, 3_000, 150),
    Config(7777, 15_000, 250),
    Config(31337, 20_000, 100),
    Config(99, 8_000, 600),
)

#: A handful small enough for the fast test tier (each is one synth + one dbt build).
FAST: tuple[Config, ...] = (Config(1, 500, 0), Config(2, 500, 1), Config(101, 2_000, 200))


def _cli() -> str:
    beside = Path(sys.executable).parent / "cohort-etl"
    return str(beside) if beside.exists() else "cohort-etl"


def run_config(config: Config, workdir: Path) -> dict[str, object]:
    """Generate and run one configuration in ``workdir``; a dict of what happened."""
    workdir.mkdir(parents=True, exist_ok=True)
    profiles = workdir / "profiles.yml"
    profiles.write_text(
        "default: local\nprofiles:\n  local:\n    type: duckdb\n"
        f"    path: {workdir / 'cdm.duckdb'}\n"
    )
    env = {
        **os.environ,
        "COHORT_ETL_PROFILES": str(profiles),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    env.pop("COHORT_ETL_PROFILE", None)
    out = workdir / "output"
    steps = [
        [
            "synth",
            "--seed",
            str(config.seed),
            "--persons",
            str(config.persons),
            "--cart-patients",
            str(config.cart_patients),
            "--replace",
        ],
        ["-q", "run", "--no-demo", "--out", str(out)],
    ]
    row: dict[str, object] = {"name": config.name, **config.__dict__}
    start = time.perf_counter()
    for argv in steps:
        proc = subprocess.run(
            [_cli(), *argv], env=env, capture_output=True, text=True, check=False, cwd=ROOT
        )
        step = argv[0] if argv[0] != "-q" else argv[1]
        row[f"{step}_exit"] = proc.returncode
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            row["error"] = lines[-1] if lines else proc.stdout[-300:]
            break
        row[f"{step}_stdout_tail"] = proc.stdout.strip().splitlines()[-12:]
    row["seconds"] = round(time.perf_counter() - start, 1)
    studies = sorted(p.parent.name for p in out.glob("*/results.json"))
    row["studies_with_results"] = studies
    row["green"] = row.get("run_exit") == 0 and len(studies) >= 1
    return row


def selected() -> list[Config]:
    pick = os.environ.get("COHORT_ETL_BENCH_CONFIGS")
    if not pick:
        return list(CONFIGS)
    return [CONFIGS[int(i)] for i in pick.split(",")]


def run() -> list[dict[str, object]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="cohort_etl_configs_") as tmp:
        for config in selected():
            row = run_config(config, Path(tmp) / config.name)
            print(json.dumps(row, default=str), flush=True)
            rows.append(row)
    return rows
