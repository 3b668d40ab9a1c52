"""Run the dbt project for a cohort-etl profile.

A :class:`~cohort_etl.config.NamedProfile` is mapped to the environment variables that
``dbt_project/profiles.yml`` and the ``cdm`` source read (``COHORT_ETL_DBT_*``); dbt runs as
a subprocess of the virtualenv's ``dbt`` with ``--profiles-dir dbt_project`` and anonymous
usage statistics off. Before dbt starts, the CDM is checked (required tables and columns,
a non-empty vocabulary) and the concept set JSON is compiled into the generated seed.
dbt writes its log as JSON events (``--log-format json``), read line by line as it runs:
each finished node advances a :func:`cohort_etl.progress.task` bar and each model or seed
gets a log line (``model stg_person: success in 0.28 s (12/206)``), so a terminal shows
the build as it goes and a captured run gets one plain line per model.
``run_results.json`` is parsed into a :class:`BuildResult`; any failing model or test is a
:class:`~cohort_etl.errors.BuildError` naming it.

Examples
--------
>>> from cohort_etl.config import get_profile
>>> from cohort_etl.dbt_runner import DbtBuild
>>> result = DbtBuild(get_profile("duckdb")).run()  # doctest: +SKIP
>>> result.model_execution_seconds  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cohort_etl.concept_sets.compile import compile_seed
from cohort_etl.concept_sets.registry import load_concept_sets
from cohort_etl.config import (
    DuckDBProfile,
    NamedProfile,
    PostgresProfile,
    SparkProfile,
    project_root,
)
from cohort_etl.db import connected
from cohort_etl.errors import BuildError, ConfigError
from cohort_etl.progress import Task, task
from cohort_etl.quality.findings import QualityReport

log = logging.getLogger("cohort_etl.build")


def dbt_project_dir() -> Path:
    """``dbt_project/`` at the project root."""
    return project_root() / "dbt_project"


def dbt_executable() -> str:
    """The ``dbt`` next to the running interpreter (the project's virtualenv), else PATH."""
    beside = Path(sys.executable).parent / "dbt"
    if beside.exists():
        return str(beside)
    found = shutil.which("dbt")
    if not found:
        raise BuildError("dbt is not installed in this environment (pip install -e .)")
    return found


def default_threads(profile: NamedProfile) -> int:
    """dbt threads when none are asked for.

    DuckDB: 1. Each DuckDB statement already runs on every core, and dbt's own per-model
    work holds the GIL, so a second dbt thread only makes two models share the cores: on
    the 1M-person CDM (2 cores) the build's wall time was the same with 1 or 2 threads
    (11.3 vs 11.4 s) while the models' summed execution time went 3.5 -> 5.9 s.
    PostgreSQL: 2 (one backend per model, each mostly on one core). Spark: 2 (a model's
    stages leave cores idle while it plans and commits; a second model fills them).
    """
    return 1 if isinstance(profile.settings, DuckDBProfile) else 2


def dbt_env(profile: NamedProfile, threads: int | None = None) -> dict[str, str]:
    """The ``COHORT_ETL_DBT_*`` variables ``dbt_project/profiles.yml`` reads for ``profile``."""
    settings = profile.settings
    env = {
        "COHORT_ETL_DBT_TYPE": settings.type,
        "COHORT_ETL_DBT_CDM_SCHEMA": settings.cdm_schema,
        "COHORT_ETL_DBT_RESULTS_SCHEMA": settings.results_schema,
        "COHORT_ETL_DBT_THREADS": str(threads or default_threads(profile)),
        "COHORT_ETL_DBT_COHORT_TABLE": settings.cohort_table,
        "COHORT_ETL_DBT_COHORT_DEFINITION_TABLE": settings.cohort_definition_table,
        "COHORT_ETL_DBT_COHORT_ID_OFFSET": str(settings.cohort_id_offset),
        "COHORT_ETL_DBT_EPISODE_ID_OFFSET": str(settings.episode_id_offset),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }
    if isinstance(settings, DuckDBProfile):
        env["COHORT_ETL_DBT_DUCKDB_PATH"] = str(settings.resolved_path())
    elif isinstance(settings, PostgresProfile):
        import sqlalchemy as sa

        url = sa.engine.make_url(settings.url)
        env.update(
            {
                "COHORT_ETL_DBT_PG_HOST": url.host or "127.0.0.1",
                "COHORT_ETL_DBT_PG_PORT": str(url.port or 5432),
                "COHORT_ETL_DBT_PG_USER": url.username or "postgres",
                "COHORT_ETL_DBT_PG_PASSWORD": url.password or "",
                "COHORT_ETL_DBT_PG_DBNAME": url.database or "postgres",
            }
        )
    elif isinstance(settings, SparkProfile):
        from cohort_etl.spark.session import spark_conf

        # dbt-spark's session method starts its own Spark with these settings
        env["COHORT_ETL_DBT_SPARK_CONF"] = json.dumps(spark_conf(settings))
    else:  # pragma: no cover - the profile union has three members
        raise ConfigError(f"profile {profile.name!r}: unsupported type {settings.type!r}")
    return env


@dataclass(frozen=True)
class NodeResult:
    """One dbt node (model, seed, data or unit test) from ``run_results.json``."""

    unique_id: str
    resource_type: str
    name: str
    status: str
    execution_time: float
    message: str | None
    failures: int | None


@dataclass
class BuildResult:
    """What a dbt build did: per-node results, wall time, warnings."""

    success: bool
    wall_seconds: float
    nodes: list[NodeResult]
    warnings: list[str] = field(default_factory=list)
    run_results_path: Path | None = None
    #: the data-quality stage's report (findings and cleaning counts) of this build
    quality: QualityReport | None = None

    @property
    def model_execution_seconds(self) -> float:
        """Sum of the models' execution times (dbt's run results)."""
        return sum(n.execution_time for n in self.nodes if n.resource_type == "model")

    def count(self, resource_type: str, status: str | None = None) -> int:
        """How many nodes of ``resource_type`` (model, seed, test, unit_test) [with status]."""
        return sum(
            1
            for n in self.nodes
            if n.resource_type == resource_type and (status is None or n.status == status)
        )


def _node_name(resource_type: str, parts: list[str]) -> str:
    """Readable node name: tests' ids end in a hash, unit tests are named per model."""
    if resource_type == "test" and len(parts) >= 4:
        return parts[2]
    if resource_type == "unit_test":
        return ".".join(parts[2:])
    return parts[-1]


def parse_run_results(path: Path) -> list[NodeResult]:
    """Parse dbt's ``run_results.json``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BuildError(f"{path}: cannot read dbt run results: {exc}") from None
    nodes = []
    for row in data.get("results", []):
        unique_id = str(row["unique_id"])
        parts = unique_id.split(".")
        resource_type = parts[0]
        nodes.append(
            NodeResult(
                unique_id=unique_id,
                resource_type=resource_type,
                name=_node_name(resource_type, parts),
                status=str(row.get("status")),
                execution_time=float(row.get("execution_time") or 0.0),
                message=row.get("message"),
                failures=row.get("failures"),
            )
        )
    return nodes


def check_cdm(profile: NamedProfile, accept_incomplete_vocabulary: bool = False) -> QualityReport:
    """The data-quality stage: stop, naming table, column and example ids, on any error
    (missing table or column, wrong type, duplicate key, NULL required field, empty
    vocabulary table, CAR-T after death); return the report (its warnings) otherwise."""
    from cohort_etl.quality import run_checks

    report = run_checks(profile, accept_incomplete_vocabulary=accept_incomplete_vocabulary)
    report.raise_for_errors()
    for finding in report.warnings:
        log.warning("data quality: %s", finding.describe())
    return report


class DbtBuild:
    """Build the cohorts and marts for one profile.

    Parameters
    ----------
    profile : NamedProfile
        Where the CDM is and where results go.
    select : str, optional
        A dbt selection (``--select``); default everything.
    threads : int, optional
        dbt threads (default: :func:`default_threads`).
    target_dir : Path, optional
        dbt target path (default ``dbt_project/target/<profile name>``).
    concept_sets_dir : Path, optional
        Folder with the concept set JSON and registry (default ``concept_sets/``).
    command : str
        ``build`` (seeds, models, data and unit tests), ``run`` (seeds and models only) or
        ``test`` (tests only, on an existing build).
    accept_incomplete_vocabulary : bool
        Let the data-quality stage pass an empty concept_ancestor / concept_relationship
        (a warning in its report instead of an error).
    """

    def __init__(
        self,
        profile: NamedProfile,
        select: str | None = None,
        threads: int | None = None,
        target_dir: Path | None = None,
        concept_sets_dir: Path | None = None,
        command: str = "build",
        accept_incomplete_vocabulary: bool = False,
        source_tests: bool = False,
    ) -> None:
        self.profile = profile
        self.source_tests = source_tests
        self.select = select
        self.threads = threads
        self.target_dir = target_dir
        self.concept_sets_dir = concept_sets_dir
        self.command = command
        self.accept_incomplete_vocabulary = accept_incomplete_vocabulary
        self.quality: QualityReport | None = None

    def _target(self) -> Path:
        return self.target_dir or dbt_project_dir() / "target" / self.profile.name

    def compile_concept_sets(self) -> Path:
        """Write the generated seed from the concept set JSON."""
        sets = load_concept_sets(self.concept_sets_dir)
        return compile_seed(sets, dbt_project_dir() / "seeds")

    def run(self) -> BuildResult:
        """Check the CDM, compile concept sets, run dbt; raise BuildError on any failure.

        Builds from one checkout are serialised by a lock file: they share the generated
        seed (dbt_project/seeds/generated/), so two concurrent builds could otherwise read
        each other's concept sets.
        """
        if self.command not in ("build", "run", "test"):
            raise ConfigError(f"unknown dbt command {self.command!r}")
        self.quality = check_cdm(self.profile, self.accept_incomplete_vocabulary)
        with _build_lock():
            result = self._run_locked()
        result.quality = self.quality
        result.warnings = [
            f"data quality: {f.describe()}" for f in self.quality.warnings
        ] + result.warnings
        return result

    def _run_locked(self) -> BuildResult:
        self.compile_concept_sets()
        target = self._target()
        run_results = target / "run_results.json"
        if run_results.exists():
            run_results.unlink()
        args = [
            dbt_executable(),
            "--no-use-colors",
            # one JSON event a line on stdout: streamed into per-node progress; the log
            # file keeps dbt's readable debug format
            "--log-format",
            "json",
            "--log-format-file",
            "debug",
            "test" if self.command == "test" else "build",
            "--project-dir",
            str(dbt_project_dir()),
            "--profiles-dir",
            str(dbt_project_dir()),
            "--target-path",
            str(target),
            "--log-path",
            str(target / "logs"),
        ]
        if self.command == "run":
            args += ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
        elif self.command == "build" and not self.source_tests:
            # The data tests declared on the CDM sources (unique / not_null keys, person
            # relationships) repeat checks the data-quality stage has just passed
            # (check_cdm in run()); at 10M persons they took 1,137 of the build's 1,201 s
            # of node time. `cohort-etl build --source-tests` runs them too.
            args += ["--exclude", "source:*"]
        if self.select:
            args += ["--select", self.select]
        env = {**os.environ, **dbt_env(self.profile, self.threads)}
        if isinstance(self.profile.settings, SparkProfile):
            from cohort_etl.spark.session import release_session

            release_session()  # the Spark metastore admits one process: dbt's
        log.info("dbt %s for profile %s", self.command, self.profile.name)
        log.debug("dbt command line: %s", " ".join(args[1:]))
        log.debug(
            "dbt environment: %s",
            ", ".join(
                f"{k}={v}"
                for k, v in sorted(dbt_env(self.profile, self.threads).items())
                if "PASSWORD" not in k
            ),
        )
        start = time.perf_counter()
        with task(f"dbt {self.command}", unit="nodes", logger=log, plain_steps=False) as bar:
            events = DbtEvents(bar)
            proc = run_child(args, env, on_line=events)
        wall = time.perf_counter() - start
        log.debug("dbt exited with %s after %.1f s", proc.returncode, wall)
        output = events.text()
        if not run_results.exists():
            raise BuildError(f"dbt {self.command} did not run: {_last_error_line(output)}")
        nodes = parse_run_results(run_results)
        failed = [n for n in nodes if n.status in ("error", "fail", "runtime error")]
        warnings = [
            f"{n.resource_type} {n.name}: {n.message or 'warning'}"
            for n in nodes
            if n.status == "warn"
        ]
        for warning in warnings:
            log.warning("%s", warning)
        if failed or proc.returncode != 0:
            if not failed:
                raise BuildError(f"dbt {self.command} failed: {_last_error_line(output)}")
            first = failed[0]
            lines = [line.strip() for line in (first.message or "").splitlines() if line.strip()]
            # dbt's first line repeats the node ("Runtime Error in model X (path)"); the
            # database's own message follows it.
            detail = (
                lines[1]
                if len(lines) > 1 and lines[0].startswith("Runtime Error")
                else (lines[0] if lines else "")
            )
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise BuildError(
                f"dbt {first.resource_type} {first.name} failed"
                f"{': ' + detail if detail else ''}{more}"
            )
        result = BuildResult(
            success=True,
            wall_seconds=wall,
            nodes=nodes,
            warnings=warnings,
            run_results_path=run_results,
        )
        result.warnings = [
            w for w in result.warnings if "concept_set_absent_items" not in w
        ] + self._post_build_warnings()
        return result

    def _post_build_warnings(self) -> list[str]:
        """Warnings the build is still meaningful with: concept set items naming a concept
        the vocabulary lacks (one line per concept set, with a count), and cohorts with
        zero persons, named with the rule that emptied them (``EMPTY COHORT: ...``)."""
        if self.command == "test":
            return []
        schema = self.profile.settings.results_schema
        out: list[str] = []
        with connected(self.profile) as db:
            tables = db.tables(schema)
            if "concept_set_absent_items" in tables:
                absent = db.query_df(
                    "select concept_set_name, concept_id, vocabulary_id, concept_code "
                    f"from {db.table_ref(schema, 'concept_set_absent_items')} "
                    "order by concept_set_name, concept_id, vocabulary_id, concept_code"
                )
                out += absent_concept_warnings(absent)
            if "cohort_attrition" in tables:
                attrition = db.query_df(
                    "select cohort_definition_name, rule_number, rule_name, persons_remaining "
                    f"from {db.table_ref(schema, 'cohort_attrition')} "
                    "order by cohort_definition_name, rule_number"
                )
                out += empty_cohort_warnings(attrition)
        for message in out:
            log.warning("%s", message)
        return out


def absent_concept_warnings(absent: pd.DataFrame) -> list[str]:
    """One line per concept set: how many of its items the vocabulary lacks, and which."""
    out = []
    for name, rows in absent.groupby("concept_set_name", sort=True):
        what = [
            f"code {record['vocabulary_id']} {record['concept_code']}"
            if pd.isna(record["concept_id"])
            else str(int(record["concept_id"]))
            for record in rows.to_dict(orient="records")
        ]
        shown = ", ".join(what[:5]) + (f" and {len(what) - 5} more" if len(what) > 5 else "")
        out.append(f"concept set {name}: {len(what)} item(s) absent from the vocabulary ({shown})")
    return out


def empty_cohort_warnings(attrition: pd.DataFrame) -> list[str]:
    """``EMPTY COHORT: <name> has 0 persons after rule <rule>`` for each empty cohort."""
    out = []
    for name, steps in attrition.groupby("cohort_definition_name", sort=True):
        steps = steps.sort_values("rule_number")
        if steps.empty or int(steps["persons_remaining"].iloc[-1]) > 0:
            continue
        first_empty = steps[steps["persons_remaining"].astype(int) == 0].iloc[0]
        out.append(
            f"EMPTY COHORT: {name} has 0 persons after rule {int(first_empty['rule_number'])} "
            f"({first_empty['rule_name']})"
        )
    return out


#: dbt events that report one finished node (model, seed, snapshot, data or unit test)
_RESULT_EVENTS = frozenset(
    {
        "LogModelResult",
        "LogSeedResult",
        "LogSnapshotResult",
        "LogTestResult",
        "LogNodeResult",
        "LogNodeNoOpResult",
        "LogFunctionResult",
    }
)
_SKIP_EVENTS = frozenset({"SkippingDetails", "LogSkipBecauseError"})
#: node types that get a line each (tests only when they do not pass, or with -v)
_LINE_TYPES = frozenset({"model", "seed", "snapshot", "function"})


@dataclass(frozen=True)
class NodeEvent:
    """One finished node, from dbt's structured log."""

    resource_type: str
    name: str
    status: str
    seconds: float
    index: int | None
    total: int | None

    def line(self) -> str:
        """``model stg_person: success in 0.28 s (12/206)``"""
        where = f" ({self.index}/{self.total})" if self.index and self.total else ""
        return f"{self.resource_type} {self.name}: {self.status} in {self.seconds:.2f} s{where}"


def parse_node_event(line: str) -> tuple[NodeEvent | None, str | None, dict[str, Any]]:
    """(finished node or None, the event's human message, the event's data) of one line of
    dbt's ``--log-format json`` output; a line that is not JSON is its own message."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None, line, {}
    if not isinstance(event, dict):
        return None, line, {}
    info = event.get("info") or {}
    data = event.get("data") or {}
    name = str(info.get("name", ""))
    message = info.get("msg")
    node = data.get("node_info") or {}
    if name not in _RESULT_EVENTS and name not in _SKIP_EVENTS:
        return None, message, data
    resource_type = str(node.get("resource_type") or data.get("resource_type") or "node")
    node_name = str(node.get("node_name") or data.get("node_name") or data.get("name") or "?")
    if name in _SKIP_EVENTS:
        status = "skipped"
    else:
        # node_status is "success" / "error" / "pass" / ...; unit tests carry it as "None"
        given = [str(v).lower() for v in (node.get("node_status"), data.get("status")) if v]
        status = next((v for v in given if v != "none"), "done")
    total = data.get("total") or data.get("num_models")
    index = data.get("index")
    return (
        NodeEvent(
            resource_type=resource_type,
            name=node_name,
            status=status,
            seconds=float(data.get("execution_time") or 0.0),
            index=int(index) if index else None,
            total=int(total) if total else None,
        ),
        message,
        data,
    )


class DbtEvents:
    """Consumer of dbt's JSON log lines: advances the bar per finished node and logs one
    line per model / seed (tests: only when they do not pass; every test with ``-v``);
    keeps dbt's human messages for error reports."""

    def __init__(self, bar: Task) -> None:
        self.bar = bar
        self.messages: list[str] = []
        self.nodes: list[NodeEvent] = []

    def __call__(self, line: str) -> None:
        if not line.strip():
            return
        node, message, data = parse_node_event(line)
        if message:
            self.messages.append(str(message))
        total = data.get("total")
        if self.bar.total is None and isinstance(total, int) and total > 0:
            self.bar.set_total(total)
        if node is None:
            description = data.get("description")
            if description and "node_info" in data:  # LogStartLine: a node started
                self.bar.advance(0, note=str((data["node_info"] or {}).get("node_name", "")))
            return
        self.nodes.append(node)
        if node.resource_type in _LINE_TYPES or node.status not in ("pass", "success"):
            log.info("%s", node.line())
        else:
            log.debug("%s", node.line())
        self.bar.advance(1, note=node.name)

    def text(self) -> str:
        """dbt's messages, one a line (what its plain console output would have shown)."""
        return "\n".join(self.messages)


@contextmanager
def _build_lock() -> Iterator[None]:
    """An exclusive lock on dbt_project/target/.build.lock for the duration of a build."""
    path = dbt_project_dir() / "target" / ".build.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: have the kernel SIGKILL this child when its parent dies, however it dies
    (a SIGKILL of cohort-etl cannot be caught, so nothing else could stop the child)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def run_child(
    args: list[str], env: dict[str, str], on_line: Callable[[str], None] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a child (dbt) that never outlives cohort-etl.

    The child dies with its parent (PR_SET_PDEATHSIG on Linux), so a SIGKILL of
    cohort-etl does not leave dbt running and holding the DuckDB file's lock; on SIGTERM,
    SIGINT or any exception here the child is killed and reaped before the error goes on.
    The child stays in cohort-etl's process group, so killing the group stops both.
    With ``on_line``, each stdout line is handed to it as it comes (stderr is collected
    by a thread, so neither pipe can fill up and stall the child).
    """
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    proc = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        preexec_fn=preexec,  # noqa: PLW1509 - only a prctl call, no locks taken
    )
    previous = _forward_sigterm()
    try:
        if on_line is None:
            stdout, stderr = proc.communicate()
        else:
            assert proc.stdout is not None and proc.stderr is not None
            err_lines: list[str] = []
            drain = threading.Thread(
                target=lambda: err_lines.extend(proc.stderr),  # type: ignore[arg-type]
                daemon=True,
            )
            drain.start()
            out_lines = []
            for line in proc.stdout:
                out_lines.append(line)
                on_line(line.rstrip("\n"))
            proc.wait()
            drain.join()
            stdout, stderr = "".join(out_lines), "".join(err_lines)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        _restore_sigterm(previous)
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


class Terminated(KeyboardInterrupt):
    """SIGTERM received while a child runs (raised to unwind and kill the child)."""


def _forward_sigterm() -> Any:
    """While a child runs, SIGTERM raises :class:`Terminated` in the main thread."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: object) -> None:
        raise Terminated(f"signal {signum}")

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _last_error_line(stdout: str) -> str:
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1]


def build(profile: NamedProfile, **kwargs: Any) -> BuildResult:
    """Shortcut: ``DbtBuild(profile, **kwargs).run()``."""
    return DbtBuild(profile, **kwargs).run()
