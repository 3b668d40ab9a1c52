"""Cohorts are named, never numbered, in Python: no cohort id literal in src/cohort_etl
(the dbt side resolves names to ids from the one cohort list)."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "cohort_etl"

# cohort_definition_id = 4, cohort_definition_id in (1, 2), cohort_id: 3, "cohort_id": 1, ...
PATTERN = re.compile(
    r"""(cohort_definition_id|cohort_id)["']?\s*(=|==|:|\bin\b)\s*\(?\s*\d""", re.IGNORECASE
)


def test_pattern_finds_the_forms_it_is_meant_to_find() -> None:
    for text in (
        "where cohort_definition_id = 1",
        "cohort_definition_id in (1, 4)",
        '{"cohort_id": 3}',
        "COHORT_DEFINITION_ID==2",
    ):
        assert PATTERN.search(text), text
    for text in ("cohort_definition_id = %s", "cohort_definition_name = 'cart_index'"):
        assert not PATTERN.search(text), text


def test_no_cohort_id_literal_in_python() -> None:
    hits = [
        f"{path.relative_to(SRC.parent)}:{n}: {line.strip()}"
        for path in sorted(SRC.rglob("*"))
        if path.suffix in (".py", ".sql", ".yaml", ".yml")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if PATTERN.search(line)
    ]
    assert not hits, "cohort id literals (name cohorts instead):\n" + "\n".join(hits)
