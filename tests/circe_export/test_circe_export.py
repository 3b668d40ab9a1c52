"""The Circe export without a CDM: every cohort of the dbt cohort list becomes a Circe
expression that OHDSI circepy's pydantic models accept without dropping a field, its
inclusion rules are the attrition rules, and rules Circe cannot express say so."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from cohort_etl.circe.cohorts import project_cohort, project_cohorts
from cohort_etl.circe.export import build_cohorts, code_item_rows, resolved_items
from cohort_etl.circe.sql import parse
from cohort_etl.concept_sets.models import parse_expression
from cohort_etl.concept_sets.registry import REGISTRY_COLUMNS, default_folder, load_concept_sets
from cohort_etl.concept_sets.validate import schema_issues
from cohort_etl.dbt_runner import dbt_project_dir
from cohort_etl.errors import SpecError

#: ATLAS display-only fields circepy does not model, and the version range its JSON
#: loader drops (a string, not a model field)
IGNORED_KEYS = {"STANDARD_CONCEPT_CAPTION", "INVALID_REASON_CAPTION", "cdmVersionRange"}


def dropped_keys(ours: Any, theirs: Any, path: str = "$") -> list[str]:
    """Keys of ``ours`` (non-null) absent from circepy's dump ``theirs`` (names compared
    without case or underscores: circepy writes PascalCase, ATLAS some lower case)."""

    def norm(key: str) -> str:
        return key.replace("_", "").lower()

    out: list[str] = []
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            return [path]
        by_norm = {norm(k): v for k, v in theirs.items()}
        for key, value in ours.items():
            if value is None or key in IGNORED_KEYS:
                continue
            if norm(key) not in by_norm:
                out.append(f"{path}.{key}")
            else:
                out += dropped_keys(value, by_norm[norm(key)], f"{path}.{key}")
    elif isinstance(ours, list):
        if not isinstance(theirs, list) or len(ours) != len(theirs):
            return [path]
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            out += dropped_keys(a, b, f"{path}[{i}]")
    return out


def no_vocabulary(sql: str, params: Any) -> pd.DataFrame:
    return pd.DataFrame(
        columns=[
            "concept_id",
            "concept_name",
            "standard_concept",
            "domain_id",
            "vocabulary_id",
            "concept_class_id",
            "concept_code",
            "invalid_reason",
        ]
    )


@pytest.fixture(scope="module")
def exported() -> list[Any]:
    items = resolved_items(no_vocabulary, "concept", "?", load_concept_sets())
    return build_cohorts(items)


def test_the_cohort_list_is_the_dbt_macro_s() -> None:
    text = (dbt_project_dir() / "macros" / "cohort_definitions.sql").read_text()
    names = [c.name for c in project_cohorts()]
    assert len(names) >= 5 and len(set(names)) == len(names)
    for cohort in project_cohorts():
        assert f"'name': '{cohort.name}'" in text
        assert f"'number': {cohort.number}, 'name': '{cohort.name}'" in text
    with pytest.raises(SpecError, match="cart_index"):
        project_cohort("no_such_cohort")


def test_every_cohort_validates_with_circepy_and_keeps_every_field(exported: list) -> None:
    assert [c.name for c in exported] == [c.name for c in project_cohorts()]
    for circe in exported:
        parsed = parse(circe.expression)  # circepy's pydantic CohortExpression
        dumped = json.loads(parsed.model_dump_json(by_alias=True, exclude_none=True))
        assert dropped_keys(circe.expression, dumped) == [], circe.name
        assert len(parsed.concept_sets) == len(circe.expression["ConceptSets"])


def test_inclusion_rules_are_the_attrition_rules(exported: list) -> None:
    for circe, cohort in zip(exported, project_cohorts(), strict=True):
        names = [rule["name"] for rule in circe.expression["InclusionRules"]]
        # the first two rules are the entry event (primary + additional criteria)
        assert cohort.rules[:2] == ("all_diagnosis", "cart_after_all_diagnosis")
        assert names == list(cohort.rules[2:])
        assert circe.expression["QualifiedLimit"] == {"Type": "First"}
        assert circe.expression["CensoringCriteria"] == [{"Death": {}}]


def test_rules_circe_cannot_express_say_so(exported: list) -> None:
    by_name = {c.name: c for c in exported}
    for circe in exported:
        rules = {r["name"]: r for r in circe.expression["InclusionRules"]}
        assert "relapsed_refractory_before_cart" in circe.differences
        assert "lines of therapy" in circe.differences["relapsed_refractory_before_cart"]
        assert "end_strategy" in circe.differences
        for rule, note in circe.differences.items():
            if rule in rules:
                assert note in rules[rule]["description"]
        assert "not_t_all" not in circe.differences
    assert "HSCT placement" in by_name["hsct_plus"].differences["allo_hsct_consolidation"]
    assert "HSCT placement" in by_name["hsct_minus"].differences["no_allo_hsct_consolidation"]
    assert "relapse date" in by_name["relapse_after_cart"].differences["relapse_after_cart"]


def test_code_items_are_resolved_against_the_vocabulary() -> None:
    con = duckdb.connect(":memory:")
    con.execute(
        "create table concept as select 2000000123 as concept_id, 'CAR-T administration' "
        "as concept_name, null as standard_concept, 'Procedure' as domain_id, 'CPT4' as "
        "vocabulary_id, 'CPT4' as concept_class_id, '0540T' as concept_code, "
        "null as invalid_reason"
    )
    [cart] = load_concept_sets(names=["cart_administration"])
    codes = {(c.vocabulary_id, c.concept_code) for c in cart.code_items}
    assert ("CPT4", "0540T") in codes and len(codes) > 1
    rows = code_item_rows(lambda q, p: con.execute(q, list(p)).df(), "concept", "?", cart)
    # only the code the vocabulary has, with its id and the code item's flags
    assert [r["concept"]["CONCEPT_ID"] for r in rows] == [2000000123]
    item = next(c for c in cart.code_items if c.concept_code == "0540T")
    assert rows[0]["includeDescendants"] == item.include_descendants
    assert rows[0]["includeMapped"] == item.include_mapped


def _folder_with(tmp_path: Path, name: str, document: dict) -> Path:
    folder = tmp_path / "concept_sets"
    folder.mkdir()
    (folder / f"{name}.json").write_text(json.dumps(document))
    with (folder / "registry.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=REGISTRY_COLUMNS)
        writer.writeheader()
        writer.writerow(
            {
                "id": "CS900",
                "name": name,
                "file": f"{name}.json",
                "status": "draft",
                "description": "dropped in",
                "owner": "test",
                "created": "2026-11-30",
                "modified": "2026-11-30",
                "replaces": "",
            }
        )
    return folder


def test_a_cohort_definition_in_concept_sets_is_named_as_such(
    tmp_path: Path, exported: list
) -> None:
    cohort = exported[0].expression
    folder = _folder_with(tmp_path, "atlas_cohort", cohort)
    issues = schema_issues(folder)
    assert len(issues) == 1
    message = str(issues[0])
    assert "Circe cohort definition" in message and "Field required" not in message
    assert "concept_sets/ holds one concept set per file" in message
    assert f"{len(cohort['ConceptSets'])} concept set(s)" in message
    with pytest.raises(SpecError, match="Circe cohort definition"):
        parse_expression(cohort, "atlas_cohort.json")
    # a WebAPI cohort export wraps the expression
    with pytest.raises(SpecError, match="Circe cohort definition"):
        parse_expression({"id": 1, "name": "x", "expression": cohort}, "wrapped.json")
    # a real concept set still loads, and one without items still says so
    assert parse_expression(json.loads((default_folder() / "t_all.json").read_text()))
    with pytest.raises(SpecError, match=r"\$\.items"):
        parse_expression({"name": "no items"}, "bad.json")
