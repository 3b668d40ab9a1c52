"""The :class:`~cohort_etl.db.Database` interface on Spark SQL.

Identifiers are quoted with backticks (Spark reads a double-quoted name as a string), values
are bound as Spark's positional ``?`` parameters, results come from Spark as Arrow. Frames
are made from that Arrow by DuckDB's own conversion, so a mart read on Spark gives the same
pandas dtypes as on DuckDB (nullable integers, datetime64 dates), and so the same results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from cohort_etl.config import NamedProfile, SparkProfile
from cohort_etl.db import Database, quote_ident
from cohort_etl.spark.session import get_session


def quote_spark(name: str) -> str:
    """``name`` as one Spark SQL identifier (backticks; an embedded backtick doubled),
    after :func:`~cohort_etl.db.quote_ident`'s checks that it is one."""
    quote_ident(name)
    return "`" + name.replace("`", "``") + "`"


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """pandas frame of an Arrow table, converted exactly as DuckDB converts its results."""
    import duckdb

    with duckdb.connect() as con:
        return con.from_arrow(table).df()


class SparkDatabase(Database):
    """The process's Spark session (see :mod:`cohort_etl.spark.session`); closing a
    SparkDatabase keeps the session for the next one (a JVM start costs seconds)."""

    dialect = "spark"
    param = "?"

    def __init__(self, profile: NamedProfile) -> None:
        super().__init__(profile)
        settings = profile.settings
        assert isinstance(settings, SparkProfile)
        self.spark = get_session(settings)

    def _sql(self, sql: str, params: Sequence[Any] | None) -> Any:
        return self.spark.sql(sql, args=list(params)) if params else self.spark.sql(sql)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._sql(sql, params)

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        return self._sql(sql, params).toArrow()

    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        return arrow_to_frame(self.query_arrow(sql, params))

    def insert_arrow(self, schema: str, table: str, data: pa.Table) -> None:
        target = f"{schema}.{table}"
        order = [f.name for f in self.spark.table(self.table_ref(schema, table)).schema.fields]
        frame = self.spark.createDataFrame(data)
        frame.select(*[c for c in order if c in data.column_names]).write.insertInto(target)

    def close(self) -> None:
        """Nothing: the session stays for the process (released before dbt runs)."""

    def quote(self, name: str) -> str:
        return quote_spark(name)

    def schema_exists(self, schema: str) -> bool:
        return bool(self.spark.catalog.databaseExists(schema))

    def tables(self, schema: str) -> list[str]:
        if not self.schema_exists(schema):
            return []
        listed = self.spark.catalog.listTables(dbName=schema)
        return sorted(t.name for t in listed if not t.isTemporary)

    def columns(self, schema: str, table: str) -> dict[str, str]:
        # the metastore's record only: no file listing or Parquet footer read
        listed = self.spark.catalog.listColumns(self.table_ref(schema, table))
        return {c.name: c.dataType for c in listed}
