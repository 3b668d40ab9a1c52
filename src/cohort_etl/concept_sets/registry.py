"""The concept set registry (``concept_sets/registry.csv``) and loading every set it lists.

Columns: ``id, name, file, status, description, owner, created, modified, replaces`` and
(optional column) ``domain``, the OMOP domain of the set's concepts. ``name`` is the stable
handle the dbt models and study specs use (``concept_set_name``); ``file`` is the Circe JSON
beside the registry. Every JSON file in the folder must be registered and every registered
file must exist: a new ATLAS export dropped into the folder is given a ``draft`` row by
``cohort-etl concept-sets validate`` / ``concept-sets add`` (:mod:`.register`), which a
reviewer then accepts by setting ``status`` to ``accepted``.

``code_items.csv`` (optional) adds items for codes that have no known public OMOP concept id
(``concept_set_name, vocabulary_id, concept_code, is_excluded, include_descendants,
include_mapped, note``). They are resolved by ``(vocabulary_id, concept_code)`` against the
connected vocabulary at build time (DESIGN.md) and kept out of the Circe JSON, so the JSON
stays valid for ATLAS (where a concept id must be real).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from cohort_etl.concept_sets.models import ConceptSetExpression, load_expression
from cohort_etl.config import project_root
from cohort_etl.errors import SpecError

REGISTRY_COLUMNS = (
    "id",
    "name",
    "file",
    "status",
    "description",
    "owner",
    "created",
    "modified",
    "replaces",
)
#: optional registry column (a registry without it is read as all blank)
DOMAIN_COLUMN = "domain"
#: OMOP domain ids a concept set's concepts can have (the registry's ``domain``)
DOMAINS = (
    "Condition",
    "Drug",
    "Procedure",
    "Measurement",
    "Observation",
    "Device",
    "Visit",
    "Specimen",
    "Episode",
)
STATUSES = ("draft", "accepted", "deprecated")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: a concept set file: a plain file name beside the registry (no folders)
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.json$")
#: OMOP vocabulary ids ("ICD10CM", "SNOMED", "Cancer Modifier", "OMOP Extension")
_VOCABULARY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,19}$")
#: characters no OMOP concept code carries: quotes, statement separators, backslashes,
#: control characters (a code is matched as a bound value; these are refused as typos)
_CODE_FORBIDDEN = re.compile(r"['\";\\\x00-\x1f\x7f]|--")


def is_file_name(name: str) -> bool:
    """True if ``name`` is a concept set file name the registry accepts."""
    return bool(_FILE.match(name))


def default_folder() -> Path:
    """``concept_sets/`` at the project root."""
    return project_root() / "concept_sets"


class RegistryEntry(BaseModel):
    """One row of the registry."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    file: str
    status: str
    description: str
    owner: str
    created: date
    modified: date
    replaces: str = ""
    domain: str = ""

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if value and value not in DOMAINS:
            raise ValueError(f"must be blank or one of {', '.join(DOMAINS)}")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be a lower-case identifier (letters, digits, _)")
        return value

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        if value not in STATUSES:
            raise ValueError(f"must be one of {', '.join(STATUSES)}")
        return value

    @field_validator("file")
    @classmethod
    def _file(cls, value: str) -> str:
        if not _FILE.match(value):
            raise ValueError(
                f"{value!r} must be a plain .json file name beside the registry "
                "(letters, digits, _ . -)"
            )
        return value


class CodeItem(BaseModel):
    """An item named by vocabulary and code instead of concept id."""

    model_config = ConfigDict(extra="forbid")

    concept_set_name: str
    vocabulary_id: str
    concept_code: str
    is_excluded: bool = False
    include_descendants: bool = False
    include_mapped: bool = False
    note: str = ""

    @field_validator("concept_set_name")
    @classmethod
    def _set_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be a lower-case identifier (letters, digits, _)")
        return value

    @field_validator("vocabulary_id")
    @classmethod
    def _vocabulary(cls, value: str) -> str:
        if not _VOCABULARY_ID.match(value):
            raise ValueError(
                f"{value!r} is not an OMOP vocabulary id (letters, digits, space _ . -, "
                "at most 20 characters)"
            )
        return value

    @field_validator("concept_code")
    @classmethod
    def _code(cls, value: str) -> str:
        bad = _CODE_FORBIDDEN.search(value)
        if not value.strip() or value != value.strip():
            raise ValueError(f"{value!r}: empty, or leading/trailing blanks")
        if bad:
            raise ValueError(f"{value!r} contains {bad.group()!r}, which no OMOP concept code has")
        if len(value) > 50:
            raise ValueError(f"{value[:20]!r}...: longer than 50 characters (OMOP concept_code)")
        return value


