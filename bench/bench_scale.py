"""The whole pipeline on DuckDB at 1M and 10M persons: generation, dbt build, both studies,
peak memory and disk, the index cohort beside OHDSI Circe's SQL, and how the build's cost
grows from one size to the next.

Issue 14 targets (2-core, 24 GB machine): 10M persons (about 1.07 billion clinical event
rows) built in <= 150 s wall with peak memory <= 16 GB; the models' cost growing no faster
than linearly from 1M to 10M. The scaling exponent is log(t_10M / t_1M) / log(persons ratio)
for the build's wall time and for the models' summed execution time (1 = linear).

Per size (COHORT_ETL_BENCH_SCALE_SIZES, default "1000000,10000000"): the CDM (seed 42) is
generated into a DuckDB file in a child process (wall, peak RSS) and, with
COHORT_ETL_BENCH_SCALE_LAYOUT=site (the default), its persons are scattered as at a site
(bench/layout.py, as bench_dbt's "site" layout; 'generated' keeps the generator's order, in
which the ALL/CAR-T subset fills the first row groups of every table). The file lives in a
throw-away folder (COHORT_ETL_BENCH_TMP, default the system temporary folder) or, with
COHORT_ETL_BENCH_SCALE_DIR, in DIR/<persons>_<layout>, kept and reused with the generation
numbers recorded when it was made (`python -m bench.bench_scale prepare PERSONS DIR
[LAYOUT]` makes one ahead of time). Then: the data-quality stage (the first step of
`cohort-etl build`) in a child of its own (wall, peak RSS; the stage's own DuckDB memory
limit) for sizes up to COHORT_ETL_BENCH_SCALE_CHECK_MAX persons (default 10M); dbt parses
the project, then builds in full without the stage, measured (wall, models' summed time,
peak RSS of the dbt process, which runs DuckDB); the studies run on the marts in a child
process (`run_pipeline` without the build: wall, peak RSS); the index cohort and Circe's
SQL are timed as in bench_dbt (best of 3, interleaved); disk is the DuckDB file after the
build. Every row records the cores and the 1-minute load average at its end.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.memory import DescendantPeaks, children_cpu_seconds, run_measured

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
profile = NamedProfile(name='bench-scale', settings=DuckDBProfile(type='duckdb', path=Path({path!r})))
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


def prepare(persons: int, folder: Path, layout: str) -> dict[str, Any]:
    """Generate the CDM into ``folder/omop.duckdb`` (seed 42) in a measured child and, for
    the 'site' layout, scatter its persons; the numbers go to ``folder/prepared.json``.

    A folder that already holds a prepared CDM of that size and layout is reused with the
    numbers recorded when it was made (the 10M CDM takes the better part of an hour on a
    busy machine: `python -m bench.bench_scale prepare 10000000 FOLDER` makes it ahead of
    the benchmark, COHORT_ETL_BENCH_SCALE_DIR points the benchmark at it).
    """
    import json

    from bench.layout import scatter_persons

    folder.mkdir(parents=True, exist_ok=True)
    path, record = folder / "omop.duckdb", folder / "prepared.json"
    if record.exists() and path.exists():
        done = json.loads(record.read_text())
        if done.get("persons_requested") == persons and done.get("layout") == layout:
            return {**done["numbers"], "prepared_earlier": done["finished_utc"]}
    path.unlink(missing_ok=True)
    record.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    generated = run_measured(GENERATE.format(path=str(path), persons=persons))
    numbers: dict[str, Any] = {
        "persons": generated["persons"],
        "event_rows": generated["event_rows"],
        "generate_seconds": round(generated["seconds"], 1),
        "generate_cpu_seconds": round(generated["cpu_seconds"], 1),
        "generate_peak_rss_mb": round(generated["peak_rss_mb"], 1),
        "generate_load_avg_1m": [round(load, 2), round(os.getloadavg()[0], 2)],
        "cdm_file_mb": round(path.stat().st_size / 2**20),
    }
    if layout == "site":
        scattered = scatter_persons(path, seed=7)
        numbers["layout_rewrite_seconds"] = round(scattered["seconds"], 1)
        numbers["cdm_file_mb_after_layout"] = round(path.stat().st_size / 2**20)
    finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    record.write_text(
        json.dumps(
            {
                "persons_requested": persons,
                "layout": layout,
                "finished_utc": finished,
                "numbers": numbers,
            },
            indent=2,
        )
    )
    return numbers


def _measure(persons: int, tmp: Path, layout: str) -> dict[str, Any]:
    from bench.bench_dbt import _index_cohort_vs_circe
    from cohort_etl.config import DuckDBProfile, NamedProfile
    from cohort_etl.dbt_runner import DbtBuild, dbt_project_dir

    path = tmp / "omop.duckdb"
    # one dbt target folder per size: two sizes may be measured at once
    profile = NamedProfile(
        name=f"bench-scale-{persons}", settings=DuckDBProfile(type="duckdb", path=path)
    )
    row: dict[str, Any] = {
        "name": f"scale_{persons}",
        "layout": layout,
        **prepare(persons, tmp, layout),
    }
    # the data-quality stage (the first step of `cohort-etl build`) in a child of its own,
    # then dbt without it (DbtBuild._run_locked: the build proper, measured alone)
    if persons <= int(os.environ.get("COHORT_ETL_BENCH_SCALE_CHECK_MAX", "10000000")):
        check = run_measured(CHECK.format(path=str(path)))
        row["check_seconds"] = round(check["seconds"], 1)
        row["check_cpu_seconds"] = round(check["cpu_seconds"], 1)
        row["check_warnings"] = check["warnings"]
        row["check_peak_rss_mb"] = round(check["peak_rss_mb"], 1)
    dbt_parse(profile)
    cpu0 = children_cpu_seconds()
    with DescendantPeaks() as peaks:
        result = DbtBuild(profile)._run_locked()
    row.update(
        {
            "seconds": round(result.wall_seconds, 1),
            "build_cpu_seconds": round(max(children_cpu_seconds() - cpu0, peaks.cpu_seconds), 1),
            "build_load_avg_1m": round(os.getloadavg()[0], 2),
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
    row["studies_cpu_seconds"] = round(studies["cpu_seconds"], 1)
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
    keep = os.environ.get("COHORT_ETL_BENCH_SCALE_DIR")
    base = os.environ.get("COHORT_ETL_BENCH_TMP") or None
    rows = []
    for persons in sizes:
        if keep:
            # a kept folder per size and layout: reused (generation numbers as recorded)
            rows.append(_measure(persons, Path(keep) / f"{persons}_{layout}", layout))
            continue
        with tempfile.TemporaryDirectory(prefix="bench_scale_", dir=base) as tmp:
            rows.append(_measure(persons, Path(tmp), layout))
    for small, large in zip(rows, rows[1:], strict=False):
        large[f"exponent_build_from_{small['persons']}"] = scaling_exponent(small, large, "seconds")
        large[f"exponent_models_from_{small['persons']}"] = scaling_exponent(
            small, large, "model_seconds"
        )
        large[f"exponent_build_cpu_from_{small['persons']}"] = scaling_exponent(
            small, large, "build_cpu_seconds"
        )
    return rows


if __name__ == "__main__":
    # python -m bench.bench_scale prepare PERSONS FOLDER [LAYOUT]: make a CDM ahead of the
    # benchmark (FOLDER/PERSONS_LAYOUT, as COHORT_ETL_BENCH_SCALE_DIR=FOLDER expects)
    import json

    if len(sys.argv) < 4 or sys.argv[1] != "prepare":
        sys.exit("usage: python -m bench.bench_scale prepare PERSONS FOLDER [LAYOUT]")
    n, layout_arg = int(sys.argv[2]), (sys.argv[4] if len(sys.argv) > 4 else "site")
    print(json.dumps(prepare(n, Path(sys.argv[3]) / f"{n}_{layout_arg}", layout_arg), indent=2))
