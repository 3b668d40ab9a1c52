"""Stage progress for long commands: timed steps, shown live on a terminal and as plain
log lines otherwise (CI, files). Timings are kept for the run manifest."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger("cohort_etl")


@dataclass
class Progress:
    total: int
    quiet: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    _done: int = 0

    @property
    def interactive(self) -> bool:
        return sys.stderr.isatty() and not self.quiet

    @contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        """Time one stage; on failure the stage is reported as failed and the error re-raised."""
        self._done += 1
        label = f"[{self._done}/{self.total}] {name}" + (f" ({detail})" if detail else "")
        if self.interactive:
            sys.stderr.write(f"{label} ...")
            sys.stderr.flush()
        elif not self.quiet:
            log.info("%s: started", label)
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            elapsed = time.perf_counter() - start
            self.timings[name] = round(elapsed, 3)
            if self.interactive:
                sys.stderr.write(f" failed after {elapsed:.1f} s\n")
            else:
                log.error("%s: failed after %.1f s", label, elapsed)
            raise
        elapsed = time.perf_counter() - start
        self.timings[name] = round(elapsed, 3)
        if self.interactive:
            sys.stderr.write(f" done in {elapsed:.1f} s\n")
        elif not self.quiet:
            log.info("%s: done in %.1f s", label, elapsed)
