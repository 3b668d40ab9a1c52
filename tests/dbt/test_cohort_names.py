"""Marts and models name their cohorts (cohort_id('cart_index')); the one cohort list in
macros/cohort_definitions.sql is the only place a cohort's number appears."""

from __future__ import annotations

import re

from cohort_etl.dbt_runner import dbt_project_dir

#: a cohort id written as a number: compared, listed or cast next to cohort_definition_id
COHORT_ID_LITERAL = re.compile(
    r"cohort_definition_id\s*(=|<>|!=|<|>|\bin\s*\()\s*\d|\d\s*(=|<>|!=)\s*\w*\.?cohort_definition_id",
    re.IGNORECASE,
)


def test_the_pattern_finds_the_old_literals() -> None:
    assert COHORT_ID_LITERAL.search("where cohort_definition_id = 1")
    assert COHORT_ID_LITERAL.search("where c.cohort_definition_id in (1, 4)")
    assert COHORT_ID_LITERAL.search("on 4 = cohort.cohort_definition_id")
    assert not COHORT_ID_LITERAL.search(
        "where cohort_definition_id = {{ cohort_id('cart_index') }}"
    )


def test_no_cohort_id_literal_in_the_models() -> None:
    models = dbt_project_dir() / "models"
    analysis = sorted((models / "analysis").glob("*.sql"))
    assert len(analysis) >= 2
    found = [
        f"{path.relative_to(models)}:{number}: {line.strip()}"
        for path in sorted(models.rglob("*.sql"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if COHORT_ID_LITERAL.search(line)
    ]
    assert found == []
    reading_cohorts = [
        path
        for path in analysis
        if "ref('own_cohort')" in path.read_text() or "ref('cohort')" in path.read_text()
    ]
    assert len(reading_cohorts) >= 2
    for path in reading_cohorts:
        assert "cohort_id('" in path.read_text(), path.name
