"""The demo CDM on Spark, built once per test session.

The fixture is the README's demo on DuckDB (`cohort-etl run`, which generates the demo CDM),
that CDM exported to Parquet (one folder per table) and registered as a Spark database
(`cohort-etl load --profile spark`), then `cohort-etl run --profile spark` on it: the whole
pipeline in a local Spark (dbt-spark session mode), in temporary folders. Spark's Hive
metastore admits one process, so these tests run as a pytest step of their own (`make test`:
``-m spark``); without pyspark they are skipped, unless COHORT_ETL_TEST_SPARK=required (as
`make test` sets it), when they fail.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.e2e.conftest import CLI

from cohort_etl.config import NamedProfile, SparkProfile
from cohort_etl.spark.loader import duckdb_cdm_to_parquet


def require_spark() -> None:
    """Skip (or, when the run requires Spark, fail) without pyspark or Java."""
    missing = []
    if importlib.util.find_spec("pyspark") is None:
        missing.append("pyspark (pip install -e '.[spark]')")
    if not any(Path(d, "java").exists() for d in os.environ.get("PATH", "").split(os.pathsep)):
        missing.append("java (apt-get install openjdk-17-jre-headless)")
    if missing:
        message = f"Spark tests need {' and '.join(missing)}"
        if os.environ.get("COHORT_ETL_TEST_SPARK") == "required":
            pytest.fail(message)
        pytest.skip(message)


def run_cli(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process; an hour's limit (a Spark build on a busy 2-core machine
    was seen to take 16 minutes)."""
    env = {**os.environ, **env_extra, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=3600)


def spark_profile_at(warehouse: Path, name: str = "spark") -> NamedProfile:
    return NamedProfile(
        name=name,
        settings=SparkProfile(type="spark", warehouse=warehouse, master="local[2]"),
    )


def folder_digest(folder: Path) -> str:
    """One hash over every file's path and bytes under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class SparkDemo:
    duckdb_path: Path
    duckdb_out: Path
    parquet: Path
    parquet_digest_before: str
    warehouse: Path
    spark_out: Path
    run_stdout: str

    @property
    def profile(self) -> NamedProfile:
        return spark_profile_at(self.warehouse)


@pytest.fixture(scope="session")
def spark_demo() -> Iterator[SparkDemo]:
    """Not under pytest's tmp_path: a pytest session started meanwhile (other work on the
    machine) deletes all but the newest three pytest-of-<user>/pytest-N folders, and this
    fixture's Spark tables vanished mid-build that way."""
    require_spark()
    root = Path(tempfile.mkdtemp(prefix="cohort_etl_spark_demo_"))
    try:
        yield _spark_demo(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _spark_demo(root: Path) -> SparkDemo:
    duck = root / "omop.duckdb"
    proc = run_cli(["run", "--out", str(root / "duckdb")], {"COHORT_ETL_DUCKDB": str(duck)})
    assert proc.returncode == 0, f"DuckDB demo run failed:\n{proc.stderr[-4000:]}"
    parquet = root / "parquet"
    duckdb_cdm_to_parquet(duck, "cdm", parquet)
    digest = folder_digest(parquet)
    env = {
        "COHORT_ETL_SPARK_WAREHOUSE": str(root / "warehouse"),
        "COHORT_ETL_SPARK_MASTER": "local[2]",
    }
    proc = run_cli(["load", "--profile", "spark", "--from", str(parquet)], env)
    assert proc.returncode == 0, f"registering the Parquet CDM failed:\n{proc.stderr[-4000:]}"
    proc = run_cli(["run", "--profile", "spark", "--out", str(root / "spark")], env)
    assert proc.returncode == 0, f"cohort-etl run --profile spark failed:\n{proc.stderr[-4000:]}"
    return SparkDemo(
        duckdb_path=duck,
        duckdb_out=root / "duckdb",
        parquet=parquet,
        parquet_digest_before=digest,
        warehouse=root / "warehouse",
        spark_out=root / "spark",
        run_stdout=proc.stdout,
    )
