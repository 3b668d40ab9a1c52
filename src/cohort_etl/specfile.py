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


def describe(error: Any) -> str:
    """One pydantic error as ``field.path: message (allowed: ...)``."""
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    message = str(error["msg"])
    ctx = error.get("ctx") or {}
    if "expected" in ctx:
        message += f" (allowed: {ctx['expected']})"
    return f"{where}: {message}"


def load_yaml_spec(path: Path, model: type[M], what: str) -> M:
    """Read and validate ``path``; :class:`SpecError` names the file, field and allowed values."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: {what} not found") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a {what} is a YAML mapping")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(describe(e) for e in exc.errors())
        raise SpecError(f"{path}: {problems}") from None
