"""The whole pipeline on DuckDB at 1M and 10M persons: generation, dbt build, both studies,
peak memory and disk, the index cohort beside OHDSI Circe's SQL, and how the build's cost
grows from one size to the next.

Issue 14 targets (2-core, 24 GB machine): 10M persons (about 1.07 billion clinical event
rows) built in <= 150 s wall with peak memory <= 16 GB; the models' cost growing no faster
than linearly from 1M to 10M. The scaling exponent is log(t_10M / t_1M) / log(persons ratio)
for the build's wall time and for the models' summed execution time (1 = linear).

Per size (COHORT_ETL_BENCH_SCALE_SIZES, default "1000000,10000000"): the CDM (seed 42) is
generated into a throw-away DuckDB file (COHORT_ETL_BENCH_TMP, default the system temporary
folder) in a child process (wall, peak RSS); the data-quality stage runs in another child
(wall, peak RSS; DuckDB memory_limit 8GB) for sizes up to COHORT_ETL_BENCH_SCALE_CHECK_MAX
persons (default 0: not run; on the busy 2-core machine it took over 16 minutes at 1M, so
it is left to its own benchmark); with COHORT_ETL_BENCH_SCALE_LAYOUT=site (the
default) persons are then scattered as at a site (bench/layout.py, as bench_dbt's "site"
layout); dbt parses the project, then builds in full, measured (wall,
models' summed time, peak RSS of the dbt process, which runs DuckDB); the studies run on the
marts in a child process (`run_pipeline` without the build: wall, peak RSS); the index
cohort and Circe's SQL are timed as in bench_dbt (best of 3, interleaved); disk is the
DuckDB file after the build.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.memory import DescendantPeaks, run_measured

TARGETS = {"10000000": {"build_seconds": 150.0, "peak_rss_mb": 16 * 1024.0}}

GENERATE = """
from pathlib import Path
from cohort_etl.config import DuckDBProfile, NamedProfile
from cohort_etl.synthetic.generator import generate
from cohort_etl.synthetic.params import SynthParams
profile = NamedProfile(name='bench-scale', settings=DuckDBProfile(type='duckdb', path=Path({path!r})))
result = generate(SynthParams(seed=42, persons={persons!r}), profile, progress=lambda m: None)
__extra.update(persons=result.row_counts['person'], event_rows=result.event_rows)
"""

CHECK = """
from pathlib import Path
from cohort_etl.config import DuckDBProfile, NamedProfile
from cohort_etl.dbt_runner import check_cdm
profile = NamedProfile(name='bench-scale', settings=DuckDBProfile(
    type='duckdb', path=Path({path!r}), memory_limit='8GB'))
