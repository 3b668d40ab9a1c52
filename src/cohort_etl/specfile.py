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


def node_line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the node at ``loc`` (a pydantic error location), else of the
    deepest node on the way there."""
    node, line = root, None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if 0 <= part < len(node.value) else None
        else:
            # pydantic adds union member / tag names to the location: skip those parts
            continue
    if node is not None:
        line = node.start_mark.line + 1
    return line


def describe(error: Any, root: yaml.Node | None = None) -> str:
    """One pydantic error as ``[line N: ]field.path: message (allowed: ...)``."""
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    line = node_line(root, tuple(error["loc"])) if root is not None else None
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
