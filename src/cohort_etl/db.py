"""One small interface over the two embedded/served databases.

DuckDB is used through its own Python API (fast Arrow in/out); PostgreSQL through a
psycopg 3 connection in autocommit mode (explicit ``begin`` / ``commit`` where a step must
be atomic), with COPY for bulk loads. Everything above this module speaks SQL strings,
Arrow tables and pandas frames, never a driver.

Values reach SQL only as bound parameters (write the placeholder as :attr:`Database.param`);
identifiers (schemas, tables, columns) only through :func:`quote_ident`, which validates
and quotes them. No other function builds SQL from text a user can supply.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from cohort_etl.config import DuckDBProfile, NamedProfile, PostgresProfile, SparkProfile
from cohort_etl.errors import ConfigError, ConnectionFailed, TargetNotEmpty

log = logging.getLogger(__name__)

#: Longest identifier accepted (PostgreSQL truncates at 63 bytes; DuckDB catalog names are
#: file names, so a little more room).
MAX_IDENT_LENGTH = 255


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier, after checking it is one.

    The one function that puts an identifier into SQL text. Refuses (ConfigError) anything
    that is not a non-empty string of printable characters of reasonable length; embedded
    double quotes are doubled, so the result is always exactly one identifier.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"SQL identifier must be a non-empty string, got {name!r}")
    if len(name) > MAX_IDENT_LENGTH or not name.isprintable():
        raise ConfigError(f"not a usable SQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def _timed(sql: str) -> Iterator[None]:
    """``-v``: one debug line per statement, its first words and its time."""
    if not log.isEnabledFor(logging.DEBUG):
        yield
        return
    start = time.perf_counter()
    yield
    name = " ".join(sql.split())
    log.debug("sql %.3f s: %s", time.perf_counter() - start, name[:120])


class Database:
    """A connection to the CDM database of a profile."""

    dialect: str
    #: placeholder of one bound parameter in this driver's SQL (``?`` or ``%s``)
    param: str

    def __init__(self, profile: NamedProfile) -> None:
        self.profile = profile

    # --- to be provided per dialect -------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        raise NotImplementedError

    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        raise NotImplementedError

    def query_arrow(self, sql: str) -> pa.Table:
        raise NotImplementedError

    def insert_arrow(self, schema: str, table: str, data: pa.Table) -> None:
        """Append ``data`` to an existing table, matching columns by name."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------
    def quote(self, name: str) -> str:
        """``name`` as one identifier in this dialect (Spark overrides: backticks)."""
        return quote_ident(name)

    def schema_ref(self, schema: str) -> str:
        """Quoted reference to ``schema`` for DML/DDL on its tables.

        On DuckDB it is catalog-qualified: a database file named like one of its schemas
        (data/cdm.duckdb holds schema cdm) makes ``cdm.person`` ambiguous there.
        """
        return self.quote(schema)

    def table_ref(self, schema: str, table: str) -> str:
        """Quoted, unambiguous ``schema.table`` reference (see :meth:`schema_ref`)."""
        return f"{self.schema_ref(schema)}.{self.quote(table)}"

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        frame = self.query_df(sql, params)
        return None if frame.empty else frame.iat[0, 0]

    def schema_exists(self, schema: str) -> bool:
        n = self.scalar(
            f"select count(*) from information_schema.schemata where schema_name = {self.param}",
            [schema],
        )
        return bool(n)

    def tables(self, schema: str) -> list[str]:
        frame = self.query_df(
            "select table_name from information_schema.tables "
            f"where table_schema = {self.param} order by table_name",
            [schema],
        )
        return [str(t) for t in frame["table_name"]]

    def columns(self, schema: str, table: str) -> dict[str, str]:
        """Column name -> data type (as information_schema reports it), in order."""
        ph = self.param
        frame = self.query_df(
            "select column_name, data_type from information_schema.columns "
            f"where table_schema = {ph} and table_name = {ph} order by ordinal_position",
            [schema, table],
        )
        return dict(
            zip(frame["column_name"].astype(str), frame["data_type"].astype(str), strict=True)
        )

    def create_schema(self, schema: str, replace: bool = False) -> None:
        """Create ``schema``; refuse if it already holds tables unless ``replace``."""
        existing = self.tables(schema) if self.schema_exists(schema) else []
        if existing and not replace:
            raise TargetNotEmpty(
                f"schema {schema!r} already holds {len(existing)} tables "
                f"({', '.join(existing[:4])}{', ...' if len(existing) > 4 else ''}); "
                "pass --replace to overwrite it"
            )
        if existing:
            self.drop_schema(schema)
        self.execute(f"create schema if not exists {self.quote(schema)}")

    def drop_schema(self, schema: str) -> None:
        self.execute(f"drop schema if exists {self.quote(schema)} cascade")

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DuckDBDatabase(Database):
    dialect = "duckdb"
    param = "?"

    def __init__(self, profile: NamedProfile, read_only: bool = False) -> None:
        super().__init__(profile)
        import duckdb

        settings = profile.settings
        assert isinstance(settings, DuckDBProfile)
        path = settings.resolved_path()
        if read_only and not path.exists():
            raise ConnectionFailed(f"DuckDB file {path} does not exist (profile {profile.name!r})")
        path.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {}
        if settings.threads:
            config["threads"] = settings.threads
        if settings.memory_limit:
            config["memory_limit"] = settings.memory_limit
        try:
            self.con = duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.Error as exc:
            raise ConnectionFailed(f"cannot open DuckDB file {path}: {exc}") from None
        self.path = path
        self.catalog = str(self.con.execute("select current_database()").fetchone()[0])  # type: ignore[index]

    def schema_ref(self, schema: str) -> str:
        return f"{quote_ident(self.catalog)}.{quote_ident(schema)}"

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with _timed(sql):
            self.con.execute(sql, params or [])

    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        with _timed(sql):
            return self.con.execute(sql, params or []).df()

    def query_arrow(self, sql: str) -> pa.Table:
        return self.con.execute(sql).to_arrow_table()

    def insert_arrow(self, schema: str, table: str, data: pa.Table) -> None:
        cols = ", ".join(quote_ident(c) for c in data.column_names)
        self.con.register("__cohort_etl_insert", data)
        try:
            self.con.execute(
                f"insert into {self.table_ref(schema, table)} ({cols}) "
                f"select {cols} from __cohort_etl_insert"
            )
        finally:
            self.con.unregister("__cohort_etl_insert")

    def close(self) -> None:
        self.con.close()


