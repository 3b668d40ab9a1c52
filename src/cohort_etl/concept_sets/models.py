"""Pydantic models of the Circe concept set expression, in the exact shape ATLAS exports.

An expression is ``{"items": [{"concept": {...}, "isExcluded", "includeDescendants",
"includeMapped"}]}``. Concept fields keep ATLAS's upper-case names. Keys this model does not
know are kept (``extra="allow"``) and written back, and keys absent from the input stay
absent on output, so ``load -> dump -> load`` is the identity in meaning.

A full WebAPI concept set export (``{"id", "name", "expression": {"items": [...]}}``) is
accepted too; its wrapper is kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from cohort_etl.errors import SpecError


class Concept(BaseModel):
    """One vocabulary concept as ATLAS writes it inside a concept set item."""

    model_config = ConfigDict(extra="allow")

    CONCEPT_ID: StrictInt = Field(ge=0)
    CONCEPT_NAME: str | None = None
    STANDARD_CONCEPT: str | None = None
    STANDARD_CONCEPT_CAPTION: str | None = None
    INVALID_REASON: str | None = None
    INVALID_REASON_CAPTION: str | None = None
    CONCEPT_CODE: str | None = None
    DOMAIN_ID: str | None = None
    VOCABULARY_ID: str | None = None
    CONCEPT_CLASS_ID: str | None = None


class ConceptSetItem(BaseModel):
    """One line of a concept set: a concept and how to expand it."""

    model_config = ConfigDict(extra="allow")

    concept: Concept
    isExcluded: StrictBool = False
    includeDescendants: StrictBool = False
    includeMapped: StrictBool = False


class ConceptSetExpression(BaseModel):
    """A Circe concept set expression."""

    model_config = ConfigDict(extra="allow")

    items: list[ConceptSetItem]

    def concept_ids(self) -> list[int]:
        """Concept ids named by the items, in file order."""
        return [item.concept.CONCEPT_ID for item in self.items]


class _Wrapped(BaseModel):
    """WebAPI export: ``{"id", "name", "expression": {...}}``."""

    model_config = ConfigDict(extra="allow")

    expression: ConceptSetExpression


def _json_path(loc: tuple[int | str, ...], wrapped: bool) -> str:
    path = "$"
    for part in (("expression",) if wrapped else ()) + tuple(loc):
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


#: keys only a Circe *cohort* expression has (ATLAS cohort definition export)
_COHORT_KEYS = ("PrimaryCriteria", "ConceptSets", "InclusionRules")


def cohort_expression_message(data: Any) -> str | None:
    """What to say when ``data`` is a Circe cohort expression, not a concept set."""
    if not isinstance(data, dict) or "items" in data:
        return None
    wrapped = data.get("expression")
    body: dict[str, Any] = wrapped if isinstance(wrapped, dict) else data
    if not any(key in body for key in _COHORT_KEYS):
        return None
    sets = body.get("ConceptSets") or []
    return (
        "this is a Circe cohort definition (PrimaryCriteria / ConceptSets), not a concept set "
        'expression: concept_sets/ holds one concept set per file ({"items": [...]}). Keep '
        "cohort definitions outside concept_sets/ (the project's own are written by "
        "`cohort-etl cohorts export --format circe`); to use one of its "
        f"{len(sets)} concept set(s) here, save its ConceptSets[i].expression as its own file"
    )


def expression_errors(data: Any) -> list[tuple[str, str]]:
    """Every schema error of a decoded document as ``(JSON path, message)``; empty if valid."""
    cohort = cohort_expression_message(data)
    if cohort:
        return [("$", cohort)]
    wrapped = isinstance(data, dict) and "expression" in data and "items" not in data
    try:
        if wrapped:
            _Wrapped.model_validate(data)
        else:
            ConceptSetExpression.model_validate(data)
    except ValidationError as exc:
        out = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            if wrapped and loc and loc[0] == "expression":
                loc = loc[1:]
            out.append((_json_path(loc, wrapped), str(error["msg"])))
        return out
    return []


def parse_expression(data: Any, source: str = "<json>") -> ConceptSetExpression:
    """Validate a decoded JSON document as a concept set expression.

    Raises
    ------
    SpecError
        Naming ``source`` and the JSON path of the first schema error.
    """
    cohort = cohort_expression_message(data)
    if cohort:
        raise SpecError(f"{source}: {cohort}")
    wrapped = isinstance(data, dict) and "expression" in data and "items" not in data
    try:
        if wrapped:
            return _Wrapped.model_validate(data).expression
        return ConceptSetExpression.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        if wrapped and loc and loc[0] == "expression":
            loc = loc[1:]
        raise SpecError(f"{source}: {_json_path(loc, wrapped)}: {first['msg']}") from None


def load_expression(path: Path) -> ConceptSetExpression:
    """Read and validate one concept set JSON file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read concept set file: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
    return parse_expression(data, source=str(path))


def dump_expression(expression: ConceptSetExpression) -> dict[str, Any]:
    """The expression as a JSON-ready dict: only the keys that were given, extras kept."""
    return expression.model_dump(mode="json", exclude_unset=True)


def expression_json(expression: ConceptSetExpression) -> str:
    """The expression as indented JSON text (the layout of the committed files)."""
    return json.dumps(dump_expression(expression), indent=2) + "\n"
