"""bench.memory: a child's peak memory and CPU seconds; bench_scale's exponent and kept CDMs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from bench.bench_scale import prepare, scaling_exponent
from bench.memory import DescendantPeaks, run_measured


def test_child_peak_is_seen_after_it_frees_the_memory() -> None:
    # the child holds 300 MB for a moment, frees it, then idles: the peak must remain
    code = (
        "import time\nblock = bytearray(300 * 2**20)\ntime.sleep(1.0)\ndel block\ntime.sleep(1.0)\n"
    )
    with DescendantPeaks(interval=0.1) as peaks:
        subprocess.run([sys.executable, "-c", code], check=True)
    python = max(v for k, v in peaks.peaks_mb.items() if k.startswith("python"))
    assert python >= 300


def test_scaling_exponent() -> None:
    small = {"persons": 1_000_000, "seconds": 10.0}
    assert scaling_exponent(small, {"persons": 10_000_000, "seconds": 100.0}, "seconds") == 1.0
    assert scaling_exponent(
        small, {"persons": 10_000_000, "seconds": 50.0}, "seconds"
    ) == pytest.approx(0.7, abs=0.01)


def test_cpu_seconds_of_a_busy_child_and_of_run_measured() -> None:
    # the child spins for about a second of CPU; sampled and rusage-reported CPU see it
    # (lower bounds: short by at most one sampling interval), and sleeping costs none
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0:\n    pass\n"
    with DescendantPeaks(interval=0.05) as peaks:
        subprocess.run([sys.executable, "-c", spin], check=True)
    assert 0.8 <= peaks.cpu_seconds <= 2.0
    busy = run_measured(spin)
    idle = run_measured("import time\ntime.sleep(1.0)\n")
    assert busy["cpu_seconds"] >= 1.0
    assert idle["cpu_seconds"] < 0.5 <= idle["seconds"]


@pytest.mark.slow
def test_prepare_keeps_and_reuses_a_cdm(tmp_path) -> None:
    """bench_scale.prepare generates once, records its numbers, reuses them for the same
    size and layout, and starts afresh for another size."""
    import duckdb

    folder = tmp_path / "kept"
    first = prepare(300, folder, "generated")
    stamp = (folder / "omop.duckdb").stat().st_mtime_ns
    con = duckdb.connect(str(folder / "omop.duckdb"), read_only=True)
    try:
        persons = con.execute("select count(*) from cdm.person").fetchone()[0]
    finally:
        con.close()
    assert first["persons"] == persons > 300  # the ALL subset comes on top
    again = prepare(300, folder, "generated")
    assert (folder / "omop.duckdb").stat().st_mtime_ns == stamp
    assert {k: again[k] for k in first} == first and "prepared_earlier" in again
    other = prepare(200, folder, "generated")
    assert other["persons"] < first["persons"] and "prepared_earlier" not in other
