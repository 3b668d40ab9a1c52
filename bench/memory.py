"""Helpers to measure wall time and peak memory of a step in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
import time


def run_measured(code: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``code`` in a fresh Python; return wall seconds and peak RSS (MB) of that child.

    The child prints a JSON dict on its last stdout line; it is merged into the result.
    """
    wrapper = (
        "import json, resource, time\n"
        "t0 = time.perf_counter()\n"
        "__extra = {}\n"
        f"{code}\n"
        "print(json.dumps({'seconds': time.perf_counter() - t0, "
        "'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **__extra}))\n"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - start
    return result
