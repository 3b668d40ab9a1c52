"""Same-machine OHDSI Circe peer for the index cohort ("first CAR-T exposure after ALL").

Issue 5 compares our index-cohort SQL with OHDSI's own cohort SQL for the same question
(Circe, through the ``ohdsi-circepy`` package, translated to DuckDB). The Circe definition
is the product's own export (``cohort_etl.circe``, as ``cohort-etl cohorts export --format
circe`` writes it), cut to the entry rules all_diagnosis + cart_after_all_diagnosis (the
path to int__cart_course): every CD19 CAR-T drug exposure (and, with ``procedure_set``, CAR-T
administration procedure), with an ALL diagnosis on or before it, the first per person;
concept sets embedded with code_items.csv rows resolved against the CDM's vocabulary
(untimed). ``source_codes`` also matches every criterion on the source column (OR-ed), as
our pipeline matches non-standard concepts on ``*_source_concept_id``. The variant with both
is the definition that returns our cohort exactly; without them it is what an ATLAS user
would write first. Circe's SQL generation and translation are circepy's
(``cohort_etl.circe.sql``).

Execution (``circe_index_cohort``): nothing is written to the CDM. Given a path, the CDM
file is ATTACHed READ_ONLY to an in-memory DuckDB; given a connection, it is used as it is.
Circe's work tables are TEMP tables, and its target cohort table is the temp table
``temp.main.circe_cohort`` (created before timing, as Circe expects its cohort table to
exist; dropped afterwards). The timed unit is every statement of the translated script
(codeset resolution, qualified/included events, cohort eras, delete+insert into the cohort
table, clean-up), best of ``repeats``.

circepy is optional (not a project dependency): ``pip install ohdsi-circepy==0.3.0`` (it
pulls ibis-framework[duckdb] and sqlglot<30.18), e.g. as the ``bench`` extra.

Run as a script (with an interpreter that has ohdsi-circepy) for a self-check against a
built CDM: each variant's best-of-``repeats`` time and its agreement with the built
results.int__cart_course::

    python -m bench.circe_peer /tmp/big/omop.duckdb [repeats]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

from cohort_etl.circe.export import resolved_items
from cohort_etl.circe.expression import Builder
from cohort_etl.circe.sql import (
    TARGET_TABLE,
    duckdb_statements,
    ohdsi_sql,
    prepare_target,
)
from cohort_etl.concept_sets.registry import load_concept_sets

ROOT = Path(__file__).resolve().parents[1]
CONCEPT_SETS_DIR = ROOT / "concept_sets"
COHORT_ID = 1
#: the entry rules of every cohort (int__cart_course's index infusion)
ENTRY_RULES = ("all_diagnosis", "cart_after_all_diagnosis")


class CirceRun(NamedTuple):
    """Result of timing Circe's cohort script."""

    best_seconds: float
    #: cohort rows (one per person under the 'First' limits)
    rows: int
    #: (subject_id, cohort_start_date), sorted
    persons_and_dates: list[tuple[int, date]]
    #: every repeat's seconds, in order
    seconds: list[float]


def index_expression(
    con: Any,
    vocabulary: str,
    *,
    procedures: bool = False,
    source_codes: bool = False,
    concept_sets_dir: Path = CONCEPT_SETS_DIR,
) -> dict:
    """The product's Circe expression of the entry rules, code items resolved in
    ``vocabulary``.concept through ``con`` (a DuckDB connection)."""
    sets = load_concept_sets(concept_sets_dir)
    items = resolved_items(
        lambda sql, params: con.execute(sql, list(params)).df(), f"{vocabulary}.concept", "?", sets
    )
    builder = Builder(items, source_codes=source_codes, procedures=procedures)
    return builder.cohort("cart_after_all_diagnosis", "index infusion", ENTRY_RULES).expression


