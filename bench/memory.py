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
#: prefix of the child's result line on its stdout
_MARK = "__bench_result__ "


def run_measured(code: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``code`` in a fresh Python; return wall seconds, CPU seconds (user + system, all
    threads: on a shared machine the steadier measure of the work done) and peak RSS (MB)
    of that child.

    The child prints a JSON dict on its last stdout line; it is merged into the result.
    """
    wrapper = (
        "import json, time\n"
        f"__MARK = {_MARK!r}\n"
        f"{_PEAK_RSS_SOURCE}\n"
        "t0 = time.perf_counter()\n"
        "__extra = {}\n"
        f"{code}\n"
        "import resource as __r\n"
        "__u = __r.getrusage(__r.RUSAGE_SELF)\n"
        "print('\\n' + __MARK + json.dumps({'seconds': time.perf_counter() - t0, "
        "'cpu_seconds': __u.ru_utime + __u.ru_stime, "
        "'peak_rss_mb': peak_rss_mb(), **__extra}))\n"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{proc.stderr[-4000:]}")
    # the last marked line: a DuckDB progress bar may end stdout without a newline
    marked = [line for line in proc.stdout.splitlines() if line.startswith(_MARK)]
    if not marked:
        raise RuntimeError(f"benchmark step printed no result:\n{proc.stdout[-2000:]}")
    result = json.loads(marked[-1][len(_MARK) :])
    result["process_seconds"] = time.perf_counter() - start
    return result


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 once it is gone)."""
    import os

    try:
        with open(f"/proc/{pid}/stat") as stat:
            # fields after the command name (which may hold spaces) start at index 2
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


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
    (``{"python3": ..., "java": ...}``: the largest process of each name) and
    :attr:`cpu_seconds` (user + system CPU of every descendant seen, each as last sampled:
    a lower bound, short by at most one interval per process; it counts a JVM that its
    parent never waits for, which ``RUSAGE_CHILDREN`` would miss).
    """

    def __init__(self, interval: float = 0.2) -> None:
        import threading

        self.interval = interval
        self.peaks_mb: dict[str, float] = {}
        self._cpu: dict[int, float] = {}
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
                    cpu = _cpu_seconds(pid)
                    if cpu:
                        self._cpu[pid] = max(self._cpu.get(pid, 0.0), cpu)

    @property
    def cpu_seconds(self) -> float:
        return round(sum(self._cpu.values()), 1)

    def __enter__(self) -> DescendantPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def children_cpu_seconds() -> float:
    """User + system CPU seconds of every child this process has waited for (a dbt
    build's subprocess included): the difference around a step is that step's CPU."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
