"""``cohort-etl cohorts export --format circe``: one Circe cohort expression per cohort.

Concept sets are embedded as ATLAS items: the items of ``concept_sets/<name>.json`` as they
are, plus the set's ``code_items.csv`` rows (codes without a public concept id) resolved
against the site's vocabulary by ``(vocabulary_id, concept_code)``, with the row's flags;
codes the vocabulary lacks are left out, as the build's resolver leaves them out. The
rules' windows are the dbt vars of ``dbt_project/dbt_project.yml``.

Files written to the output folder (replaced, nothing else touched):

* ``<cohort>.json``: the Circe cohort expression (Circe / ATLAS JSON);
* ``<cohort>.md``: what the cohort is, its id, its rules, and where the Circe definition
  differs from ours;
* ``cohorts.json``: the list (id, name, description, files, differences by rule).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cohort_etl.circe.cohorts import ProjectCohort, project_cohorts
from cohort_etl.circe.expression import DEFAULT_PARAMETERS, Builder, CirceCohort
from cohort_etl.concept_sets.models import dump_expression
from cohort_etl.concept_sets.registry import ConceptSet, load_concept_sets
from cohort_etl.config import project_root
from cohort_etl.db import Database
from cohort_etl.errors import InputDataError, SpecError

FORMATS = ("circe",)


def dbt_parameters() -> dict[str, int]:
    """The dbt vars the Circe rules read, from dbt_project/dbt_project.yml."""
    path = project_root() / "dbt_project" / "dbt_project.yml"
    variables = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("vars", {})
    out = dict(DEFAULT_PARAMETERS)
    for key in out:
        if key in variables:
            try:
                out[key] = int(variables[key])
            except (TypeError, ValueError):
                raise SpecError(f"{path}: var {key} must be a whole number of days") from None
    return out


#: runs a query with bound parameters and returns its rows (Database.query_df)
QueryDf = Callable[[str, Sequence[Any]], pd.DataFrame]


def code_item_rows(
    query_df: QueryDf, concept_table: str, param: str, concept_set: ConceptSet
) -> list[dict]:
    """``concept_set``'s code items as ATLAS items, each code looked up by
    ``(vocabulary_id, concept_code)`` in ``concept_table`` (a quoted reference) with bound
    parameters (``param`` is the driver's placeholder); codes the vocabulary lacks are
    left out."""
    items = []
    for item in concept_set.code_items:
        frame = query_df(
            "select concept_id, concept_name, standard_concept, domain_id, vocabulary_id, "
            f"concept_class_id, concept_code, invalid_reason from {concept_table} "
            f"where vocabulary_id = {param} and concept_code = {param} "
            "order by concept_id",
            [item.vocabulary_id, item.concept_code],
        )
        for row in frame.to_dict("records"):
            concept: dict[str, Any] = {
                "CONCEPT_ID": int(row["concept_id"]),
                "CONCEPT_NAME": _text(row["concept_name"]),
                "STANDARD_CONCEPT": _text(row["standard_concept"]),
                "INVALID_REASON": _text(row["invalid_reason"]),
                "CONCEPT_CODE": _text(row["concept_code"]),
                "DOMAIN_ID": _text(row["domain_id"]),
                "VOCABULARY_ID": _text(row["vocabulary_id"]),
                "CONCEPT_CLASS_ID": _text(row["concept_class_id"]),
            }
            items.append(
                {
                    "concept": concept,
                    "isExcluded": item.is_excluded,
                    "includeDescendants": item.include_descendants,
                    "includeMapped": item.include_mapped,
                }
            )
    return items


def _text(value: Any) -> str | None:
    return None if value is None or value != value else str(value)


def resolved_items(
    query_df: QueryDf, concept_table: str, param: str, sets: Sequence[ConceptSet]
) -> dict[str, list[dict]]:
    """Set name -> its ATLAS items: the JSON's items, then its resolved code items."""
    return {
        s.name: dump_expression(s.expression)["items"]
        + code_item_rows(query_df, concept_table, param, s)
        for s in sets
    }


def check_vocabulary(db: Database, schema: str) -> None:
    """The vocabulary tables Circe (and the code-item look-up) read must exist."""
    present = set(db.tables(schema)) if db.schema_exists(schema) else set()
    missing = [
        t for t in ("concept", "concept_ancestor", "concept_relationship") if t not in present
    ]
    if missing:
        raise InputDataError(
            f"vocabulary table(s) {', '.join(f'{schema}.{t}' for t in missing)} missing: "
            "the Circe export resolves code items against the site's vocabulary"
        )


def build_cohorts(
    items: dict[str, list[dict]],
    cohorts: Sequence[ProjectCohort] | None = None,
    parameters: dict[str, int] | None = None,
) -> list[CirceCohort]:
    """The Circe cohorts of ``cohorts`` (default: every cohort of the project)."""
    builder = Builder(items, parameters or dbt_parameters())
    out = []
    for cohort in cohorts if cohorts is not None else project_cohorts():
        try:
            out.append(builder.cohort(cohort.name, cohort.description, cohort.rules))
        except (KeyError, ValueError) as exc:
            raise SpecError(f"Circe export of cohort {cohort.name}: {exc}") from None
    return out


@dataclass(frozen=True)
class ExportedCohort:
    cohort_definition_id: int
    name: str
    path: Path
    notes: Path
    differences: dict[str, str]


def notes_markdown(cohort: ProjectCohort, circe: CirceCohort, cohort_id: int) -> str:
    lines = [
        f"# {cohort.name} (cohort_definition_id {cohort_id})",
        "",
        cohort.description + ".",
        "",
        f"Circe cohort expression: `{cohort.name}.json` (exported by "
        "`cohort-etl cohorts export --format circe`; see docs/circe_export.md).",
        "",
        "## Rules (cohort_attrition order)",
        "",
        "- all_diagnosis, cart_after_all_diagnosis: the entry event (primary criteria: CAR-T "
        "drug exposures and CAR-T administration procedures; additional criteria: an ALL "
        "diagnosis on or before it; qualified limit: first).",
    ]
    for rule in cohort.rules[2:]:
        lines.append(f"- {rule}: inclusion rule `{rule}`.")
    lines += ["", "## Where the Circe definition differs from ours", ""]
    for rule, note in circe.differences.items():
        lines.append(f"- **{rule}**: {note}")
    return "\n".join(lines) + "\n"


def export_circe(
    db: Database,
    out_dir: Path,
    *,
    vocabulary_schema: str,
    cohort_id_offset: int = 0,
    concept_sets_folder: Path | None = None,
) -> list[ExportedCohort]:
    """Write every cohort's Circe expression, notes and the cohorts.json index."""
    check_vocabulary(db, vocabulary_schema)
    sets = load_concept_sets(concept_sets_folder)
    items = resolved_items(
        db.query_df, f"{db.schema_ref(vocabulary_schema)}.concept", db.param, sets
    )
    cohorts = project_cohorts()
    circe_cohorts = build_cohorts(items, cohorts)
    out_dir.mkdir(parents=True, exist_ok=True)
    exported = []
    for cohort, circe in zip(cohorts, circe_cohorts, strict=True):
        cohort_id = cohort.cohort_definition_id(cohort_id_offset)
        path = out_dir / f"{cohort.name}.json"
        notes = out_dir / f"{cohort.name}.md"
        path.write_text(json.dumps(circe.expression, indent=2) + "\n", encoding="utf-8")
        notes.write_text(notes_markdown(cohort, circe, cohort_id), encoding="utf-8")
        exported.append(ExportedCohort(cohort_id, cohort.name, path, notes, circe.differences))
    index = [
        {
            "cohort_definition_id": e.cohort_definition_id,
            "name": c.name,
            "description": c.description,
            "rules": list(c.rules),
            "file": e.path.name,
            "notes": e.notes.name,
            "differences": e.differences,
        }
        for c, e in zip(cohorts, exported, strict=True)
    ]
    (out_dir / "cohorts.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return exported
