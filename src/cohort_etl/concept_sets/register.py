"""Draft registry rows for ATLAS concept set exports dropped into ``concept_sets/``.

``registry.csv`` stays the reviewed source of truth: a new file is never used silently. It
is given a row with ``status = draft`` (printed, and said in the description) by
``cohort-etl concept-sets add FILE`` or by ``concept-sets validate``, which a reviewer
then accepts (``status = accepted``) or removes. The row is derived from the file only:

* ``name``: the export's ``name`` (ATLAS writes it in the WebAPI form
  ``{"name", "expression": {"items": [...]}}``), else the file name, as a lower-case
  identifier (``"[ALL] Prior TKI"`` -> ``all_prior_tki``);
* ``domain``: the ``DOMAIN_ID`` the items declare most often (ties: alphabetical first),
  blank when no item declares one;
* ``id``: the next free ``CS<number>``; ``created`` / ``modified``: the file's
  modification date (UTC), so the row does not depend on the day the command runs.

Registering again finds the row by file and adds nothing (idempotent). A file that is not
a concept set expression, has no items, or whose name a registered set already uses is
refused with the reason (exit 6).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cohort_etl.concept_sets.models import ConceptSetExpression, expression_errors, parse_expression
from cohort_etl.concept_sets.registry import (
    DOMAIN_COLUMN,
    DOMAINS,
    REGISTRY_COLUMNS,
    RegistryEntry,
    default_folder,
    is_file_name,
    load_registry,
)
from cohort_etl.errors import SpecError

DRAFT_NOTE = "DRAFT, not reviewed: registered from {file} by cohort-etl concept-sets add"
_ID = re.compile(r"^CS(\d+)$")


@dataclass(frozen=True)
class Drafted:
    """A registry row written (``added``) or found already there for a file."""

    entry: RegistryEntry
    added: bool

    def __str__(self) -> str:
        e = self.entry
        verb = "added draft registry row" if self.added else "already registered"
        return (
            f"{verb}: {e.id},{e.name},{e.file},status={e.status},domain={e.domain or '?'} "
            f"({'review it and set status to accepted in registry.csv' if e.status == 'draft' else e.status})"
        )


def set_name(text: str) -> str:
    """``text`` as a registry name: lower case, runs of other characters as ``_``."""
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if name and not name[0].isalpha():
        name = f"cs_{name}"
    return name[:63]


def safe_file_name(name: str) -> str:
    """``name`` as a registry file name (``Prior TKI (1).json`` -> ``prior_tki_1.json``)."""
    return f"{set_name(Path(name).stem) or 'concept_set'}.json"


def inferred_domain(expression: ConceptSetExpression) -> str:
    """The OMOP domain most of the items declare (``DOMAIN_ID``); blank if none does."""
    votes = Counter(i.concept.DOMAIN_ID for i in expression.items if i.concept.DOMAIN_ID)
    known = {d: n for d, n in votes.items() if d in DOMAINS}
    if not known:
        return ""
    return sorted(known.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def _read(path: Path) -> tuple[Any, ConceptSetExpression]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise SpecError(f"{path}: cannot read concept set file: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
    errors = expression_errors(data)
    if errors:
        where, message = errors[0]
        raise SpecError(
            f"{path}: not registered: not an ATLAS concept set expression ({where}: {message})"
        )
    return data, parse_expression(data, str(path))


def draft_entry(path: Path, entries: list[RegistryEntry]) -> RegistryEntry:
    """The draft registry row for the concept set file ``path`` (not yet written)."""
    if not is_file_name(path.name):
        raise SpecError(
            f"{path}: not registered: file name must be letters, digits, _ . - and end in "
            f".json; rename it (e.g. {safe_file_name(path.name)})"
        )
    data, expression = _read(path)
    if not expression.items:
        raise SpecError(
            f"{path}: concept set file(s) not registered: {path.name} has no items (nothing "
            "to register; add items in ATLAS, or add a row by hand for a set filled by "
            "code_items.csv)"
        )
    title = data.get("name") if isinstance(data, dict) else None
    name = set_name(title) if isinstance(title, str) and set_name(title) else set_name(path.stem)
    if not name:
        raise SpecError(f"{path}: not registered: no usable name in the file or its name")
    taken = {e.name: e for e in entries}
    if name in taken:
        raise SpecError(
            f"{path}: not registered: concept set name {name!r} is already used by "
            f"{taken[name].file} ({taken[name].id}); rename the file or the export's name"
        )
    numbers = [int(m.group(1)) for e in entries if (m := _ID.match(e.id))]
    created = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC).date()
    # the export's name on one line (no control characters), as the description's start
    printable = (
        "".join(c if c.isprintable() else " " for c in title) if isinstance(title, str) else ""
    )
    shown = " ".join(printable.split())[:200]
    label = f"{shown}. " if shown else ""
    return RegistryEntry(
        id=f"CS{max(numbers, default=0) + 1:03d}",
        name=name,
        file=path.name,
        status="draft",
        description=label + DRAFT_NOTE.format(file=path.name),
        owner="",
        created=created,
        modified=created,
        domain=inferred_domain(expression),
    )


def _append(registry: Path, entry: RegistryEntry) -> None:
    """Add ``entry`` as the last row; the rows above are kept byte for byte (the domain
    column is added, blank for the rows above, if the registry has none)."""
    with registry.open(newline="") as handle:
        fields = list(csv.DictReader(handle).fieldnames or REGISTRY_COLUMNS)
    row = entry.model_dump(mode="json")
    if DOMAIN_COLUMN not in fields:
        with registry.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        fields.append(DOMAIN_COLUMN)
        tmp = registry.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            writer.writerows({**r, DOMAIN_COLUMN: ""} for r in rows)
        tmp.replace(registry)
    text = registry.read_text()
    with registry.open("a", newline="") as handle:
        if text and not text.endswith("\n"):
            handle.write("\n")
        csv.writer(handle, lineterminator="\n").writerow([row[f] for f in fields])


def register(path: Path, folder: Path | None = None) -> Drafted:
    """Give the concept set file ``path`` (inside ``folder``) a draft registry row, unless
    it has one. Raises SpecError naming the file and the reason it cannot be registered."""
    folder = folder or default_folder()
    path = Path(path)
    if path.resolve().parent != folder.resolve():
        raise SpecError(
            f"{path}: not in the concept set folder {folder}; copy it there first "
            "(the registry names files beside it)"
        )
    if not path.is_file():
        raise SpecError(f"{path}: concept set file not found")
    entries = load_registry(folder)
    for entry in entries:
        if entry.file == path.name:
            return Drafted(entry, added=False)
    entry = draft_entry(path, entries)
    _append(folder / "registry.csv", entry)
    return Drafted(entry, added=True)


def unregistered(folder: Path | None = None) -> list[Path]:
    """JSON files in ``folder`` that the registry does not name, sorted."""
    folder = folder or default_folder()
    known = {e.file for e in load_registry(folder)}
    return sorted(p for p in folder.glob("*.json") if p.name not in known)


def register_new(folder: Path | None = None) -> tuple[list[Drafted], list[str]]:
    """Draft rows for every unregistered file in ``folder``: the rows added, and one
    message per file that could not be registered (with the reason)."""
    folder = folder or default_folder()
    added, refused = [], []
    for path in unregistered(folder):
        try:
            added.append(register(path, folder))
        except SpecError as exc:
            refused.append(str(exc))
    return added, refused
