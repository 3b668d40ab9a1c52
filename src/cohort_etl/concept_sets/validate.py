"""Validation of the concept set folder: schema errors (file + JSON path) and, with a
connected vocabulary, concepts that the vocabulary does not have."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cohort_etl.concept_sets.models import expression_errors
from cohort_etl.concept_sets.registry import (
    ConceptSet,
    default_folder,
    load_code_items,
    load_concept_sets,
    load_registry,
)
from cohort_etl.db import Database
from cohort_etl.errors import SpecError


@dataclass(frozen=True)
class Issue:
    """One problem found: where, what, and whether it stops a build (``error``)."""

    level: str  # "error" or "warning"
    location: str  # file[:json path] or set name
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.location}: {self.message}"


def schema_issues(folder: Path | None = None) -> list[Issue]:
    """Every schema problem of every file (not only the first), with file and JSON path."""
    folder = folder or default_folder()
    issues: list[Issue] = []
    try:
        entries = load_registry(folder)
        load_code_items(folder)
    except SpecError as exc:
        return [Issue("error", str(folder / "registry.csv"), str(exc))]
    for entry in entries:
        path = folder / entry.file
        if not path.exists():
            issues.append(Issue("error", str(path), f"registered as {entry.name} but missing"))
            continue
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            issues.append(
                Issue("error", str(path), f"not valid JSON (line {exc.lineno}): {exc.msg}")
            )
            continue
        for json_path, message in expression_errors(data):
            issues.append(Issue("error", f"{path}:{json_path}", message))
    if not issues:
        try:
            load_concept_sets(folder)
        except SpecError as exc:
            issues.append(Issue("error", str(folder), str(exc)))
    return issues


def vocabulary_issues(db: Database, sets: list[ConceptSet], schema: str) -> list[Issue]:
    """Items whose concept is absent from (or invalid in) the connected vocabulary."""
    issues: list[Issue] = []
    table = f"{db.schema_ref(schema)}.concept"
    ids = sorted({item.concept.CONCEPT_ID for s in sets for item in s.expression.items})
    known: dict[int, str | None] = {}
    if ids:
        frame = db.query_df(
            f"select concept_id, invalid_reason from {table} "
            f"where concept_id in ({', '.join([db.param] * len(ids))})",
            ids,
        )
        known = {
            int(cid): (None if reason is None or reason != reason else str(reason))
            for cid, reason in zip(frame["concept_id"], frame["invalid_reason"], strict=True)
        }
    for mismatch in domain_mismatches(db, table, sets):
        for index, cid, found in mismatch.concepts:
            issues.append(
                Issue(
                    "warning",
                    f"{mismatch.concept_set.path}:$.items[{index}].concept.CONCEPT_ID",
                    f"concept {cid} is a {found} concept in a {mismatch.intended} concept set",
                )
            )
    for concept_set in sets:
        for index, item in enumerate(concept_set.expression.items):
            cid = item.concept.CONCEPT_ID
            where = f"{concept_set.path}:$.items[{index}].concept.CONCEPT_ID"
            if cid not in known:
                issues.append(
                    Issue(
                        "warning",
                        where,
                        f"concept {cid} is not in the vocabulary ({schema}.concept)",
                    )
                )
            elif known[cid] is not None:
                issues.append(
                    Issue(
                        "warning",
                        where,
                        f"concept {cid} is invalid ({known[cid]}) in the vocabulary: "
                        "Circe ignores it and its descendants are taken only if valid",
                    )
                )
        for code in concept_set.code_items:
            n = db.scalar(
                f"select count(*) from {table} "
                f"where vocabulary_id = {db.param} and concept_code = {db.param}",
                [code.vocabulary_id, code.concept_code],
            )
            if not n:
                issues.append(
                    Issue(
                        "warning",
                        f"code_items.csv:{concept_set.name}",
                        f"{code.vocabulary_id} {code.concept_code} is not in the vocabulary",
                    )
                )
    return issues


@dataclass(frozen=True)
class DomainMismatch:
    """Items of one concept set whose vocabulary domain is not the set's intended one."""

    concept_set: ConceptSet
    intended: str
    concepts: list[tuple[int, int, str]]  # (item index, concept id, its vocabulary domain)

    def message(self) -> str:
        shown = ", ".join(f"{c} ({d})" for _, c, d in self.concepts[:5])
        more = f" and {len(self.concepts) - 5} more" if len(self.concepts) > 5 else ""
        return (
            f"concept set {self.concept_set.name} ({self.concept_set.path.name}) is a "
            f"{self.intended} set but names concept(s) of another domain: {shown}{more}"
        )


def domain_mismatches(
    db: Database, concept_table: str, sets: Sequence[ConceptSet]
) -> list[DomainMismatch]:
    """Items whose vocabulary ``domain_id`` differs from their set's intended domain.

    The intended domain is the one the set's items declare most often (ATLAS writes each
    concept's DOMAIN_ID into the file), else the most common vocabulary domain of its
    items; ties go to the alphabetically first. ``concept_table`` is a quoted reference.
    """
    ids = sorted({item.concept.CONCEPT_ID for s in sets for item in s.expression.items})
    if not ids:
        return []
    frame = db.query_df(
        f"select concept_id, domain_id from {concept_table} "
        f"where concept_id in ({', '.join([db.param] * len(ids))})",
        ids,
    )
    domain = {int(c): str(d) for c, d in zip(frame["concept_id"], frame["domain_id"], strict=True)}
    out = []
    for concept_set in sets:
        items = concept_set.expression.items
        declared = [i.concept.DOMAIN_ID for i in items if i.concept.DOMAIN_ID]
        actual = [domain[i.concept.CONCEPT_ID] for i in items if i.concept.CONCEPT_ID in domain]
        votes = Counter(declared or actual)
        if not votes:
            continue
        intended = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        wrong = [
            (index, i.concept.CONCEPT_ID, domain[i.concept.CONCEPT_ID])
            for index, i in enumerate(items)
            if i.concept.CONCEPT_ID in domain and domain[i.concept.CONCEPT_ID] != intended
        ]
        if wrong:
            out.append(DomainMismatch(concept_set, intended, wrong))
    return out
