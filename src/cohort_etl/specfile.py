"""Reading YAML spec files into pydantic models with errors a user can act on."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cohort_etl.errors import SpecError

M = TypeVar("M", bound=BaseModel)


def file_hash(path: Path) -> str:
    """The short content hash a run's manifest records for a spec or concept-set file
    (first 16 hex digits of its sha256); the network export checks a spec against it."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


class _SpecLoader(yaml.SafeLoader):
    """YAML's safe loader without implicit timestamps: ``2025-13-01`` stays text, so the
    model's date field rejects it with a field path (PyYAML's own date constructor raises
    a bare ValueError)."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """The decoded document and its node tree (for line numbers)."""
    return yaml.load(text, Loader=_SpecLoader), yaml.compose(text, Loader=_SpecLoader)


def locate(root: yaml.Node | None, loc: tuple[Any, ...]) -> tuple[int | None, list[str]]:
    """Line (1-based) of the node at ``loc`` (a pydantic error location) and the parts of
    ``loc`` that are keys of the document. Parts that are not (pydantic's union-member
    tags such as ``duckdb`` or ``time_to_event``) are skipped; a missing last key (a
    required field) is kept, with the line of its parent."""
    node, line, path = root, None, []
    for index, part in enumerate(loc):
        if node is None:
            break
        line = node.start_mark.line + 1
        child = None
        if isinstance(node, yaml.MappingNode):
            # the last of duplicate keys wins, as when loading
            for key, value in node.value:
                if getattr(key, "value", None) == str(part):
                    child = value
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
        if child is not None:
            node = child
            path.append(str(part))
        elif index == len(loc) - 1:
            path.append(str(part))
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line, path


def describe(error: Any, root: yaml.Node | None = None) -> str:
    """One pydantic error as ``[line N: ]field.path: message (allowed: ...)``."""
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if root is not None:
        line, path = locate(root, tuple(error["loc"]))
        if path:
            where = ".".join(path)
        if line is not None:
            where = f"line {line}: {where}"
    message = str(error["msg"])
    ctx = error.get("ctx") or {}
    if "expected" in ctx:
        message += f" (allowed: {ctx['expected']})"
    return f"{where}: {message}"


def load_yaml_spec(path: Path, model: type[M], what: str) -> M:
    """Read and validate ``path``; :class:`SpecError` names the file, field and allowed values."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: {what} not found") from None
    except UnicodeDecodeError as exc:
        line = Path(path).read_bytes()[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"{path}: line {line}: not UTF-8 text (byte {exc.object[exc.start]:#04x})"
        ) from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read {what}: {exc.strerror}") from None
    try:
        raw, root = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{path}: {where}not valid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a {what} is a YAML mapping")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(describe(e, root) for e in exc.errors())
        raise SpecError(f"{path}: {problems}") from None
