"""Compile the concept set JSON into the dbt seed ``concept_set_items`` (generated, ignored).

One row per item: ``concept_set_name, concept_id, is_excluded, include_descendants,
include_mapped``. The dbt model ``concept_set_concepts`` expands it with Circe semantics.
The seed is rewritten on every build from the JSON; it is never edited by hand.
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
    "is_excluded",
    "include_descendants",
    "include_mapped",
)


def seed_rows(sets: Sequence[ConceptSet]) -> list[tuple[str, int, bool, bool, bool]]:
    """The seed's rows, de-duplicated, in a stable order (set name, concept id, flags)."""
    rows = {
        (
            concept_set.name,
            item.concept.CONCEPT_ID,
            item.isExcluded,
            item.includeDescendants,
            item.includeMapped,
        )
        for concept_set in sets
        for item in concept_set.expression.items
    }
    return sorted(rows)


def compile_seed(sets: Sequence[ConceptSet], seeds_dir: Path) -> Path:
    """Write ``<seeds_dir>/generated/concept_set_items.csv`` and return its path."""
    out = seeds_dir / "generated" / f"{SEED_NAME}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SEED_COLUMNS)
        for name, concept_id, excluded, descendants, mapped in seed_rows(sets):
            writer.writerow(
                [
                    name,
                    concept_id,
                    str(excluded).lower(),
                    str(descendants).lower(),
                    str(mapped).lower(),
                ]
            )
    tmp.replace(out)
    return out
