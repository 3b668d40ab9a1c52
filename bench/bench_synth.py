"""Synthetic CDM generation: wall time and peak memory (child process) per size.

Targets (issue 2): the default demo in <= 10 s; 1M background persons (>= 100M clinical
event rows) in <= 120 s and <= 6 GB peak RSS on the 2-core reference machine. Each size
runs once in a fresh Python (bench.memory.run_measured) into a throw-away DuckDB file.
Set COHORT_ETL_BENCH_SYNTH_SIZES (comma-separated, 'demo' for the default) to choose sizes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.memory import run_measured

TARGETS = {"demo": ("<= 10 s", 10.0, None), "1000000": ("<= 120 s, <= 6 GB", 120.0, 6144.0)}

CODE = """
from pathlib import Path
from cohort_etl.config import DuckDBProfile, NamedProfile
from cohort_etl.synthetic.generator import generate
from cohort_etl.synthetic.params import SynthParams
profile = NamedProfile(name='bench', settings=DuckDBProfile(type='duckdb', path=Path({path!r})))
params = SynthParams() if {persons!r} is None else SynthParams(persons={persons!r})
result = generate(params, profile, progress=lambda msg: None)
import resource
_ru = resource.getrusage(resource.RUSAGE_SELF)
__extra.update(persons=result.row_counts['person'], event_rows=result.event_rows,
               cpu_seconds=round(_ru.ru_utime + _ru.ru_stime, 1),
               generate_seconds=round(result.seconds, 2),
               db_mb=round(Path({path!r}).stat().st_size / 2**20, 1))
"""


def run() -> list[dict]:
    sizes = os.environ.get("COHORT_ETL_BENCH_SYNTH_SIZES", "demo,100000,1000000").split(",")
    out = []
    for size in sizes:
        size = size.strip()
        persons = None if size == "demo" else int(size)
        with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
            path = str(Path(tmp) / "cdm.duckdb")
            got = run_measured(CODE.format(path=path, persons=persons))
        target = TARGETS.get(size)
        row = {
            "name": f"synth_{size}",
            "seconds": round(got["seconds"], 2),
            "peak_rss_mb": round(got["peak_rss_mb"], 1),
            "persons": got["persons"],
            "event_rows": got["event_rows"],
            "cpu_seconds": got["cpu_seconds"],
            "db_mb": got["db_mb"],
            "cores": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
        if target:
            row["target"] = target[0]
            row["meets_target"] = got["seconds"] <= target[1] and (
                target[2] is None or got["peak_rss_mb"] <= target[2]
            )
        out.append(row)
    return out
