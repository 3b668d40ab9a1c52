"""Concept sets written back as full ATLAS exports (``cohort-etl concept-sets export``).

The committed JSON keeps only items with a public OMOP concept id; codes without one live
in ``code_items.csv`` and are resolved by ``(vocabulary_id, concept_code)`` at build time,
so ATLAS, CohortDiagnostics or Circe reading the committed file see less than the build
uses (``bone_marrow_assessment`` and ``extramedullary_involvement`` have no JSON item at
all). ``export --resolved`` looks each code item up in the connected vocabulary and writes
it as an ordinary concept item (the site's concept id, with the item's
``isExcluded`` / ``includeDescendants`` / ``includeMapped``) after the file's own items.
A code the vocabulary does not have cannot be written (a Circe item needs an id); the
export's ``description`` lists it. Each file is the WebAPI form ATLAS imports and exports:
``{"name", "description", "expression": {"items": [...]}}``. Without ``--resolved`` the
committed items are written in the same form (nothing looked up).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cohort_etl.concept_sets.models import dump_expression
from cohort_etl.concept_sets.registry import CodeItem, ConceptSet
from cohort_etl.db import Database

_STANDARD_CAPTION = {"S": "Standard", "C": "Classification"}


@dataclass
class Exported:
    """What one exported file holds."""

    name: str
    path: Path
    items: int
    code_items_resolved: list[str] = field(default_factory=list)
    code_items_unresolved: list[str] = field(default_factory=list)


def _code(item: CodeItem) -> str:
    return f"{item.vocabulary_id} {item.concept_code}"


def lookup_codes(
    db: Database, concept_table: str, codes: Sequence[CodeItem]
) -> dict[tuple[str, str], dict[str, Any]]:
    """ATLAS concept fields of each ``(vocabulary_id, concept_code)`` the vocabulary has
    (``concept_table`` is a quoted reference; codes are bound values)."""
    pairs = sorted({(c.vocabulary_id, c.concept_code) for c in codes})
    out: dict[tuple[str, str], dict[str, Any]] = {}
    if not pairs:
        return out
    where = " or ".join(
        [f"(vocabulary_id = {db.param} and concept_code = {db.param})"] * len(pairs)
    )
    frame = db.query_df(
        "select concept_id, concept_name, standard_concept, invalid_reason, concept_code, "
        f"domain_id, vocabulary_id, concept_class_id from {concept_table} where {where} "
        "order by vocabulary_id, concept_code, concept_id",
        [v for pair in pairs for v in pair],
    )
    for row in frame.to_dict(orient="records"):
        key = (str(row["vocabulary_id"]), str(row["concept_code"]))
        if key in out:  # one code, several ids: the first (lowest id) is written
            continue
        standard = row["standard_concept"] if isinstance(row["standard_concept"], str) else None
        invalid = row["invalid_reason"] if isinstance(row["invalid_reason"], str) else None
        out[key] = {
            "CONCEPT_ID": int(row["concept_id"]),
            "CONCEPT_NAME": str(row["concept_name"]),
            "STANDARD_CONCEPT": standard or "N",
            "STANDARD_CONCEPT_CAPTION": _STANDARD_CAPTION.get(standard or "", "Non-Standard"),
            "INVALID_REASON": invalid or "V",
            "INVALID_REASON_CAPTION": "Invalid" if invalid else "Valid",
            "CONCEPT_CODE": str(row["concept_code"]),
            "DOMAIN_ID": str(row["domain_id"]),
            "VOCABULARY_ID": str(row["vocabulary_id"]),
            "CONCEPT_CLASS_ID": str(row["concept_class_id"]),
        }
    return out


def export_document(
    concept_set: ConceptSet,
    resolved: dict[tuple[str, str], dict[str, Any]] | None,
    vocabulary: str | None = None,
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The WebAPI-form export of one set, and its code items resolved / not resolved.
    ``resolved`` None: the committed items only."""
    items = list(dump_expression(concept_set.expression)["items"])
    done: list[str] = []
    missing: list[str] = []
    if resolved is not None:
        seen = {i["concept"]["CONCEPT_ID"] for i in items}
        for code in concept_set.code_items:
            concept = resolved.get((code.vocabulary_id, code.concept_code))
            if concept is None:
                missing.append(_code(code))
                continue
            done.append(f"{_code(code)} -> {concept['CONCEPT_ID']}")
            if concept["CONCEPT_ID"] in seen and not code.is_excluded:
                continue
            items.append(
                {
                    "concept": concept,
                    "isExcluded": code.is_excluded,
                    "includeDescendants": code.include_descendants,
                    "includeMapped": code.include_mapped,
                }
            )
    n_code = len(concept_set.code_items)
    if resolved is None:
        note = f"{concept_set.entry.description.rstrip('.')}. Committed items only" + (
            f"; {n_code} code item(s) of code_items.csv are not included "
            "(export --resolved writes them with the site's concept ids)"
            if n_code
            else ""
        )
    else:
        note = (
            f"{concept_set.entry.description.rstrip('.')}. Resolved by cohort-etl against the site "
            f"vocabulary{f' ({vocabulary})' if vocabulary else ''}: "
            f"{len(concept_set.expression.items)} item(s) from {concept_set.path.name}"
            + (
                f", plus {len(done)} code item(s) of code_items.csv written with the site's "
                f"concept ids ({'; '.join(done)})"
                if done
                else ""
            )
            + (
                f"; {len(missing)} code item(s) not in this vocabulary and left out: "
                f"{', '.join(missing)}"
                if missing
                else ""
            )
            + ". Concept ids of code items are this site's: do not share the file as "
            "a definition for other sites."
        )
    document = {
        "name": concept_set.name,
        "description": note,
        "expression": {"items": items},
    }
    return document, done, missing


def write_exports(
    sets: Sequence[ConceptSet],
    out_dir: Path,
    resolved: dict[tuple[str, str], dict[str, Any]] | None,
    vocabulary: str | None = None,
) -> list[Exported]:
    """One ``<name>.json`` per set in ``out_dir`` (each written atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for concept_set in sets:
        document, done, missing = export_document(concept_set, resolved, vocabulary)
        path = out_dir / f"{concept_set.name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(document, indent=2) + "\n")
        tmp.replace(path)
        written.append(
            Exported(
                name=concept_set.name,
                path=path,
                items=len(document["expression"]["items"]),
                code_items_resolved=done,
                code_items_unresolved=missing,
            )
        )
    return written
