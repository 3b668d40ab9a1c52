"""What long commands show while they run: stages, bars with ETA, and log lines.

Two modes, chosen once per process by :func:`configure_output` (the CLI calls it):

- **live** (stdout and stderr are both terminals, not ``-q``): one `rich`_ live display on
  stderr holds every running stage (spinner, elapsed time) and bar (count, ETA); log
  records are printed through the same console, above the display, so they never break
  into it; a finished stage or bar leaves one line.
- **plain** (anything else: pipes, files, CI, library use): no ANSI codes, no cursor
  movement; stages and bars are log lines (a bar logs each step when it has few, else each
  tenth), and dbt's per-model lines come from :mod:`cohort_etl.dbt_runner`.

``-v`` turns the project's own loggers (``cohort_etl.*``) to DEBUG and leaves every other
logger (matplotlib, urllib3, PIL, py4j, ...) at WARNING; ``-q`` shows warnings only.

.. _rich: https://rich.readthedocs.io

Examples
--------
>>> from cohort_etl.progress import Progress, task
>>> with task("loading", total=3, unit="tables") as bar:   # doctest: +SKIP
...     for _ in range(3):
...         bar.advance()
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

log = logging.getLogger("cohort_etl")

#: format of log lines in plain mode
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: the project's loggers; every other logger stays at WARNING
OWN_LOGGER = "cohort_etl"


@dataclass
class _Output:
    live: bool = False
    console: Any = None  # rich.console.Console while live
    display: Any = None  # rich.progress.Progress while a live display is up
    depth: int = 0
    handler: logging.Handler | None = None


_OUTPUT = _Output()


def is_terminal(*streams: IO[Any] | None) -> bool:
    """True when every stream is an interactive terminal (and TERM is not ``dumb``)."""
    if os.environ.get("TERM", "") == "dumb":
        return False
    for stream in streams:
        isatty = getattr(stream, "isatty", None)
        if stream is None or isatty is None or not isatty():
            return False
    return True


class _OwnOrWarning(logging.Filter):
    """Pass the project's records at any level, other libraries' from WARNING up (a
    library that sets its own logger to DEBUG still cannot flood ``-v``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name == OWN_LOGGER or record.name.startswith(OWN_LOGGER + ".")
        return own or record.levelno >= logging.WARNING


def configure_output(verbose: bool = False, quiet: bool = False, live: bool | None = None) -> None:
    """Set up logging and the progress mode for this process (idempotent).

    Parameters
    ----------
    verbose : bool
        The project's loggers at DEBUG (third-party loggers stay at WARNING).
    quiet : bool
        Warnings and errors only; no live display.
    live : bool, optional
        Force the live display on or off (default: both stdout and stderr are terminals).
    """
    root = logging.getLogger()
    if _OUTPUT.handler is not None:
        root.removeHandler(_OUTPUT.handler)
    if live is None:
        live = is_terminal(sys.stdout, sys.stderr)
    _OUTPUT.live = bool(live) and not quiet
    handler: logging.Handler
    if _OUTPUT.live:
        from rich.console import Console
        from rich.highlighter import NullHighlighter
        from rich.logging import RichHandler

        _OUTPUT.console = Console(stderr=True)
        handler = RichHandler(
            console=_OUTPUT.console,
            show_path=False,
            log_time_format="%H:%M:%S",
            markup=False,
            highlighter=NullHighlighter(),
            rich_tracebacks=False,
        )
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        _OUTPUT.console = None
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT, datefmt="%H:%M:%S"))
    handler.addFilter(_OwnOrWarning())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    own = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.getLogger(OWN_LOGGER).setLevel(own)
    _OUTPUT.handler = handler


def live() -> bool:
    """True when progress is shown as a live display (see :func:`configure_output`)."""
    return _OUTPUT.live


@contextmanager
def _display() -> Iterator[Any]:
    """The shared live display (started by the outermost user), or None in plain mode."""
    if not _OUTPUT.live:
        yield None
        return
    if _OUTPUT.display is None:
        _OUTPUT.display = _make_display()
        _OUTPUT.display.start()
    _OUTPUT.depth += 1
    try:
        yield _OUTPUT.display
    finally:
        _OUTPUT.depth -= 1
        if _OUTPUT.depth == 0:
            _OUTPUT.display.stop()
            _OUTPUT.display = None


