"""Helpers to measure wall time and peak memory of a step in a child process."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB.

    Linux: ``VmHWM`` of /proc/self/status, which starts afresh with the process image.
    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux keeps that across fork + exec, so a
    child started by a large parent reports the parent's peak (seen here: a 10 MB child of
    a 1.5 GB parent reported 1,510 MB; `make bench` children reported the 4.2 GB of the
    parent's earlier DuckDB work).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_PEAK_RSS_SOURCE = inspect.getsource(peak_rss_mb)


def run_measured(code: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``code`` in a fresh Python; return wall seconds and peak RSS (MB) of that child.

    The child prints a JSON dict on its last stdout line; it is merged into the result.
    """
    wrapper = (
        "import json, time\n"
        f"{_PEAK_RSS_SOURCE}\n"
        "t0 = time.perf_counter()\n"
        "__extra = {}\n"
        f"{code}\n"
        "print(json.dumps({'seconds': time.perf_counter() - t0, "
        "'peak_rss_mb': peak_rss_mb(), **__extra}))\n"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - start
    return result


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def _status(pid: int) -> tuple[str, float]:
    """(command name, VmHWM in MB) of a process; ('', 0) once it is gone."""
    name, hwm = "", 0.0
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("Name:"):
                    name = line.split()[1]
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return name, hwm


class DescendantPeaks:
    """Peak resident memory of this process's descendants (a dbt build and the JVM it
    starts), by command name, sampled every ``interval`` seconds in a thread.

    ``VmHWM`` only grows, so the last sample before a process exits is its peak to within
    one interval's growth. Use as a context manager; read :attr:`peaks_mb` afterwards
    (``{"python3": ..., "java": ...}``: the largest process of each name).
    """

    def __init__(self, interval: float = 0.2) -> None:
        import threading

        self.interval = interval
        self.peaks_mb: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import os

        root = os.getpid()
        while not self._stop.wait(self.interval):
            todo, seen = _children(root), set()
            while todo:
                pid = todo.pop()
                if pid in seen:
                    continue
                seen.add(pid)
                todo.extend(_children(pid))
                name, hwm = _status(pid)
                if name:
                    self.peaks_mb[name] = max(self.peaks_mb.get(name, 0.0), round(hwm, 1))

    def __enter__(self) -> DescendantPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
