"""Compile the concept set JSON into the dbt seed ``concept_set_items`` (generated, ignored).

One row per item: ``concept_set_name, concept_id, vocabulary_id, concept_code, is_excluded,
include_descendants, include_mapped``. Items from the Circe JSON carry a concept id (and an
empty vocabulary/code); items from ``code_items.csv`` carry a vocabulary and code and an
empty concept id, resolved against the CDM's vocabulary in dbt. The dbt model
``concept_set_item_concepts`` expands them with Circe semantics. The seed is rewritten on
every build from the committed files; it is never edited by hand.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from cohort_etl.concept_sets.registry import ConceptSet

SEED_NAME = "concept_set_items"
SEED_COLUMNS = (
    "concept_set_name",
    "concept_id",
    "vocabulary_id",
    "concept_code",
    "is_excluded",
    "include_descendants",
    "include_mapped",
)

SeedRow = tuple[str, str, str, str, bool, bool, bool]


def seed_rows(sets: Sequence[ConceptSet]) -> list[SeedRow]:
    """The seed's rows, de-duplicated, in a stable order."""
    rows: set[SeedRow] = set()
    for concept_set in sets:
        for item in concept_set.expression.items:
            rows.add(
                (
                    concept_set.name,
                    str(item.concept.CONCEPT_ID),
                    "",
                    "",
                    item.isExcluded,
                    item.includeDescendants,
                    item.includeMapped,
                )
            )
        for code in concept_set.code_items:
            rows.add(
                (
                    concept_set.name,
                    "",
                    code.vocabulary_id,
                    code.concept_code,
                    code.is_excluded,
                    code.include_descendants,
                    code.include_mapped,
                )
            )
    return sorted(rows)


def compile_seed(sets: Sequence[ConceptSet], seeds_dir: Path) -> Path:
    """Write ``<seeds_dir>/generated/concept_set_items.csv`` and return its path."""
    out = seeds_dir / "generated" / f"{SEED_NAME}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SEED_COLUMNS)
        for name, concept_id, vocabulary, code, excluded, descendants, mapped in seed_rows(sets):
            writer.writerow(
                [
                    name,
                    concept_id,
                    vocabulary,
                    code,
                    str(excluded).lower(),
                    str(descendants).lower(),
                    str(mapped).lower(),
                ]
            )
    tmp.replace(out)
    return out
