"""Dialect-neutral table fingerprints for comparing CDMs across DuckDB and PostgreSQL."""

from __future__ import annotations

from cohort_etl.cdm.ddl import physical_type
from cohort_etl.cdm.spec import TABLES
from cohort_etl.db import Database


def fingerprint(db: Database, schema: str, table: str) -> tuple[object, ...]:
    """Row count plus per-column sums (numbers, dates as day numbers, string lengths
    and a position-weighted character sum), identical on DuckDB and PostgreSQL for the
    same rows in any order."""
    parts = ["count(*)"]
    for fld in TABLES[table]:
        col = f'"{fld.name}"'
        typ = physical_type(fld, "duckdb")
        if typ in ("BIGINT", "INTEGER"):
            parts.append(f"sum({col})")
        elif typ == "DOUBLE":
            parts.append(
                f"round(sum({col})::numeric, 3)"
                if db.dialect == "postgres"
                else f"round(sum({col}), 3)"
            )
        elif typ == "DATE":
            parts.append(f"sum({col} - date '1970-01-01')")
        elif typ == "TIMESTAMP":
            parts.append(f"count({col})")
        else:
            parts.append(f"sum(length({col}))")
            parts.append(f"sum(ascii({col}))")
    sql = f"select {', '.join(parts)} from {db.table_ref(schema, table)}"
    frame = db.query_df(sql)
    return tuple(None if _isnull(x) else round(float(x), 3) for x in frame.iloc[0].tolist())


def _isnull(x: object) -> bool:
    try:
        return x is None or x != x  # NaN
    except Exception:  # pragma: no cover
        return False


def checksum(db: Database, schema: str, table: str) -> tuple[int, str]:
    """(row count, order-independent hash of whole rows); DuckDB only."""
    frame = db.query_df(
        f"select count(*), cast(coalesce(sum(hash(t)), 0) as varchar) from {db.table_ref(schema, table)} t"
    )
    return int(frame.iat[0, 0]), str(frame.iat[0, 1])
