"""Faults: cohort-etl killed mid-build, and loading a real CDM over the demo.

* SIGKILL of ``cohort-etl build`` while dbt runs: the dbt child dies with it (it used to
  keep running and hold the DuckDB file's lock), and an immediate rerun succeeds.
* SIGTERM: the child is killed and reaped before cohort-etl exits.
* ``load --replace`` over the synthetic demo removes the demo's storage and truth schemas
  too, and says so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from tests.conftest import duckdb_profile_at

from cohort_etl.synthetic.generator import generate
from cohort_etl.synthetic.params import SynthParams

CLI = [sys.executable, "-m", "cohort_etl.cli"]


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    path = tmp_path / "omop.duckdb"
    generate(SynthParams(seed=5, persons=300, n_core=15), duckdb_profile_at(path, "t"))
    profiles = tmp_path / "profiles.yml"
    profiles.write_text(f"default: t\nprofiles:\n  t:\n    type: duckdb\n    path: {path}\n")
    return {
        **os.environ,
        "COHORT_ETL_PROFILES": str(profiles),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def _start_build_and_wait_for_dbt(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [*CLI, "build"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        kids = [k for k in children(proc.pid) if b"dbt" in Path(f"/proc/{k}/cmdline").read_bytes()]
        if kids:
            time.sleep(2)  # let dbt get going (connections open, models running)
            return proc, kids[0]
        assert proc.poll() is None, "cohort-etl build ended before dbt started"
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("dbt did not start within 120 s")


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_sigkill_kills_dbt_and_a_rerun_works_at_once(small: dict[str, str]) -> None:
    proc, dbt = _start_build_and_wait_for_dbt(small)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _gone_within(dbt, 10), f"dbt (pid {dbt}) outlived a SIGKILLed cohort-etl"
    rerun = subprocess.run(
        [*CLI, "build"], env=small, capture_output=True, text=True, timeout=600, check=False
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert rerun.stdout.startswith("built ")


def test_sigterm_stops_dbt_before_exiting(small: dict[str, str]) -> None:
    proc, dbt = _start_build_and_wait_for_dbt(small)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    assert code != 0
    assert not alive(dbt), "dbt still runs after cohort-etl exited on SIGTERM"


def test_load_replace_removes_the_demo_schemas(tmp_path: Path) -> None:
    path = tmp_path / "omop.duckdb"
    csv_dir = tmp_path / "csv"
    generate(
        SynthParams(seed=6, persons=200, n_core=5), duckdb_profile_at(path, "t"), csv_dir=csv_dir
    )

    def schemas() -> set[str]:
        con = duckdb.connect(str(path), read_only=True)
        try:
            rows = con.execute(
                "select schema_name from information_schema.schemata "
                "where catalog_name = current_database()"
            ).fetchall()
        finally:
            con.close()
        return {r[0] for r in rows} - {"main", "information_schema", "pg_catalog"}

    assert {"cdm", "synthetic_truth"} <= schemas()
    assert schemas() & {"cdm_storage_a", "cdm_storage_b"}
    profiles = tmp_path / "profiles.yml"
    profiles.write_text(f"default: t\nprofiles:\n  t:\n    type: duckdb\n    path: {path}\n")
    env = {**os.environ, "COHORT_ETL_PROFILES": str(profiles)}
    refused = subprocess.run(
        [*CLI, "load", "--from", str(csv_dir)], env=env, capture_output=True, text=True, check=False
    )
    assert refused.returncode == 4
    assert "schema 'cdm' already holds" in refused.stderr and "--replace" in refused.stderr
    done = subprocess.run(
        [*CLI, "load", "--from", str(csv_dir), "--replace"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "removed the synthetic demo's schemas: cdm_storage_" in done.stdout
    assert "synthetic_truth" in done.stdout
    assert schemas() == {"cdm"}