report = check_cdm(profile)
__extra.update(warnings=len(report.warnings))
"""

STUDIES = """
from pathlib import Path
from cohort_etl.config import DuckDBProfile, NamedProfile
from cohort_etl.pipeline import run_pipeline
profile = NamedProfile(name='bench-scale', settings=DuckDBProfile(type='duckdb', path=Path({path!r})))
summary = run_pipeline(profile, out_root=Path({out!r}), build=False, quiet=True)
__extra.update(stage_seconds=summary.timings)
"""


def dbt_parse(profile: Any) -> None:
    """``dbt parse`` into the profile's target folder, so that the measured build that
    follows only re-reads the project (partial parse) and builds."""
    import subprocess

    from cohort_etl.dbt_runner import DbtBuild, dbt_env, dbt_executable, dbt_project_dir

    build = DbtBuild(profile)
    build.compile_concept_sets()
    project = str(dbt_project_dir())
    subprocess.run(
        [
            dbt_executable(),
            "--no-use-colors",
            "parse",
            "--project-dir",
            project,
            "--profiles-dir",
            project,
            "--target-path",
            str(build._target()),
        ],
        env={**os.environ, **dbt_env(profile)},
        check=True,
        capture_output=True,
    )


def _measure(persons: int, tmp: Path, layout: str) -> dict[str, Any]:
    from bench.bench_dbt import _index_cohort_vs_circe
    from bench.layout import scatter_persons
    from cohort_etl.config import DuckDBProfile, NamedProfile
    from cohort_etl.dbt_runner import DbtBuild, dbt_project_dir

    path = tmp / "omop.duckdb"
    profile = NamedProfile(name="bench-scale", settings=DuckDBProfile(type="duckdb", path=path))
    generated = run_measured(GENERATE.format(path=str(path), persons=persons))
    row: dict[str, Any] = {
        "name": f"scale_{persons}",
        "layout": layout,
        "persons": generated["persons"],
        "event_rows": generated["event_rows"],
        "generate_seconds": round(generated["seconds"], 1),
        "generate_peak_rss_mb": round(generated["peak_rss_mb"], 1),
        "cdm_file_mb": round(path.stat().st_size / 2**20),
    }
    if layout == "site":
        row["layout_rewrite_seconds"] = round(scatter_persons(path, seed=7)["seconds"], 1)
    # the data-quality stage (the first step of `cohort-etl build`) in a child of its own,
    # then dbt without it (DbtBuild._run_locked: the build proper, measured alone)
    if persons <= int(os.environ.get("COHORT_ETL_BENCH_SCALE_CHECK_MAX", "0")):
        check = run_measured(CHECK.format(path=str(path)))
        row["check_seconds"] = round(check["seconds"], 1)
        row["check_peak_rss_mb"] = round(check["peak_rss_mb"], 1)
    dbt_parse(profile)
    with DescendantPeaks() as peaks:
        result = DbtBuild(profile)._run_locked()
    row.update(
        {
            "seconds": round(result.wall_seconds, 1),
            "model_seconds": round(result.model_execution_seconds, 1),
            "build_peak_rss_mb": max(peaks.peaks_mb.values(), default=None),
            "slowest_models": dict(
                sorted(
                    (
                        (n.name, round(n.execution_time, 1))
                        for n in result.nodes
                        if n.resource_type == "model"
                    ),
                    key=lambda kv: -kv[1],
                )[:5]
            ),
            "file_mb_after_build": round(path.stat().st_size / 2**20),
            "disk_free_gb": round(shutil.disk_usage(tmp).free / 2**30, 1),
        }
    )
    studies = run_measured(STUDIES.format(path=str(path), out=str(tmp / "out")))
    row["studies_seconds"] = round(studies["seconds"], 1)
    row["studies_peak_rss_mb"] = round(studies["peak_rss_mb"], 1)
    row.update(_index_cohort_vs_circe(path, dbt_project_dir() / "target" / profile.name, 3))
    target = TARGETS.get(str(persons))
    if target:
        row["target"] = "build <= 150 s wall, peak <= 16 GB"
        row["meets_target"] = (
            row["seconds"] <= target["build_seconds"]
            and (row["build_peak_rss_mb"] or 0) <= target["peak_rss_mb"]
        )
    row["cores"] = os.cpu_count()
    row["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return row


def scaling_exponent(small: dict[str, Any], large: dict[str, Any], key: str) -> float:
    """log(cost ratio) / log(persons ratio): 1 = linear, < 1 = better than linear."""
    return round(
        math.log(large[key] / small[key]) / math.log(large["persons"] / small["persons"]), 2
    )


def run() -> list[dict]:
    sizes = [
        int(s)
        for s in os.environ.get("COHORT_ETL_BENCH_SCALE_SIZES", "1000000,10000000").split(",")
    ]
    layout = os.environ.get("COHORT_ETL_BENCH_SCALE_LAYOUT", "site")
    base = os.environ.get("COHORT_ETL_BENCH_TMP") or None
    rows = []
    for persons in sizes:
        with tempfile.TemporaryDirectory(prefix="bench_scale_", dir=base) as tmp:
            rows.append(_measure(persons, Path(tmp), layout))
    for small, large in zip(rows, rows[1:], strict=False):
        large[f"exponent_build_from_{small['persons']}"] = scaling_exponent(small, large, "seconds")
        large[f"exponent_models_from_{small['persons']}"] = scaling_exponent(
            small, large, "model_seconds"
        )
    return rows
