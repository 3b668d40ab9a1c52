"""The demo run fixtures: the real ``cohort-etl run`` on the real default demo CDM.

Registered once, in tests/conftest.py, so every folder (e2e, network, ...) shares one
session instance (a fixture imported into a test module or a folder's conftest would be
a second definition, and run the two demo runs again).

The demo run is the README's ``make cohorts`` (demo CDM generated because none exists,
dbt build, both studies, reports), pointed at a temporary DuckDB file and output folder
so the developer's own data/ and output/ are never touched. It runs twice per session:
the second run must reproduce the first byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "cohort_etl.cli"]


@dataclass
class DemoRun:
    duckdb_path: Path
    out: Path
    stdout: str
    stderr: str


def run_cli(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_extra, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=900)


def _demo_run(root: Path, name: str, duckdb_path: Path) -> DemoRun:
    out = root / name
    proc = run_cli(["run", "--out", str(out)], {"COHORT_ETL_DUCKDB": str(duckdb_path)})
    assert proc.returncode == 0, f"cohort-etl run failed:\n{proc.stderr[-4000:]}"
    return DemoRun(duckdb_path, out, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoRun, DemoRun]:
    root = tmp_path_factory.mktemp("demo")
    db = root / "cdm.duckdb"
    first = _demo_run(root, "first", db)
    second = _demo_run(root, "second", db)
    return first, second


@pytest.fixture(scope="session")
def demo_run(demo_runs: tuple[DemoRun, DemoRun]) -> DemoRun:
    return demo_runs[0]
