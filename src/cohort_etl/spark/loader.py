"""Register a folder of OMOP CDM tables as the Spark database of a profile's ``cdm_schema``.

Accepted, one per table, named like the table in either case:

* Parquet: ``person.parquet`` or a folder ``person/`` of Parquet files (as Spark, DuckDB
  or pandas write them). Registered in place as external tables: nothing is copied, and
  dropping the schema never touches the files.
* CSV (``person.csv``, ``.csv.gz``, comma or tab): checked value by value exactly as
  ``cohort-etl load`` checks them for DuckDB (an error names file, column and line), then
  converted once to Parquet under the profile's warehouse folder and registered from there.

Before anything is registered, every table's columns are checked against the CDM v5.4 spec
(a required column missing, or stored with a type of another kind, is an error naming the
file and column). Unknown files are skipped with a warning.

:func:`duckdb_cdm_to_parquet` writes a DuckDB CDM out as such a folder (tests, benchmarks).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cohort_etl.cdm.ddl import GENERATED_TABLES, arrow_type
from cohort_etl.cdm.spec import TABLES
from cohort_etl.config import NamedProfile, SparkProfile
from cohort_etl.db import quote_ident
from cohort_etl.errors import ConfigError, InputDataError, TargetNotEmpty
from cohort_etl.loader import REQUIRED_TABLES, _read, plan_folder

log = logging.getLogger(__name__)

_PARQUET = re.compile(r"\.parquet$", re.IGNORECASE)
_CSV = re.compile(r"\.(csv|tsv|txt)(\.gz)?$", re.IGNORECASE)


@dataclass
class RegisterResult:
    """What was registered: table -> the Parquet file or folder Spark reads."""

    schema: str
    locations: dict[str, Path] = field(default_factory=dict)
    skipped: list[Path] = field(default_factory=list)


def _kind(dtype: pa.DataType) -> str:
    if pa.types.is_integer(dtype):
        return "integer"
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "number"
    if pa.types.is_date(dtype):
        return "date"
    if pa.types.is_timestamp(dtype):
        return "datetime"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "text"
    return str(dtype)


#: a CDM column of this kind may be stored as any of these kinds
_COMPATIBLE = {
    "integer": {"integer"},
    "number": {"number", "integer"},
    "date": {"date", "datetime"},
    "datetime": {"datetime", "date"},
    "text": {"text"},
}


def _parquet_files(folder: Path) -> tuple[dict[str, Path], list[Path]]:
    found: dict[str, Path] = {}
    skipped: list[Path] = []
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            if not any(path.glob("*.parquet")):
                continue
            table = path.name.lower()
        elif _PARQUET.search(path.name):
            table = _PARQUET.sub("", path.name).lower()
        else:
            continue
        if table not in TABLES:
            skipped.append(path)
            continue
        if table in found:
            raise InputDataError(
                f"{folder}: two sources for table {table}: {found[table].name} and {path.name}"
            )
        found[table] = path
    return found, skipped


def check_parquet_table(table: str, path: Path) -> None:
    """Required columns present and every spec column stored with a compatible type."""
    try:
        schema = pq.read_schema(path) if path.is_file() else pq.ParquetDataset(path).schema
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputDataError(f"{path}: not readable as Parquet: {exc}") from None
    stored = {name.lower(): schema.field(name).type for name in schema.names}
    for fld in TABLES[table]:
        if fld.name not in stored:
            if fld.required:
                raise InputDataError(f"{path.name}: required column {fld.name} is missing")
            continue
        want, have = _kind(arrow_type(fld)), _kind(stored[fld.name])
        if have not in _COMPATIBLE[want]:
            raise InputDataError(
                f"{path.name}: column {fld.name} is stored as {stored[fld.name]} (expected {want})"
            )


def _csv_to_parquet(folder: Path, target: Path) -> tuple[dict[str, Path], list[Path]]:
    """Validate the CSV files of ``folder`` (the DuckDB loader's checks) and write each as
    ``target/<table>.parquet``."""
    plans, skipped = plan_folder(folder, GENERATED_TABLES)
    target.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for plan in plans:
        dest = target / f"{plan.table}.parquet"
        schema = pa.schema(
            [
                pa.field(f.name, arrow_type(f))
                for f in TABLES[plan.table]
                if f.name in plan.mapping.values()
            ]
        )
        with pq.ParquetWriter(dest, schema) as writer:
            for data in _read(plan):
                writer.write_table(data.select(schema.names).cast(schema))
        out[plan.table] = dest
    return out, skipped


def register_cdm_folder(
    folder: Path, profile: NamedProfile, *, replace: bool = False
) -> RegisterResult:
    """Register ``folder``'s CDM tables (Parquet, else CSV) as ``profile``'s CDM schema."""
    settings = profile.settings
    if not isinstance(settings, SparkProfile):
        raise ConfigError(f"profile {profile.name!r} is not a spark profile")
    if not folder.is_dir():
        raise InputDataError(f"{folder}: not a folder")
    schema = settings.cdm_schema
    files, skipped = _parquet_files(folder)
    has_csv = any(_CSV.search(p.name) for p in folder.iterdir() if p.is_file())
    if not files and has_csv:
        files, skipped = _csv_to_parquet(
            folder, settings.resolved_warehouse() / "cdm_parquet" / schema
        )
    for table in REQUIRED_TABLES:
        if table not in files:
            raise InputDataError(
                f"{folder}: required table {table} is missing "
                f"(expected {table}.parquet, a {table}/ folder of Parquet files or {table}.csv)"
            )
    for table, path in files.items():
        check_parquet_table(table, path)
    for path in skipped:
        log.warning("skipping %s: not an OMOP CDM v5.4 table", path.name)

    from cohort_etl.spark.database import SparkDatabase

    db = SparkDatabase(profile)
    db.create_schema(schema, replace=replace)
    result = RegisterResult(schema, skipped=skipped)
    for table, path in sorted(files.items()):
        db.spark.catalog.createTable(
            f"{schema}.{table}", path=str(path.resolve()), source="parquet"
        )
        result.locations[table] = path
        log.info("registered %s.%s -> %s", schema, table, path)
    return result


def duckdb_cdm_to_parquet(duckdb_path: Path, schema: str, folder: Path) -> dict[str, int]:
    """Write every table of ``schema`` in a DuckDB file as ``folder/<table>/data.parquet``
    (a folder per table, as Spark writes tables); returns the rows per table. Refuses a
    folder that already holds Parquet files."""
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.glob("**/*.parquet")):
        raise TargetNotEmpty(f"{folder} already holds Parquet files")
    rows: dict[str, int] = {}
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        catalog = con.execute("select current_database()").fetchall()[0][0]
        tables = [
            str(t)
            for (t,) in con.execute(
                "select table_name from information_schema.tables "
                "where table_catalog = ? and table_schema = ? order by table_name",
                [catalog, schema],
            ).fetchall()
        ]
        if not tables:
            raise InputDataError(f"{duckdb_path}: schema {schema!r} holds no tables")
        for table in tables:
            relation = con.table(".".join(quote_ident(n) for n in (catalog, schema, table)))
            (folder / table).mkdir()
            relation.write_parquet(str(folder / table / "data.parquet"))
            rows[table] = int(relation.count("*").fetchall()[0][0])
    return rows
