"""One Spark session per process, configured from a :class:`~cohort_etl.config.SparkProfile`.

The same settings reach dbt: :func:`spark_conf` is what the Python side gives
``SparkSession.builder`` and what ``dbt_project/profiles.yml`` passes on as dbt-spark's
``server_side_parameters`` (COHORT_ETL_DBT_SPARK_CONF), so both see one warehouse folder and
one Hive metastore. That metastore is an embedded Derby database, which admits one process
at a time: :func:`release_session` stops this process's Spark (and its JVM, which holds the
Derby lock) before dbt starts its own.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

from cohort_etl.config import SparkProfile
from cohort_etl.errors import ConfigError, ConnectionFailed

log = logging.getLogger(__name__)
logging.getLogger("py4j").setLevel(logging.WARNING)  # one INFO line per closed socket

_LOG4J = Path(__file__).with_name("log4j2.properties")

#: the running session and the settings it was started with
_current: tuple[tuple[tuple[str, str], ...], Any] | None = None


def spark_conf(settings: SparkProfile) -> dict[str, str]:
    """Spark settings of a profile (the profile's ``conf`` entries override these)."""
    home = settings.resolved_warehouse()
    conf = {
        "spark.master": settings.master,
        "spark.app.name": "cohort-etl",
        "spark.driver.memory": settings.driver_memory,
        "spark.sql.warehouse.dir": str(home / "warehouse"),
        # the Hive metastore: an embedded Derby database beside the warehouse (not ./metastore_db)
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true"
        ),
        # derby.log beside it; Spark's own log at ERROR (a quiet terminal)
        "spark.driver.extraJavaOptions": (
            f"-Dderby.system.home={home} -Dlog4j2.configurationFile=file:{_LOG4J}"
        ),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.sources.default": "parquet",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    conf.update(settings.conf)
    return conf


def _require_runtime() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ConfigError(
            "a spark profile needs pyspark and dbt-spark: pip install -e '.[spark]'"
        ) from None
    if not shutil.which("java"):
        import os

        java_home = os.environ.get("JAVA_HOME")
        if not (java_home and (Path(java_home) / "bin" / "java").exists()):
            raise ConnectionFailed(
                "a spark profile needs Java 17 (java not on PATH, JAVA_HOME not set); "
                "Debian: apt-get install openjdk-17-jre-headless"
            )


def get_session(settings: SparkProfile) -> Any:
    """The process's Spark session for ``settings`` (started, or restarted, on demand)."""
    global _current
    conf = spark_conf(settings)
    key = tuple(sorted(conf.items()))
    if _current is not None:
        if _current[0] == key:
            return _current[1]
        release_session()
    _require_runtime()
    import warnings

    # pyspark warns about pandas 3 at import; cohort-etl moves data through Arrow only
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    from pyspark.sql import SparkSession

    home = settings.resolved_warehouse()
    home.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for name, value in conf.items():
        builder = builder.config(name, value)
    try:
        spark = builder.enableHiveSupport().getOrCreate()
        spark.catalog.databaseExists("default")  # opens the metastore now, not mid-query
    except Exception as exc:  # noqa: BLE001 - py4j / Spark errors have no common base
        release_session()
        text = str(exc)
        if "Derby" in text or "metastore" in text.lower():
            raise ConnectionFailed(
                f"cannot open the Spark metastore {home / 'metastore_db'}: another process "
                "(a dbt build, another cohort-etl) may hold it; Derby admits one at a time"
            ) from None
        first = (text.strip().splitlines() or ["unknown error"])[0]
        raise ConnectionFailed(f"cannot start Spark ({settings.master}): {first}") from None
    # cohort-etl's own SQL quotes identifiers the standard way ("person_id"); in this
    # session only (not dbt's), Spark reads them so, not as string literals
    spark.conf.set("spark.sql.ansi.enabled", "true")
    spark.conf.set("spark.sql.ansi.doubleQuotedIdentifiers", "true")
    _current = (key, spark)
    return spark


def release_session() -> None:
    """Stop this process's Spark and its JVM (releasing the metastore), if running."""
    global _current
    _current = None
    try:
        from pyspark import SparkContext
        from pyspark.sql import SparkSession
    except ImportError:
        return
    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
    elif SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)
    with contextlib.suppress(Exception):  # already gone
        gateway.shutdown()
    if proc is not None:
        # the JVM exits when its stdin closes; wait so that its Derby lock is gone
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except Exception:  # noqa: BLE001 - a hung JVM: kill it
            proc.kill()
            proc.wait()
    SparkContext._gateway = None
    SparkContext._jvm = None


atexit.register(release_session)