CODE_ITEM_COLUMNS = tuple(CodeItem.model_fields)


@dataclass(frozen=True)
class ConceptSet:
    """A registered concept set: its registry entry, file, parsed expression, code items."""

    entry: RegistryEntry
    path: Path
    expression: ConceptSetExpression
    code_items: tuple[CodeItem, ...] = ()

    @property
    def name(self) -> str:
        return self.entry.name


def load_registry(folder: Path | None = None) -> list[RegistryEntry]:
    """Parse ``registry.csv``; errors name the file, row and column."""
    folder = folder or default_folder()
    path = folder / "registry.csv"
    if not path.exists():
        raise SpecError(f"{path}: concept set registry not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REGISTRY_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SpecError(f"{path}: missing column(s) {', '.join(missing)}")
        entries: list[RegistryEntry] = []
        for line, row in enumerate(reader, start=2):
            try:
                entries.append(RegistryEntry.model_validate(row))
            except ValidationError as exc:
                first = exc.errors()[0]
                col = ".".join(str(p) for p in first["loc"])
                raise SpecError(f"{path}: line {line}: column {col}: {first['msg']}") from None
    seen: dict[str, str] = {}
    for entry in entries:
        for key in (f"id {entry.id}", f"name {entry.name}", f"file {entry.file}"):
            if key in seen:
                raise SpecError(f"{path}: duplicate {key}")
            seen[key] = key
    return entries


def load_code_items(folder: Path | None = None) -> list[CodeItem]:
    """Parse ``code_items.csv`` (empty list if the file does not exist)."""
    folder = folder or default_folder()
    path = folder / "code_items.csv"
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CODE_ITEM_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SpecError(f"{path}: missing column(s) {', '.join(missing)}")
        items = []
        for line, row in enumerate(reader, start=2):
            try:
                items.append(CodeItem.model_validate(row))
            except ValidationError as exc:
                first = exc.errors()[0]
                col = ".".join(str(p) for p in first["loc"])
                raise SpecError(f"{path}: line {line}: column {col}: {first['msg']}") from None
    return items


def load_concept_sets(
    folder: Path | None = None, names: list[str] | None = None
) -> list[ConceptSet]:
    """Every registered concept set (or the ``names`` given), parsed and validated."""
    folder = folder or default_folder()
    entries = load_registry(folder)
    registered = {entry.file for entry in entries}
    stray = sorted(p.name for p in folder.glob("*.json") if p.name not in registered)
    if stray:
        raise SpecError(
            f"{folder / 'registry.csv'}: concept set file(s) not registered: {', '.join(stray)}"
        )
    if names:
        known = {entry.name for entry in entries}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SpecError(
                f"unknown concept set {', '.join(unknown)}; registered: {', '.join(sorted(known))}"
            )
        entries = [entry for entry in entries if entry.name in names]
    code_items = load_code_items(folder)
    known_names = {entry.name for entry in load_registry(folder)}
    for item in code_items:
        if item.concept_set_name not in known_names:
            raise SpecError(
                f"{folder / 'code_items.csv'}: concept set {item.concept_set_name!r} "
                "is not in the registry"
            )
    sets = []
    for entry in entries:
        path = folder / entry.file
        if not path.exists():
            raise SpecError(f"{folder / 'registry.csv'}: {entry.name}: file {entry.file} not found")
        sets.append(
            ConceptSet(
                entry=entry,
                path=path,
                expression=load_expression(path),
                code_items=tuple(i for i in code_items if i.concept_set_name == entry.name),
            )
        )
    return sets
