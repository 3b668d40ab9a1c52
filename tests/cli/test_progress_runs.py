"""What `cohort-etl` shows while it runs (issue 15, item 4), on real runs of the CLI.

A small synthetic CDM is generated and built twice, once in a pseudo-terminal (python's
``pty``: a live display with bars and ETA, dbt's per-model lines) and once with captured
output (plain lines, no ANSI codes). The models a run should have reported are read from
the ``run_results.json`` that dbt wrote for that same run, not from cohort-etl's output.
``-v`` on a study run (the report draws figures with matplotlib) shows the project's own
debug lines and no third-party debug line.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
from dataclasses import dataclass

import pytest

from cohort_etl.dbt_runner import dbt_project_dir

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "cohort_etl.cli"]
PROFILE = "progress-test"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: a line of the live display: label, bar, count, elapsed, ETA
BAR_COUNT = re.compile(r"([0-9,]+)/([0-9,]+) (patients|persons|nodes)")


@dataclass
class Captured:
    returncode: int
    output: str  # stdout + stderr (a terminal shows both)


def run_plain(args: list[str], env: dict[str, str]) -> Captured:
    proc = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, timeout=900, check=False
    )
    return Captured(proc.returncode, proc.stdout + proc.stderr)


def run_in_terminal(args: list[str], env: dict[str, str]) -> Captured:
    """Run the CLI with stdin, stdout and stderr on a pseudo-terminal (120 x 40)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [*CLI, *args], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None and not select.select([master], [], [], 0.5)[0]:
                    break
                continue
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        returncode = proc.wait(timeout=900)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return Captured(returncode, b"".join(chunks).decode("utf-8", "replace"))


@dataclass
class Runs:
    synth_terminal: Captured
    synth_plain: Captured
    build_plain: Captured
    models_plain: list[str]
    build_terminal: Captured
    models_terminal: list[str]
    verbose_run: Captured


def built_models() -> list[str]:
    """Models dbt says it built in the last run of this profile (its run_results.json)."""
    results = json.loads((dbt_project_dir() / "target" / PROFILE / "run_results.json").read_text())
    return sorted(
        r["unique_id"].split(".")[-1]
        for r in results["results"]
        if r["unique_id"].startswith("model.") and r["status"] == "success"
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("progress")
    profiles = root / "profiles.yml"
    profiles.write_text(
        f"default: {PROFILE}\nprofiles:\n  {PROFILE}:\n    type: duckdb\n"
        f"    path: {root / 'cdm.duckdb'}\n"
        "    cdm_schema: cdm\n    results_schema: results\n    truth_schema: synthetic_truth\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")
    }
    env.update(
        {
            "COHORT_ETL_PROFILES": str(profiles),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "TERM": "xterm-256color",
        }
    )
    synth = ["synth", "--persons", "3000", "--cart-patients", "150", "--seed", "3"]
    synth_terminal = run_in_terminal(synth, env)
    assert synth_terminal.returncode == 0, synth_terminal.output[-3000:]
    synth_plain = run_plain([*synth, "--replace"], env)
    assert synth_plain.returncode == 0, synth_plain.output[-3000:]
    build_plain = run_plain(["build"], env)
    assert build_plain.returncode == 0, build_plain.output[-3000:]
    models_plain = built_models()
    build_terminal = run_in_terminal(["build"], env)
    assert build_terminal.returncode == 0, build_terminal.output[-3000:]
    models_terminal = built_models()
    verbose_run = run_plain(
        ["-v", "run", "--skip-build", "--study", "hsct_after_cart", "--out", str(root / "out")],
        env,
    )
    assert verbose_run.returncode == 0, verbose_run.output[-3000:]
    return Runs(
        synth_terminal,
        synth_plain,
        build_plain,
        models_plain,
        build_terminal,
        models_terminal,
        verbose_run,
    )


def bar_counts(output: str, label: str) -> list[tuple[int, int, str]]:
    """(done, total, unit) of every frame of the live bar called ``label``."""
    out = []
    for frame in ANSI.sub("", output).replace("\r", "\n").split("\n"):
        if label in frame and "ETA" in frame:
            found = BAR_COUNT.search(frame)
            if found:
                out.append(
                    (int(found[1].replace(",", "")), int(found[2].replace(",", "")), found[3])
                )
    return out


