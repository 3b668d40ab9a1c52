"""Same-machine OHDSI Circe peer for the index cohort ("first CAR-T exposure after ALL").

Issue 5 compares our index-cohort SQL with OHDSI's own cohort SQL for the same question
(Circe, through the ``ohdsi-circepy`` package, translated to DuckDB). This module builds
that Circe cohort definition, has circepy generate its SQL, translates it to DuckDB with
circepy's own SqlRender port (``circe.sqlrender``: ``translate(sql, "duckdb")`` and
``split_sql``), and times the whole generated script on the same CDM and machine as
bench/bench_dbt.py's ``index_cohort_sql``.

The cohort definition (Circe JSON, as ATLAS exports it; ``cohort_expression``):

* concept sets, read from concept_sets/<name>.json with their items' ``isExcluded`` /
  ``includeDescendants`` / ``includeMapped`` flags as they are, plus the set's rows of
  concept_sets/code_items.csv (codes without a public concept id: their concept id looked up
  once, untimed, by vocabulary_id + concept_code in the CDM's concept table, as an ATLAS user
  picks them), so Circe resolves descendants and mappings itself against the CDM vocabulary
  (concept, concept_ancestor, concept_relationship 'Maps to'):
  0 = "CD19 CAR-T products" (cart_cd19_products), 1 = "ALL" (all_leukemia),
  and with ``procedure_set`` 2 = its set (e.g. cart_administration);
* primary criterion: every DrugExposure in codeset 0 (``First`` not set, since "first
  exposure" is decided after the ALL criterion, not before), observation window 0/0 days
  (the exposure lies in an observation period), primary limit ``All``;
  with ``procedure_set``, also every ProcedureOccurrence in codeset 2 (CAR-T infusion =
  drug OR procedure record, as our int__cart_infusions);
* additional criterion: at least 1 ConditionOccurrence in codeset 1 starting between all
  days before and 0 days after the event start (UseEventEnd false, RestrictVisit false,
  IgnoreObservationPeriod false: Circe then also requires the diagnosis inside the
  exposure's observation period);
* qualified limit ``First`` and expression limit ``First``: one row per person, the first
  exposure that has an ALL diagnosis on or before it (the same rule as our "first infusion
  on or after the first ALL diagnosis", since "any ALL on or before" = "first ALL on or
  before");
* no inclusion rules, no censoring; end strategy the default (end of the observation
  period); collapse ERA with pad 0.
* ``source_codes=True`` (off by default, as ATLAS users mostly leave it): each criterion is
  also matched on the source concept (DrugSourceConcept / ConditionSourceConcept /
  ProcedureSourceConcept on the same codeset) as extra OR-ed criteria, as our pipeline
  matches *_source_concept_id; Circe's includeMapped alone matches the mapped non-standard
  ids on *_concept_id only.

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

import json
import re
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

from cohort_etl.concept_sets.models import dump_expression
from cohort_etl.concept_sets.registry import ConceptSet, load_concept_sets

ROOT = Path(__file__).resolve().parents[1]
CONCEPT_SETS_DIR = ROOT / "concept_sets"
#: the temp table Circe's script writes its cohort rows into
TARGET_TABLE = "circe_cohort"
COHORT_ID = 1


class CirceRun(NamedTuple):
    """Result of timing Circe's cohort script."""

    best_seconds: float
    #: cohort rows (one per person under the 'First' limits)
    rows: int
    #: (subject_id, cohort_start_date), sorted
    persons_and_dates: list[tuple[int, date]]
    #: every repeat's seconds, in order
    seconds: list[float]


def _circe() -> Any:
    try:
        import circe.api
        import circe.sqlrender
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "bench/circe_peer.py needs ohdsi-circepy (not a project dependency): "
            "pip install 'ohdsi-circepy==0.3.0'"
        ) from exc
    return circe


def _concept_set(name: str, directory: Path) -> ConceptSet:
    """The registered concept set ``name`` (parsed and validated by the project's loader)."""
    return load_concept_sets(directory, names=[name])[0]


def concept_set_items(name: str, directory: Path = CONCEPT_SETS_DIR) -> list[dict]:
    """The ``items`` of concept set ``name`` as its JSON file holds them (ATLAS shape)."""
    return dump_expression(_concept_set(name, directory).expression)["items"]


def code_items(
    con: Any, name: str, vocabulary: str, directory: Path = CONCEPT_SETS_DIR
) -> list[dict]:
    """Items of concept set ``name`` listed by code in ``code_items.csv`` (codes without a
    public concept id), as ATLAS items: each code looked up by (vocabulary_id, concept_code)
    in ``vocabulary``.concept, as an ATLAS user would pick it from the site's vocabulary.
    Codes the vocabulary lacks are left out, as our resolver leaves them out."""
    items = []
    for item in _concept_set(name, directory).code_items:
        found = con.execute(
            f"select concept_id, concept_name, standard_concept, domain_id, vocabulary_id, "
            f"concept_class_id, concept_code from {vocabulary}.concept "
            f"where vocabulary_id = ? and concept_code = ?",
            [item.vocabulary_id, item.concept_code],
        ).fetchall()
        for concept_id, concept_name, standard, domain, vocab, concept_class, code in found:
            items.append(
                {
                    "concept": {
                        "CONCEPT_ID": int(concept_id),
                        "CONCEPT_NAME": concept_name,
                        "STANDARD_CONCEPT": standard,
                        "CONCEPT_CODE": code,
                        "DOMAIN_ID": domain,
                        "VOCABULARY_ID": vocab,
                        "CONCEPT_CLASS_ID": concept_class,
                    },
                    "isExcluded": item.is_excluded,
                    "includeDescendants": item.include_descendants,
                    "includeMapped": item.include_mapped,
                }
            )
    return items