class PostgresDatabase(Database):
    """PostgreSQL through one psycopg 3 connection opened in autocommit mode: every
    statement commits on its own unless the caller opened a transaction with ``begin``
    (the loader and the generator do, and end it with ``commit`` or ``rollback``)."""

    dialect = "postgres"
    param = "%s"

    def __init__(self, profile: NamedProfile, create_database: bool = True) -> None:
        super().__init__(profile)
        import psycopg
        import sqlalchemy as sa

        settings = profile.settings
        assert isinstance(settings, PostgresProfile)
        url = sa.engine.make_url(settings.url).set(drivername="postgresql+psycopg")
        self.url = url
        if create_database:
            _ensure_pg_database(url)
        try:
            self.raw = psycopg.connect(
                url.set(drivername="postgresql").render_as_string(hide_password=False),
                autocommit=True,
            )
        except psycopg.OperationalError as exc:
            first = (str(exc).strip().splitlines() or ["connection failed"])[0]
            raise ConnectionFailed(
                f"cannot connect to PostgreSQL {url.render_as_string(hide_password=True)} "
                f"(profile {profile.name!r}): {first}"
            ) from None

    def _cursor(self) -> Any:
        return self.raw.cursor()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with _timed(sql), self._cursor() as cur:
            cur.execute(sql, params or None)

    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        with _timed(sql), self._cursor() as cur:
            cur.execute(sql, params or None)
            names = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchall() if cur.description else []
        return pd.DataFrame.from_records(rows, columns=names)

    def query_arrow(self, sql: str) -> pa.Table:
        return pa.Table.from_pandas(self.query_df(sql), preserve_index=False)

    def insert_arrow(self, schema: str, table: str, data: pa.Table) -> None:
        cols = ", ".join(quote_ident(c) for c in data.column_names)
        target = f"{quote_ident(schema)}.{quote_ident(table)}"
        with self._cursor() as cur:
            for batch in data.to_batches(max_chunksize=500_000):
                buffer = io.BytesIO()
                pacsv.write_csv(
                    pa.Table.from_batches([batch]),
                    buffer,
                    write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"),
                )
                with cur.copy(f"copy {target} ({cols}) from stdin (format csv)") as copy:
                    copy.write(buffer.getvalue())

    def close(self) -> None:
        self.raw.close()


def _ensure_pg_database(url: Any) -> None:
    """Create the profile's database if the server is up and it does not exist yet."""
    import psycopg

    target = url.database
    if not target:
        return
    admin = url.set(drivername="postgresql", database="postgres")
    try:
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as con:
            exists = con.execute(
                "select 1 from pg_database where datname = %s", [target]
            ).fetchone()
            if not exists:
                con.execute(f"create database {quote_ident(target)}")
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConnectionFailed(
            f"cannot connect to PostgreSQL at {url.host}:{url.port or 5432}: {first}"
        ) from None


def connect(profile: NamedProfile, read_only: bool = False) -> Database:
    """Open the profile's database."""
    if isinstance(profile.settings, DuckDBProfile):
        return DuckDBDatabase(profile, read_only=read_only)
    if isinstance(profile.settings, SparkProfile):
        from cohort_etl.spark.database import SparkDatabase

        return SparkDatabase(profile)
    return PostgresDatabase(profile)


@contextmanager
def connected(profile: NamedProfile, read_only: bool = False) -> Iterator[Database]:
    db = connect(profile, read_only=read_only)
    try:
        yield db
    finally:
        db.close()