def circe_index_cohort(
    con_or_path: Any,
    catalog: str | None = None,
    cdm_schema: str = "cdm",
    vocabulary_schema: str | None = None,
    *,
    procedure_set: str | None = None,
    source_codes: bool = False,
    concept_sets_dir: Path = CONCEPT_SETS_DIR,
    repeats: int = 3,
) -> CirceRun:
    """Time Circe's index-cohort script (all its statements), best of ``repeats``.

    ``con_or_path``: a DuckDB connection that sees the CDM (read-only is fine: Circe writes
    only temp tables), or the path of a CDM DuckDB file (ATTACHed READ_ONLY as ``catalog``,
    default its file stem, to an in-memory database). ``cdm_schema`` / ``vocabulary_schema``
    (default the cdm schema) are schema names inside ``catalog`` (default, for a connection,
    its current database). Concept sets are read from ``concept_sets_dir``; the optional
    ``procedure_set`` (``cart_administration``, the product's CAR-T procedure set) and
    ``source_codes`` widen the definition (module docstring).
    """
    import duckdb

    if procedure_set not in (None, "cart_administration"):
        raise ValueError(f"procedure_set must be cart_administration, got {procedure_set!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if isinstance(con_or_path, (str, Path)):
        path = Path(con_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"CDM DuckDB file not found: {path}")
        catalog = catalog or path.stem
        con = duckdb.connect(":memory:")
        con.execute(f"attach '{path}' as \"{catalog}\" (read_only)")
        own_connection = True
    else:
        con = con_or_path
        own_connection = False
        catalog = catalog or con.execute("select current_database()").fetchall()[0][0]
    try:
        for schema, role in ((cdm_schema, "cdm"), (vocabulary_schema or cdm_schema, "vocabulary")):
            for table in (
                ("drug_exposure", "condition_occurrence", "observation_period")
                if role == "cdm"
                else ("concept", "concept_ancestor", "concept_relationship")
            ):
                found = con.execute(
                    "select count(*) from duckdb_tables() where database_name = ? and "
                    "schema_name = ? and table_name = ? union all "
                    "select count(*) from duckdb_views() where database_name = ? and "
                    "schema_name = ? and view_name = ?",
                    [catalog, schema, table] * 2,
                ).fetchall()
                if not any(n for (n,) in found):
                    raise ValueError(f"{role} table {catalog}.{schema}.{table} not found")

        vocabulary = f'"{catalog}".{vocabulary_schema or cdm_schema}'
        expression = index_expression(
            con,
            vocabulary,
            procedures=procedure_set is not None,
            source_codes=source_codes,
            concept_sets_dir=concept_sets_dir,
        )
        statements = duckdb_statements(
            ohdsi_sql(
                expression,
                cdm_schema=f'"{catalog}".{cdm_schema}',
                vocabulary_schema=vocabulary,
                cohort_id=COHORT_ID,
            )
        )
        prepare_target(con)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            for statement in statements:
                con.execute(statement)
            seconds.append(time.perf_counter() - start)
        cohort = con.execute(
            f"select subject_id, cohort_start_date from temp.main.{TARGET_TABLE} "
            f"where cohort_definition_id = {COHORT_ID} order by 1, 2"
        ).fetchall()
        con.execute(f"drop table temp.main.{TARGET_TABLE}")
    finally:
        if own_connection:
            con.close()
    return CirceRun(min(seconds), len(cohort), [(int(p), d) for p, d in cohort], seconds)


def agreement(
    ours: Sequence[tuple[int, date]], theirs: Sequence[tuple[int, date]]
) -> dict[str, int]:
    """Person-level agreement of two (person_id, index_date) lists, one row per person:
    same date, different date, and persons in only one of them."""
    a, b = dict(ours), dict(theirs)
    if len(a) != len(ours) or len(b) != len(theirs):
        raise ValueError("agreement() expects one (person_id, date) row per person")
    both = a.keys() & b.keys()
    same = sum(1 for p in both if a[p] == b[p])
    return {
        "same_date": same,
        "different_date": len(both) - same,
        "only_first": len(a.keys() - b.keys()),
        "only_second": len(b.keys() - a.keys()),
    }


def _self_check(path: Path, repeats: int) -> int:
    """Run every variant against a built CDM and compare with results.int__cart_course."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        built = [
            (int(p), d)
            for p, d in con.execute(
                "select person_id, cart_date from results.int__cart_course order by 1"
            ).fetchall()
        ]
    finally:
        con.close()
    print(f"int__cart_course: {len(built)} persons")
    variants: list[dict[str, Any]] = [
        {},
        {"procedure_set": "cart_administration"},
        {"procedure_set": "cart_administration", "source_codes": True},
    ]
    for kwargs in variants:
        run = circe_index_cohort(path, repeats=repeats, **kwargs)
        if run.rows != len({p for p, _ in run.persons_and_dates}):
            print("FAIL: Circe cohort has more than one row per person")
            return 1
        spread = max(run.seconds) - run.best_seconds
        print(
            f"{kwargs or 'drug only, standard codes'}: best {run.best_seconds:.3f} s "
            f"(spread {spread:.3f} s over {repeats}), {run.rows} rows; "
            f"vs int__cart_course (Circe first): {agreement(run.persons_and_dates, built)}"
        )
    return 0


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if not arguments:
        print("usage: python -m bench.circe_peer CDM.duckdb [repeats]", file=sys.stderr)
        sys.exit(2)
    sys.exit(_self_check(Path(arguments[0]), int(arguments[1]) if len(arguments) > 1 else 3))