def _window_before_or_on() -> dict:
    """Start window "all days before .. 0 days after" the index event's start."""
    return {
        "Start": {"Coeff": -1},
        "End": {"Days": 0, "Coeff": 1},
        "UseIndexEnd": False,
        "UseEventEnd": False,
    }


def cohort_expression(
    cart_items: list[dict],
    all_items: list[dict],
    procedure_items: list[dict] | None = None,
    *,
    source_codes: bool = False,
) -> dict:
    """Circe cohort JSON (ATLAS export shape) for "first CAR-T exposure after an ALL
    diagnosis"; the module docstring lists every choice."""
    concept_sets = [
        {"id": 0, "name": "CD19 CAR-T products", "expression": {"items": cart_items}},
        {"id": 1, "name": "ALL", "expression": {"items": all_items}},
    ]
    primary: list[dict] = [{"DrugExposure": {"CodesetId": 0}}]
    if source_codes:
        primary.append({"DrugExposure": {"DrugSourceConcept": 0}})
    if procedure_items is not None:
        concept_sets.append(
            {"id": 2, "name": "CAR-T administration", "expression": {"items": procedure_items}}
        )
        primary.append({"ProcedureOccurrence": {"CodesetId": 2}})
        if source_codes:
            primary.append({"ProcedureOccurrence": {"ProcedureSourceConcept": 2}})
    diagnosis_criteria = [{"ConditionOccurrence": {"CodesetId": 1}}]
    if source_codes:
        diagnosis_criteria.append({"ConditionOccurrence": {"ConditionSourceConcept": 1}})
    correlated = [
        {
            "Criteria": criteria,
            "StartWindow": _window_before_or_on(),
            "RestrictVisit": False,
            "IgnoreObservationPeriod": False,
            "Occurrence": {"Type": 2, "Count": 1, "IsDistinct": False},
        }
        for criteria in diagnosis_criteria
    ]
    return {
        "ConceptSets": concept_sets,
        "PrimaryCriteria": {
            "CriteriaList": primary,
            "ObservationWindow": {"PriorDays": 0, "PostDays": 0},
            "PrimaryCriteriaLimit": {"Type": "All"},
        },
        "AdditionalCriteria": {
            # one diagnosis criterion: ALL of it; standard OR source code: ANY of them
            "Type": "ALL" if len(correlated) == 1 else "ANY",
            "CriteriaList": correlated,
            "DemographicCriteriaList": [],
            "Groups": [],
        },
        "QualifiedLimit": {"Type": "First"},
        "ExpressionLimit": {"Type": "First"},
        "InclusionRules": [],
        "CensoringCriteria": [],
        "CollapseSettings": {"CollapseType": "ERA", "EraPad": 0},
        "CensorWindow": {},
        "cdmVersionRange": ">=5.0.0",
    }


def ohdsi_sql(
    expression: dict,
    cdm_schema: str,
    vocabulary_schema: str | None = None,
    target_table: str = f"temp.main.{TARGET_TABLE}",
    cohort_id: int = COHORT_ID,
) -> str:
    """Circe's cohort SQL in OHDSI SQL (SQL Server-like), template parameters filled."""
    circe = _circe()
    from circe.cohortdefinition import BuildExpressionQueryOptions

    parsed = circe.api.cohort_expression_from_json(json.dumps(expression))
    options = BuildExpressionQueryOptions()
    options.cdm_schema = cdm_schema
    options.vocabulary_schema = vocabulary_schema or cdm_schema
    options.target_table = target_table
    options.cohort_id = cohort_id
    return circe.api.build_cohort_query(parsed, options)


def duckdb_statements(sql: str) -> list[str]:
    """``sql`` translated to DuckDB by circepy's SqlRender port and split into statements."""
    circe = _circe()
    translated = circe.sqlrender.translate(sql, "duckdb")
    statements = [s.strip() for s in circe.sqlrender.split_sql(translated)]
    statements = [s for s in statements if s and s != ";"]
    leftover = [s for s in statements if re.search(r"@[A-Za-z_]\w*", s)]
    if leftover:
        raise ValueError(f"Circe SQL has unfilled template parameters: {leftover[0][:200]}")
    return statements


def circe_index_cohort(
    con_or_path: Any,
    catalog: str | None = None,
    cdm_schema: str = "cdm",
    vocabulary_schema: str | None = None,
    *,
    cart_set: str = "cart_cd19_products",
    all_set: str = "all_leukemia",
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
    ``procedure_set`` and ``source_codes`` widen the definition (module docstring).
    """
    import duckdb

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

        def items(name: str) -> list[dict]:
            return concept_set_items(name, concept_sets_dir) + code_items(
                con, name, vocabulary, concept_sets_dir
            )

        expression = cohort_expression(
            items(cart_set),
            items(all_set),
            items(procedure_set) if procedure_set else None,
            source_codes=source_codes,
        )
        statements = duckdb_statements(
            ohdsi_sql(
                expression,
                cdm_schema=f'"{catalog}".{cdm_schema}',
                vocabulary_schema=vocabulary,
            )
        )
        con.execute(
            f"create or replace temp table {TARGET_TABLE} (cohort_definition_id bigint, "
            "subject_id bigint, cohort_start_date date, cohort_end_date date)"
        )
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
