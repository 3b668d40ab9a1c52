"""DDL for OMOP CDM v5.4 tables on each supported dialect.

The logical types of the field-level spec are mapped to physical types here, once.
Integer columns named ``*_id`` become BIGINT (64-bit ids); other integers stay INTEGER.
"""

from __future__ import annotations

import re

import pyarrow as pa

from cohort_etl.cdm.spec import TABLES, Field

#: Tables the synthetic generator writes and the loader accepts (clinical + vocabulary).
CLINICAL_TABLES: tuple[str, ...] = (
    "person",
    "observation_period",
    "visit_occurrence",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "death",
    "cdm_source",
)
VOCABULARY_TABLES: tuple[str, ...] = (
    "concept",
    "concept_ancestor",
    "concept_relationship",
    "vocabulary",
    "domain",
    "concept_class",
    "relationship",
)
GENERATED_TABLES: tuple[str, ...] = CLINICAL_TABLES + VOCABULARY_TABLES

_VARCHAR = re.compile(r"varchar\((\d+|max)\)")

DIALECTS = ("duckdb", "postgres")


def physical_type(field: Field, dialect: str) -> str:
    """Physical SQL type of one CDM field on ``dialect`` ('duckdb' or 'postgres')."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; expected one of {DIALECTS}")
    logical = field.datatype.lower()
    if logical == "integer":
        return "BIGINT" if field.name.endswith("_id") else "INTEGER"
    if logical == "float":
        return "DOUBLE" if dialect == "duckdb" else "DOUBLE PRECISION"
    if logical == "date":
        return "DATE"
    if logical == "datetime":
        return "TIMESTAMP"
    match = _VARCHAR.fullmatch(logical)
    if match:
        size = match.group(1)
        return "TEXT" if size == "max" else f"VARCHAR({size})"
    raise ValueError(f"spec type {field.datatype!r} of {field.name} is not mapped")


_ARROW = {
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
}


def arrow_type(field: Field) -> pa.DataType:
    """Arrow type of one CDM field (from its DuckDB physical type; text otherwise)."""
    return _ARROW.get(physical_type(field, "duckdb"), pa.string())


def columns(table: str) -> tuple[Field, ...]:
    """Fields of ``table`` in spec order; KeyError naming the table if unknown."""
    try:
        return TABLES[table]
    except KeyError:
        raise KeyError(f"{table!r} is not an OMOP CDM v5.4 table") from None


def create_table_sql(table: str, schema: str, dialect: str, primary_keys: bool = False) -> str:
    """``CREATE TABLE`` statement for ``schema.table`` with NOT NULL on required fields.

    Primary keys are off by default: on DuckDB an index over 100M event rows costs more
    memory than the load itself, so uniqueness is checked by tests and dbt data tests.
    """
    fields = columns(table)
    lines = []
    for field in fields:
        null = " NOT NULL" if field.required else ""
        lines.append(f"    {field.name} {physical_type(field, dialect)}{null}")
    pks = [f.name for f in fields if f.primary_key]
    if pks and primary_keys:
        lines.append(f"    PRIMARY KEY ({', '.join(pks)})")
    body = ",\n".join(lines)
    return f"CREATE TABLE {schema}.{table} (\n{body}\n)"