def _make_display() -> Any:
    """spinner, label, bar, count, elapsed, ETA; transient: finished lines stay instead."""
    from rich.progress import (
        BarColumn,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as RichProgress
    from rich.table import Column
    from rich.text import Text

    class CountColumn(ProgressColumn):
        """``done/total unit`` (MB for bytes); blank while the total is unknown."""

        def render(self, task: Any) -> Text:
            if task.total is None or not task.fields.get("unit"):
                return Text("")
            unit = task.fields["unit"]
            if unit == "bytes":
                return Text(f"{task.completed / 1e6:,.0f}/{task.total / 1e6:,.0f} MB")
            return Text(f"{int(task.completed):,}/{int(task.total):,} {unit}")

    class EtaColumn(ProgressColumn):
        """``ETA m:ss`` for bars with a known total; blank for stages."""

        def render(self, task: Any) -> Text:
            if task.total is None or task.finished or not task.fields.get("unit"):
                return Text("")
            remaining = task.time_remaining  # from the recent rate
            if remaining is None and task.completed and task.elapsed:
                # too few steps for a recent rate yet: the average since the start
                remaining = task.elapsed * (task.total - task.completed) / task.completed
            if remaining is None:
                return Text("ETA -:--")
            minutes, seconds = divmod(int(remaining + 0.5), 60)
            return Text(f"ETA {minutes}:{seconds:02d}")

    return RichProgress(
        SpinnerColumn(),
        # one line per task whatever the terminal width: long labels end in an ellipsis
        TextColumn(
            "{task.description}",
            table_column=Column(no_wrap=True, overflow="ellipsis", min_width=16, max_width=56),
        ),
        BarColumn(bar_width=30),
        CountColumn(),
        TimeElapsedColumn(),
        EtaColumn(),
        console=_OUTPUT.console,
        transient=True,
        refresh_per_second=8,
    )


def _print_live(line: str) -> None:
    """One finished line above the live display."""
    from rich.text import Text

    _OUTPUT.console.print(Text(line))


class Task:
    """A bar: ``advance`` as work is done; shows count and ETA live, log lines in plain mode.

    Made by :func:`task`; not constructed directly.
    """

    def __init__(
        self,
        description: str,
        total: float | None,
        unit: str,
        logger: logging.Logger,
        plain_steps: bool,
    ) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.completed = 0.0
        self._log = logger
        self._plain_steps = plain_steps
        self._display: Any = None
        self._id: Any = None
        self._last_tenth = 0  # first line at 10%
        self._start = time.perf_counter()

    def set_total(self, total: float) -> None:
        """Set the total once it is known (a bar can start without one)."""
        self.total = total
        if self._display is not None:
            self._display.update(self._id, total=total)

    def advance(self, amount: float = 1, note: str | None = None) -> None:
        """``amount`` more done; ``note`` replaces the bar's label suffix on a terminal."""
        self.completed += amount
        if self._display is not None:
            label = f"{self.description}: {note}" if note else self.description
            self._display.update(self._id, advance=amount, description=label)
            return
        if not self._plain_steps or not self.total:
            return
        fraction = min(self.completed / self.total, 1.0)
        tenth = int(fraction * 10)
        if self.total <= 10 or tenth > self._last_tenth or fraction >= 1.0:
            if fraction >= 1.0 and self._last_tenth == 10:
                return
            self._last_tenth = 10 if fraction >= 1.0 else tenth
            self._log.info(
                "%s: %s (%d%%)%s",
                self.description,
                self._count(),
                int(100 * fraction),  # floor: 100% only when done
                f" {note}" if note else "",
            )

    def _count(self) -> str:
        if self.unit == "bytes":
            return f"{self.completed / 1e6:,.0f}/{(self.total or 0) / 1e6:,.0f} MB"
        total = f"{int(self.total):,}" if self.total is not None else "?"
        return f"{int(self.completed):,}/{total} {self.unit}".rstrip()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start


@contextmanager
def task(
    description: str,
    total: float | None = None,
    unit: str = "",
    logger: logging.Logger | None = None,
    plain_steps: bool = True,
    done_line: bool = True,
) -> Iterator[Task]:
    """A progress bar for one long step.

    Parameters
    ----------
    description : str
        What is being done (``synthetic CDM``, ``loading CSV``, ``dbt build``).
    total : float, optional
        Units of work; None until known (:meth:`Task.set_total`).
    unit : str
        ``persons``, ``nodes``, ``bytes`` (shown in MB), ...
    logger : logging.Logger, optional
        Where plain-mode lines go (default ``cohort_etl``).
    plain_steps : bool
        In plain mode, log the progress itself (each step if few, else each tenth); off
        when the caller logs its own per-step lines (dbt's per-model lines).
    done_line : bool
        Leave a ``<description>: <count> in N s`` line when finished on a terminal.
    """
    bar = Task(description, total, unit, logger or log, plain_steps)
    with _display() as display:
        if display is not None:
            bar._display = display
            bar._id = display.add_task(description, total=total, unit=unit)
        try:
            yield bar
        finally:
            if display is not None:
                display.remove_task(bar._id)
                if done_line and sys.exc_info()[0] is None:
                    _print_live(f"{description}: {bar._count()} in {bar.elapsed:.1f} s")


@dataclass
class Progress:
    """Numbered, timed stages of one command (``[2/4] dbt build``).

    Live: a spinner with the elapsed time while the stage runs, one line when it ends;
    plain: ``started`` / ``done in`` log lines. Timings are kept for the run manifest.
    """

    total: int
    quiet: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    _done: int = 0

    @property
    def interactive(self) -> bool:
        return live() and not self.quiet

    @contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        """Time one stage; on failure the stage is reported as failed and the error re-raised."""
        self._done += 1
        label = f"[{self._done}/{self.total}] {name}" + (f" ({detail})" if detail else "")
        log.debug("stage %s: start", name)
        with _display() if self.interactive else _nothing() as display:
            task_id = display.add_task(label, total=None) if display is not None else None
            if display is None and not self.quiet:
                log.info("%s: started", label)
            start = time.perf_counter()
            try:
                yield
            except BaseException:
                elapsed = time.perf_counter() - start
                self.timings[name] = round(elapsed, 3)
                if display is not None:
                    display.remove_task(task_id)
                log.error("%s: failed after %.1f s", label, elapsed)
                raise
            elapsed = time.perf_counter() - start
            self.timings[name] = round(elapsed, 3)
            log.debug("stage %s: end (%.3f s)", name, elapsed)
            if display is not None:
                display.remove_task(task_id)
                _print_live(f"{label}: done in {elapsed:.1f} s")
            elif not self.quiet:
                log.info("%s: done in %.1f s", label, elapsed)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None
