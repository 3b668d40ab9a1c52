"""Logging set-up and plain-mode progress lines (fast; the real runs are in
test_progress_runs.py)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from cohort_etl import progress
from cohort_etl.dbt_runner import DbtEvents, parse_node_event


@pytest.fixture
def output_state() -> Iterator[None]:
    """Undo :func:`progress.configure_output` after the test."""
    root = logging.getLogger()
    own = logging.getLogger("cohort_etl")
    saved = (list(root.handlers), root.level, own.level)
    yield
    if progress._OUTPUT.handler is not None:
        root.removeHandler(progress._OUTPUT.handler)
        progress._OUTPUT.handler = None
    progress._OUTPUT.live = False
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    own.setLevel(saved[2])


def test_verbose_keeps_other_libraries_at_warning(
    output_state: None, capsys: pytest.CaptureFixture[str]
) -> None:
    progress.configure_output(verbose=True, live=False)
    logging.getLogger("cohort_etl.stage").debug("own debug line")
    logging.getLogger("matplotlib.font_manager").debug("font debug line")
    # a library that sets its own logger to DEBUG is still held at WARNING
    noisy = logging.getLogger("urllib3.connectionpool")
    noisy.setLevel(logging.DEBUG)
    try:
        noisy.debug("connection debug line")
        noisy.info("connection info line")
        noisy.warning("connection warning line")
    finally:
        noisy.setLevel(logging.NOTSET)
    err = capsys.readouterr().err
    assert "own debug line" in err
    assert "font debug line" not in err
    assert "connection debug line" not in err and "connection info line" not in err
    assert "connection warning line" in err
    assert "\x1b" not in err


def test_quiet_shows_warnings_only(output_state: None, capsys: pytest.CaptureFixture[str]) -> None:
    progress.configure_output(quiet=True, live=True)  # -q wins over a terminal
    assert not progress.live()
    logging.getLogger("cohort_etl.x").info("an info line")
    logging.getLogger("cohort_etl.x").warning("a warning line")
    err = capsys.readouterr().err
    assert "an info line" not in err and "a warning line" in err


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        # many steps: a line at each tenth, 10% .. 100%
        (1000, list(range(10, 101, 10))),
        # at most ten steps: a line per step
        (3, [33, 66, 100]),
    ],
)
def test_plain_bar_lines(
    output_state: None, capsys: pytest.CaptureFixture[str], total: int, expected: list[int]
) -> None:
    progress.configure_output(live=False)
    with progress.task("counting", total=total, unit="items") as bar:
        for _ in range(total):
            bar.advance()
    lines = re.findall(rf"counting: ([0-9,]+)/{total:,} items \((\d+)%\)", capsys.readouterr().err)
    assert [int(p) for _, p in lines] == expected
    assert int(lines[-1][0].replace(",", "")) == total


def test_stage_failure_is_reported_and_reraised(
    output_state: None, capsys: pytest.CaptureFixture[str]
) -> None:
    progress.configure_output(live=False)
    stages = progress.Progress(total=2)
    with pytest.raises(ValueError), stages.stage("broken"):
        raise ValueError("boom")
    err = capsys.readouterr().err
    assert re.search(r"ERROR cohort_etl: \[1/2\] broken: failed after \d+\.\d s", err)
    assert "broken" in stages.timings


def test_dbt_event_consumer_keeps_text_and_skips(
    output_state: None, capsys: pytest.CaptureFixture[str]
) -> None:
    progress.configure_output(live=False)
    with progress.task("dbt build", unit="nodes", plain_steps=False) as bar:
        events = DbtEvents(bar)
        events("not json: a line dbt printed before its logger was up")
        events(
            '{"info": {"name": "SkippingDetails", "msg": "3 of 9 SKIP relation results.x"},'
            ' "data": {"node_info": {"node_name": "x", "resource_type": "model"},'
            ' "index": 3, "total": 9}}'
        )
    assert bar.total == 9 and bar.completed == 1
    assert events.nodes[0].status == "skipped" and events.nodes[0].name == "x"
    assert "not json" in events.text() and "SKIP relation results.x" in events.text()
    assert "model x: skipped in 0.00 s (3/9)" in capsys.readouterr().err
    node, message, _ = parse_node_event("[]")
    assert node is None and message == "[]"
