"""Small hand-written OMOP CDMs for dbt tests.

:class:`CdmBuilder` collects rows per CDM table (only the columns a test cares about;
required columns get defaults), and :meth:`CdmBuilder.write` creates every CDM table with
the project's DDL and the synthetic vocabulary slice, then inserts the rows.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import pyarrow as pa

from cohort_etl.cdm.ddl import GENERATED_TABLES, columns, create_table_sql
from cohort_etl.db import Database, DuckDBDatabase
from cohort_etl.synthetic import vocabulary as v

_ARROW = {
    "integer": pa.int64(),
    "float": pa.float64(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
}
_EHR = 32817


def _arrow_type(datatype: str) -> pa.DataType:
    return _ARROW.get(datatype, pa.string())


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


class CdmBuilder:
    """Accumulates CDM rows; ids are assigned in insertion order."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._next_id = 1

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def person(
        self,
        person_id: int,
        year_of_birth: int = 1990,
        gender: int = v.FEMALE,
        start: str = "2015-01-01",
        end: str = "2024-12-31",
        race: int = v.WHITE,
        ethnicity: int = v.NOT_HISPANIC,
    ) -> CdmBuilder:
        self.rows["person"].append(
            {
                "person_id": person_id,
                "gender_concept_id": gender,
                "year_of_birth": year_of_birth,
                "month_of_birth": 6,
                "race_concept_id": race,
                "ethnicity_concept_id": ethnicity,
            }
        )
        self.rows["observation_period"].append(
            {
                "observation_period_id": person_id,
                "person_id": person_id,
                "observation_period_start_date": d(start),
                "observation_period_end_date": d(end),
                "period_type_concept_id": _EHR,
            }
        )
        return self

    def condition(self, person_id: int, date: str, concept: int, source: int = 0) -> CdmBuilder:
        self.rows["condition_occurrence"].append(
            {
                "condition_occurrence_id": self._id(),
                "person_id": person_id,
                "condition_concept_id": concept,
                "condition_source_concept_id": source,
                "condition_start_date": d(date),
                "condition_type_concept_id": _EHR,
            }
        )
        return self

    def drug(
        self, person_id: int, start: str, concept: int, days: int = 1, source: int = 0
    ) -> CdmBuilder:
        begin = d(start)
        self.rows["drug_exposure"].append(
            {
                "drug_exposure_id": self._id(),
                "person_id": person_id,
                "drug_concept_id": concept,
                "drug_source_concept_id": source,
                "drug_exposure_start_date": begin,
                "drug_exposure_end_date": begin + dt.timedelta(days=days - 1),
                "drug_type_concept_id": _EHR,
            }
        )
        return self

    def procedure(self, person_id: int, date: str, concept: int, source: int = 0) -> CdmBuilder:
        self.rows["procedure_occurrence"].append(
            {
                "procedure_occurrence_id": self._id(),
                "person_id": person_id,
                "procedure_concept_id": concept,
                "procedure_source_concept_id": source,
                "procedure_date": d(date),
                "procedure_type_concept_id": _EHR,
            }
        )
        return self

    def measurement(
        self,
        person_id: int,
        date: str,
        concept: int,
        value_concept: int | None = None,
        value: float | None = None,
    ) -> CdmBuilder:
        self.rows["measurement"].append(
            {
                "measurement_id": self._id(),
                "person_id": person_id,
                "measurement_concept_id": concept,
                "measurement_date": d(date),
                "measurement_type_concept_id": _EHR,
                "value_as_concept_id": value_concept,
                "value_as_number": value,
            }
        )
        return self

    def death(self, person_id: int, date: str) -> CdmBuilder:
        self.rows["death"].append({"person_id": person_id, "death_date": d(date)})
        return self

    def write(
        self,
        db: Database,
        schema: str = "cdm",
        skip_tables: tuple[str, ...] = (),
        vocabulary: bool = True,
    ) -> None:
        """Create the CDM schema, every table (minus ``skip_tables``), vocabulary and rows."""
        db.create_schema(schema, replace=True)
        prefix = db.schema_ref(schema)
        vocab = v.vocabulary_tables() if vocabulary else {}
        for table in GENERATED_TABLES:
            if table in skip_tables:
                continue
            db.execute(create_table_sql(table, prefix, db.dialect))
            if table in vocab:
                _insert(db, prefix, schema, table, vocab[table])
            rows = self.rows.get(table)
            if rows:
                fields = columns(table)
                names = [f.name for f in fields if any(f.name in row for row in rows)]
                types = {f.name: _arrow_type(f.datatype) for f in fields}
                data = pa.table(
                    {n: pa.array([row.get(n) for row in rows], types[n]) for n in names}
                )
                _insert(db, prefix, schema, table, data)


def _insert(db: Database, prefix: str, schema: str, table: str, data: pa.Table) -> None:
    """Append rows; on DuckDB through the catalog-qualified name (a file named like the
    schema makes the short name ambiguous)."""
    if isinstance(db, DuckDBDatabase):
        cols = ", ".join(data.column_names)
        db.con.register("__cdm_fixture_rows", data)
        try:
            db.con.execute(
                f"insert into {prefix}.{table} ({cols}) select {cols} from __cdm_fixture_rows"
            )
        finally:
            db.con.unregister("__cdm_fixture_rows")
    else:
        db.insert_arrow(schema, table, data)
