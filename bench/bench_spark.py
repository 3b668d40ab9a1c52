"""dbt build on Spark (local, dbt-spark session mode) next to DuckDB on the same CDM, in the
same run: wall time, the models' summed execution time, the ratio, and peak memory (the
JVM's for Spark, the dbt process's for DuckDB, which runs DuckDB in-process).

Per size (COHORT_ETL_BENCH_SPARK_SIZES, comma-separated, 'demo' = the default demo; default
"demo,1000000"): the synthetic CDM (seed 42) is generated into a throw-away DuckDB file,
exported to Parquet (a folder per table) and registered as the Spark CDM database
(cohort-etl load --profile spark). Each engine then runs `dbt parse` and one full `dbt build`
(models, data and unit tests; without the data-quality stage that `cohort-etl build` runs
first), whose wall time is reported. With COHORT_ETL_BENCH_SCALE_DIR set, a numeric size uses
the CDM bench_scale keeps there (layout COHORT_ETL_BENCH_SCALE_LAYOUT, default 'site': persons
scattered as at a site), copied, instead of generating one. Spark runs `local[*]` with the profile's defaults (driver
memory COHORT_ETL_BENCH_SPARK_DRIVER_MEMORY, default 8g); DuckDB with its defaults.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.memory import DescendantPeaks, children_cpu_seconds


def _build(profile: Any) -> dict[str, Any]:
    from bench.bench_scale import dbt_parse
    from cohort_etl.dbt_runner import DbtBuild

    dbt_parse(profile)
    cpu0 = children_cpu_seconds()
    with DescendantPeaks() as peaks:
        result = DbtBuild(profile)._run_locked()
    return {
        "seconds": round(result.wall_seconds, 1),
        "cpu_seconds": round(max(children_cpu_seconds() - cpu0, peaks.cpu_seconds), 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "model_seconds": round(result.model_execution_seconds, 1),
        "nodes": len(result.nodes),
        "peaks_mb": peaks.peaks_mb,
    }


def _measure(size: str, tmp: Path) -> dict[str, Any]:
    from cohort_etl.config import DuckDBProfile, NamedProfile, SparkProfile
    from cohort_etl.spark.loader import duckdb_cdm_to_parquet, register_cdm_folder
    from cohort_etl.spark.session import release_session
    from cohort_etl.synthetic.generator import generate
    from cohort_etl.synthetic.params import SynthParams

    path = tmp / "omop.duckdb"
    duck = NamedProfile(name="bench-duckdb", settings=DuckDBProfile(type="duckdb", path=path))
    keep = os.environ.get("COHORT_ETL_BENCH_SCALE_DIR")
    if keep and size != "demo":
        # the CDM bench_scale prepared (and kept) for this size and layout, copied
        from bench.bench_scale import prepare

        layout = os.environ.get("COHORT_ETL_BENCH_SCALE_LAYOUT", "site")
        folder = Path(keep) / f"{size}_{layout}"
        event_rows = prepare(int(size), folder, layout)["event_rows"]
        shutil.copyfile(folder / "omop.duckdb", path)
    else:
        params = SynthParams(seed=42) if size == "demo" else SynthParams(seed=42, persons=int(size))
        event_rows = generate(params, duck, progress=lambda m: None).event_rows
    start = time.perf_counter()
    duckdb_cdm_to_parquet(path, "cdm", tmp / "parquet")
    export_seconds = time.perf_counter() - start
    spark = NamedProfile(
        name="bench-spark",
        settings=SparkProfile(
            type="spark",
            warehouse=tmp / "spark",
            driver_memory=os.environ.get("COHORT_ETL_BENCH_SPARK_DRIVER_MEMORY", "8g"),
        ),
    )
    start = time.perf_counter()
    register_cdm_folder(tmp / "parquet", spark)
    register_seconds = time.perf_counter() - start
    release_session()
    on_duck = _build(duck)
    on_spark = _build(spark)
    return {
        "name": f"spark_vs_duckdb_build_{size}",
        "seconds": on_spark["seconds"],
        "duckdb_seconds": on_duck["seconds"],
        "spark_over_duckdb": round(on_spark["seconds"] / on_duck["seconds"], 1),
        "spark_cpu_seconds": on_spark["cpu_seconds"],
        "duckdb_cpu_seconds": on_duck["cpu_seconds"],
        "spark_over_duckdb_cpu": round(on_spark["cpu_seconds"] / on_duck["cpu_seconds"], 1),
        "spark_load_avg_1m": on_spark["load_avg_1m"],
        "duckdb_load_avg_1m": on_duck["load_avg_1m"],
        "spark_model_seconds": on_spark["model_seconds"],
        "duckdb_model_seconds": on_duck["model_seconds"],
        "spark_jvm_peak_rss_mb": on_spark["peaks_mb"].get("java"),
        "spark_dbt_peak_rss_mb": max(
            (v for k, v in on_spark["peaks_mb"].items() if k.startswith(("python", "dbt"))),
            default=None,
        ),
        "duckdb_dbt_peak_rss_mb": max(
            (v for k, v in on_duck["peaks_mb"].items() if k.startswith(("python", "dbt"))),
            default=None,
        ),
        "nodes": on_spark["nodes"],
        "event_rows": event_rows,
        "parquet_export_seconds": round(export_seconds, 1),
        "spark_register_seconds": round(register_seconds, 1),
        "cores": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def run() -> list[dict]:
    sizes = os.environ.get("COHORT_ETL_BENCH_SPARK_SIZES", "demo,1000000").split(",")
    out = []
    for size in (s.strip() for s in sizes):
        base = os.environ.get("COHORT_ETL_BENCH_TMP") or None
        with tempfile.TemporaryDirectory(prefix="bench_spark_", dir=base) as tmp:
            out.append(_measure(size, Path(tmp)))
    return out
