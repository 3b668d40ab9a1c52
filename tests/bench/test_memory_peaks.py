"""bench.memory.DescendantPeaks sees a child's peak memory; bench_scale's exponent."""

from __future__ import annotations

import subprocess
import sys

import pytest
from bench.bench_scale import scaling_exponent
from bench.memory import DescendantPeaks


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