def test_terminal_synth_shows_bars_with_eta(runs: Runs) -> None:
    output = runs.synth_terminal.output
    assert ANSI.search(output), "no live display on a terminal"
    subset = bar_counts(output, "ALL/CAR-T subset")
    background = bar_counts(output, "background population")
    assert subset and background, output[-2000:]
    # the bar counts up to the sizes the run reports in its final line
    final = re.search(r"synthetic CDM: ([0-9,]+) persons", ANSI.sub("", output))
    assert final is not None
    persons = int(final[1].replace(",", ""))
    assert {total for _, total, _ in background} == {3000}
    assert {total for _, total, _ in subset} == {persons - 3000}
    done = [d for d, _, _ in subset]
    assert done == sorted(done) and len(set(done)) > 1, "the subset bar never moved"
    assert re.search(r"ETA \d+:\d\d", ANSI.sub("", output)), "no ETA shown"


def test_plain_synth_prints_progress_lines_without_ansi(runs: Runs) -> None:
    output = runs.synth_plain.output
    assert "\x1b" not in output
    lines = re.findall(r"ALL/CAR-T subset: ([0-9,]+)/([0-9,]+) patients \((\d+)%\)", output)
    assert lines, output
    total = int(lines[-1][1].replace(",", ""))
    assert int(lines[-1][0].replace(",", "")) == total and lines[-1][2] == "100"
    # each tenth at most once
    assert len(lines) <= 11 and len({p for _, _, p in lines}) == len(lines)


def _model_lines(output: str) -> dict[str, tuple[str, float]]:
    text = ANSI.sub("", output)
    return {
        name: (status, float(seconds))
        for name, status, seconds in re.findall(
            r"model (\w+): (\w+) in (\d+\.\d+) s \(\d+/\d+\)", text
        )
    }


def test_plain_build_prints_one_line_per_model(runs: Runs) -> None:
    output = runs.build_plain.output
    assert "\x1b" not in output, "ANSI codes in captured output"
    lines = _model_lines(output)
    assert sorted(lines) == runs.models_plain
    assert {status for status, _ in lines.values()} == {"success"}
    per_model = re.findall(r"^\d\d:\d\d:\d\d INFO cohort_etl\.build: model \w+: ", output, re.M)
    assert len(per_model) == len(runs.models_plain), "one line per model, each a log line"
    # the data-quality findings are printed once each (not by the stage and again at the end)
    dq = [line[line.index("data quality: ") :] for line in output.splitlines()
          if "data quality: " in line]  # fmt: skip
    assert dq, output[-3000:]
    assert len(dq) == len(set(dq)), dq


def test_terminal_build_streams_models_and_a_node_bar(runs: Runs) -> None:
    output = runs.build_terminal.output
    assert sorted(_model_lines(output)) == runs.models_terminal
    frames = [
        (done, total)
        for frame in ANSI.sub("", output).replace("\r", "\n").split("\n")
        if "dbt build" in frame
        for done, total in re.findall(r"(\d+)/(\d+) nodes", frame)
    ]
    assert frames, "no dbt progress bar"
    totals = {int(total) for _, total in frames}
    assert len(totals) == 1 and totals.pop() > len(runs.models_terminal)
    assert len({done for done, _ in frames}) > 3, "the dbt bar did not advance while dbt ran"


def test_verbose_shows_own_debug_lines_only(runs: Runs) -> None:
    output = runs.verbose_run.output
    debug = re.findall(r"^\d\d:\d\d:\d\d DEBUG (\S+): ", output, re.M)
    assert debug, "no debug line with -v"
    assert all(name.startswith("cohort_etl") for name in debug), sorted(set(debug))
    # the stages a reader needs: resolved profile, SQL with timings, stage start and end
    assert any(name == "cohort_etl.config" for name in debug)
    assert re.search(r"DEBUG cohort_etl\.db: sql \d+\.\d{3} s: select ", output)
    assert re.search(r"DEBUG cohort_etl: stage study hsct_after_cart: end", output)
    assert "matplotlib" not in output
    info_or_less = re.findall(r"^\d\d:\d\d:\d\d (?:DEBUG|INFO) (\S+): ", output, re.M)
    assert all(name.startswith("cohort_etl") for name in info_or_less)
