"""Validation of results.json files against the published JSON Schema (shared by tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "results.schema.json"


def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(results: Any) -> list[str]:
    """Every violation of docs/results.schema.json, as ``path: message``."""
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator().iter_errors(results)
    ]


def assert_valid(path: Path) -> dict[str, Any]:
    results = json.loads(Path(path).read_text())
    errors = schema_errors(results)
    assert not errors, f"{path} does not follow docs/results.schema.json:\n" + "\n".join(errors)
    return results
