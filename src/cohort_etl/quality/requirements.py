"""What the cohorts need of a CDM: the tables and columns the dbt sources read, their
types, keys and the columns that must not be NULL. Types, keys and required flags come
from the CDM v5.4 field specification (:mod:`cohort_etl.cdm.spec`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from cohort_etl.cdm.spec import TABLES, Field

#: CDM tables and the columns the dbt sources read. A missing one stops the build.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "person": (
        "person_id",
        "gender_concept_id",
        "year_of_birth",
        "month_of_birth",
        "race_concept_id",
        "ethnicity_concept_id",
    ),
    "observation_period": (
        "observation_period_id",
        "person_id",
        "observation_period_start_date",
        "observation_period_end_date",
    ),
    "death": ("person_id", "death_date"),
    "condition_occurrence": (
        "condition_occurrence_id",
        "person_id",
        "condition_concept_id",
        "condition_source_concept_id",
        "condition_start_date",
        "condition_end_date",
        "condition_type_concept_id",
    ),
    "drug_exposure": (
        "drug_exposure_id",
        "person_id",
        "drug_concept_id",
        "drug_source_concept_id",
        "drug_exposure_start_date",
        "drug_exposure_end_date",
        "drug_type_concept_id",
    ),
    "procedure_occurrence": (
        "procedure_occurrence_id",
        "person_id",
        "procedure_concept_id",
        "procedure_source_concept_id",
        "procedure_date",
        "procedure_end_date",
        "procedure_type_concept_id",
    ),
    "measurement": (
        "measurement_id",
        "person_id",
        "measurement_concept_id",
        "measurement_source_concept_id",
        "measurement_date",
        "measurement_type_concept_id",
        "value_as_number",
        "value_as_concept_id",
    ),
    "observation": (
        "observation_id",
        "person_id",
        "observation_concept_id",
        "observation_source_concept_id",
        "observation_date",
        "observation_type_concept_id",
        "value_as_number",
        "value_as_concept_id",
    ),
    "concept": (
        "concept_id",
        "concept_name",
        "domain_id",
        "vocabulary_id",
        "concept_class_id",
        "standard_concept",
        "concept_code",
        "invalid_reason",
    ),
    "concept_ancestor": (
        "ancestor_concept_id",
        "descendant_concept_id",
        "min_levels_of_separation",
        "max_levels_of_separation",
    ),
    "concept_relationship": ("concept_id_1", "concept_id_2", "relationship_id", "invalid_reason"),
}


@dataclass(frozen=True)
class EventTable:
    """A clinical event table as the staging cleaning rules read it."""

    table: str
    id_column: str
    concept_column: str
    source_column: str
    start_column: str
    end_column: str | None
    type_column: str
    extra_columns: tuple[str, ...] = ()


#: The event tables of macros/clean_events.sql, with the same columns.
EVENT_TABLES: tuple[EventTable, ...] = (
    EventTable(
        "condition_occurrence",
        "condition_occurrence_id",
        "condition_concept_id",
        "condition_source_concept_id",
        "condition_start_date",
        "condition_end_date",
        "condition_type_concept_id",
    ),
    EventTable(
        "drug_exposure",
        "drug_exposure_id",
        "drug_concept_id",
        "drug_source_concept_id",
        "drug_exposure_start_date",
        "drug_exposure_end_date",
        "drug_type_concept_id",
    ),
    EventTable(
        "procedure_occurrence",
        "procedure_occurrence_id",
        "procedure_concept_id",
        "procedure_source_concept_id",
        "procedure_date",
        "procedure_end_date",
        "procedure_type_concept_id",
    ),
    EventTable(
        "measurement",
        "measurement_id",
        "measurement_concept_id",
        "measurement_source_concept_id",
        "measurement_date",
        None,
        "measurement_type_concept_id",
        ("value_as_number", "value_as_concept_id"),
    ),
    EventTable(
        "observation",
        "observation_id",
        "observation_concept_id",
        "observation_source_concept_id",
        "observation_date",
        None,
        "observation_type_concept_id",
        ("value_as_number", "value_as_concept_id"),
    ),
)

#: Domain of the concepts each event table holds (OMOP domain_id).
TABLE_DOMAIN: dict[str, str] = {
    "condition_occurrence": "Condition",
    "drug_exposure": "Drug",
    "procedure_occurrence": "Procedure",
    "measurement": "Measurement",
    "observation": "Observation",
}

#: End dates the staging replaces by the start date when missing: NULL is allowed there.
NULLABLE_READ_COLUMNS = frozenset(
    {"drug_exposure_end_date", "condition_end_date", "procedure_end_date"}
)


def spec_field(table: str, column: str) -> Field | None:
    return next((f for f in TABLES.get(table, ()) if f.name == column), None)


def type_family(datatype: str) -> str:
    """``integer``, ``number``, ``date`` or ``text`` for a spec or database type name."""
    t = datatype.lower()
    if t.startswith(("date", "timestamp", "datetime")):
        return "date"
    if t in {"integer", "bigint", "smallint", "int", "int2", "int4", "int8", "hugeint", "tinyint"}:
        return "integer"
    if t.startswith(("ubigint", "uinteger", "usmallint", "utinyint", "uhugeint")):
        return "integer"
    if t.startswith(("float", "double", "real", "numeric", "decimal")):
        return "number"
    return "text"


def accepts(expected: str, actual: str) -> bool:
    """Can a column of database type ``actual`` serve as spec type ``expected``?"""
    want, got = type_family(expected), type_family(actual)
    if want == "text":
        return True
    if want == "number":
        return got in ("number", "integer")
    if want == "integer":
        # NUMERIC(p, 0) is how some ETLs store ids; accepted, values are whole numbers
        return got == "integer" or actual.lower().startswith(("numeric", "decimal"))
    return got == want


def dbt_var(name: str, project_dir: Path) -> object:
    """A var from ``dbt_project.yml`` (the cleaning rules' parameters live there)."""
    data = yaml.safe_load((project_dir / "dbt_project.yml").read_text())
    return (data.get("vars") or {})[name]
