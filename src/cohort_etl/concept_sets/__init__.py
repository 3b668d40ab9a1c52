"""Concept sets: ATLAS/Circe expressions kept as written, validated, resolved, compiled.

The JSON files in ``concept_sets/`` are the source of truth. This package reads them
(:mod:`.models`, :mod:`.registry`), checks them (:mod:`.validate`), resolves them against a
connected vocabulary with Circe semantics (:mod:`.resolve`) and compiles them into the dbt
seed the models read (:mod:`.compile`).
"""

from cohort_etl.concept_sets.compile import compile_seed
from cohort_etl.concept_sets.models import (
    Concept,
    ConceptSetExpression,
    ConceptSetItem,
    dump_expression,
    load_expression,
    parse_expression,
)
from cohort_etl.concept_sets.registry import ConceptSet, RegistryEntry, load_concept_sets

__all__ = [
    "Concept",
    "ConceptSet",
    "ConceptSetExpression",
    "ConceptSetItem",
    "RegistryEntry",
    "compile_seed",
    "dump_expression",
    "load_concept_sets",
    "load_expression",
    "parse_expression",
]
