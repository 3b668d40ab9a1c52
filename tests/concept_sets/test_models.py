"""Circe models: round trips, preserved extras, schema errors with file and JSON path,
the registry and the compiled seed."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from cohort_etl.concept_sets import (
    compile_seed,
    dump_expression,
    load_concept_sets,
    load_expression,
    parse_expression,
)
from cohort_etl.concept_sets.registry import default_folder
from cohort_etl.concept_sets.validate import schema_issues
from cohort_etl.errors import SpecError

FIXTURES = Path(__file__).parent / "fixtures"
COMMITTED = sorted(default_folder().glob("*.json"))


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_committed_sets_round_trip(path: Path) -> None:
    original = json.loads(path.read_text())
    if "items" not in original:  # the WebAPI form {"name", "description", "expression"}
        assert set(original) == {"name", "description", "expression"}
        assert original["name"] == path.stem
        original = original["expression"]
    expression = load_expression(path)
    dumped = dump_expression(expression)
    assert dumped == original
    assert parse_expression(json.loads(json.dumps(dumped))) == expression


def test_atlas_export_fixture_validates_and_round_trips() -> None:
    path = FIXTURES / "atlas_all_relapse_export.json"
    expression = load_expression(path)
    assert expression.concept_ids() == [36712834, 36712835, 141816]
    assert [i.isExcluded for i in expression.items] == [False, False, True]
    assert expression.items[0].concept.CONCEPT_CODE == "12301000132103"
    assert dump_expression(expression) == json.loads(path.read_text())


def test_unknown_keys_are_preserved_and_absent_keys_stay_absent() -> None:
    data = {
        "items": [
            {
                "concept": {"CONCEPT_ID": 134305, "VALID_START_DATE": "19700101"},
                "isExcluded": False,
                "includeDescendants": True,
                "annotation": {"by": "site A"},
            }
        ],
        "conceptSetVersion": 3,
    }
    dumped = dump_expression(parse_expression(data))
    assert dumped == data
    assert "includeMapped" not in dumped["items"][0]


def test_webapi_wrapped_export_is_accepted() -> None:
    inner = json.loads((FIXTURES / "atlas_all_relapse_export.json").read_text())
    wrapped = {"id": 17, "name": "ALL relapse", "expression": inner}
    assert parse_expression(wrapped) == parse_expression(inner)


def test_schema_error_names_file_and_json_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"items": [{"concept": {"CONCEPT_ID": 1}}, {"concept": {"CONCEPT_ID": "x"}}]})
    )
    with pytest.raises(SpecError) as info:
        load_expression(bad)
    assert str(bad) in str(info.value)
    assert "$.items[1].concept.CONCEPT_ID" in str(info.value)


def test_not_json_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"items": [\n  {"concept": }\n]}')
    with pytest.raises(SpecError, match=r"broken\.json: not valid JSON \(line 2\)"):
        load_expression(bad)


def _copy_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "concept_sets"
    shutil.copytree(default_folder(), folder)
    return folder


def test_schema_issues_lists_every_error_with_paths(tmp_path: Path) -> None:
    folder = _copy_folder(tmp_path)
    (folder / "tki.json").write_text(
        json.dumps({"items": [{"concept": {"CONCEPT_ID": -1}, "isExcluded": "no"}]})
    )
    issues = schema_issues(folder)
    where = sorted(i.location for i in issues)
    assert where == [
        f"{folder / 'tki.json'}:$.items[0].concept.CONCEPT_ID",
        f"{folder / 'tki.json'}:$.items[0].isExcluded",
    ]
    assert all(i.level == "error" for i in issues)
    assert schema_issues(default_folder()) == []


def test_registry_catches_unregistered_file_and_bad_row(tmp_path: Path) -> None:
    folder = _copy_folder(tmp_path)
    (folder / "stray.json").write_text('{"items": []}')
    with pytest.raises(SpecError, match="not registered: stray.json"):
        load_concept_sets(folder)
    (folder / "stray.json").unlink()
    text = (folder / "registry.csv").read_text().replace(",accepted,", ",approved,", 1)
    (folder / "registry.csv").write_text(text)
    with pytest.raises(
        SpecError, match=r"registry.csv: line 2: column status: .*draft, accepted, deprecated"
    ):
        load_concept_sets(folder)


def test_unknown_set_name_is_reported() -> None:
    with pytest.raises(SpecError, match="unknown concept set nope"):
        load_concept_sets(names=["nope"])


def test_compiled_seed_has_one_row_per_item_and_is_deterministic(tmp_path: Path) -> None:
    sets = load_concept_sets()
    out = compile_seed(sets, tmp_path)
    first = out.read_bytes()
    assert compile_seed(sets, tmp_path).read_bytes() == first
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    by_id = [r for r in rows if r["concept_id"]]
    by_code = [r for r in rows if not r["concept_id"]]
    n_items = len(
        {
            (s.name, i.concept.CONCEPT_ID, i.isExcluded, i.includeDescendants, i.includeMapped)
            for s in sets
            for i in s.expression.items
        }
    )
    assert len(by_id) == n_items
    assert len(by_code) == sum(len(s.code_items) for s in sets)
    assert all(r["vocabulary_id"] and r["concept_code"] for r in by_code)
    b_all = [r for r in rows if r["concept_set_name"] == "b_all" and r["concept_id"] == "4082462"]
    assert b_all == [
        {
            "concept_set_name": "b_all",
            "concept_id": "4082462",
            "vocabulary_id": "",
            "concept_code": "",
            "is_excluded": "true",
            "include_descendants": "true",
            "include_mapped": "true",
        }
    ]
