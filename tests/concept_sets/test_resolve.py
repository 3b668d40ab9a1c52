"""Resolution with Circe semantics against the synthetic vocabulary, counts in a small CDM,
orphans, diff, and the CLI.

The oracle is the vocabulary module of the synthetic generator (``descendants()`` and
``maps_to()``, written separately from this package) plus the anomalies it documents on
purpose: a deprecated concept still listed under ALL in concept_ancestor, an invalid
'Maps to' from ICD-10-CM C95.00 to ALL.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.dbt.cdm_fixture import CdmBuilder

from cohort_etl.cli import run_cli
from cohort_etl.concept_sets import load_concept_sets
from cohort_etl.concept_sets.registry import ConceptSet, default_folder
from cohort_etl.concept_sets.resolve import Resolution, diff, resolve
from cohort_etl.concept_sets.validate import vocabulary_issues
from cohort_etl.config import NamedProfile
from cohort_etl.db import connected
from cohort_etl.synthetic import vocabulary as v

FIXTURES = Path(__file__).parent / "fixtures"


def circe_oracle(items: list[tuple[int, bool, bool, bool]]) -> set[int]:
    """(concept, excluded, descendants, mapped) -> resolved ids, from the vocabulary module."""
    index = v.concept_index()
    mapped_to = v.maps_to()

    def expand(concept: int, descendants: bool, mapped: bool) -> set[int]:
        base = {concept} if index[concept].invalid_reason is None else set()
        if descendants:
            base |= v.descendants(concept)
        if mapped:
            base |= {src for src, dst in mapped_to.items() if dst in base}
        return base

    included = set().union(*(expand(c, d, m) for c, x, d, m in items if not x))
    excluded = set().union(set(), *(expand(c, d, m) for c, x, d, m in items if x))
    return included - excluded


@pytest.fixture
def small_cdm(duckdb_profile: NamedProfile) -> NamedProfile:
    b = CdmBuilder()
    b.person(1).condition(1, "2018-01-10", v.B_ALL).condition(
        1, "2019-03-01", v.ALL_RELAPSE, v.ICD10CM_C91_02
    )
    b.person(2).condition(2, "2018-05-10", 0, v.ICD10CM_C91_00).condition(
        2, "2019-06-01", 0, v.ICD10CM_C91_02
    )
    b.person(3).condition(3, "2018-05-10", v.BURKITT_LEUKEMIA_DEPRECATED)
    b.condition(3, "2018-06-10", v.ACUTE_LEUKEMIA, v.ICD10CM_C95_00)
    b.person(4).condition(4, "2020-02-02", v.ALL_REFRACTORY).condition(
        4, "2020-03-02", v.ALL_REMISSION
    )
    with connected(duckdb_profile) as db:
        b.write(db)
    return duckdb_profile


def _resolve(profile: NamedProfile, sets: list[ConceptSet]) -> Resolution:
    with connected(profile) as db:
        return resolve(db, sets, "cdm")


def _ids(result: Resolution, name: str) -> set[int]:
    frame = result.concepts
    return set(frame.loc[frame["concept_set_name"] == name, "concept_id"])


def _single(path: Path, name: str) -> ConceptSet:
    from cohort_etl.commands.concept_sets import _single_set

    return _single_set(path, name)


def test_atlas_export_resolves_like_circe(small_cdm: NamedProfile) -> None:
    sample = _single(FIXTURES / "atlas_all_relapse_export.json", "sample")
    result = _resolve(small_cdm, [sample])
    expected = circe_oracle(
        [
            (v.ALL_RELAPSE, False, True, True),
            (v.ALL_REFRACTORY, False, True, False),
            (v.ALL_REMISSION, True, True, True),
        ]
    )
    assert _ids(result, "sample") == expected
    assert {v.ICD10CM_C91_02, v.ICD9CM_204_02} <= expected
    rows = result.concepts.set_index("concept_id")
    assert rows.loc[v.ICD10CM_C91_02, "match_column"] == "source"
    assert rows.loc[v.ALL_RELAPSE, "match_column"] == "standard"
    # person 1: standard 36712834 (and its source C91.02); person 2: source code only
    assert rows.loc[v.ALL_RELAPSE, "record_count"] == 1
    assert rows.loc[v.ICD10CM_C91_02, "record_count"] == 2
    assert rows.loc[v.ICD10CM_C91_02, "person_count"] == 2
    assert rows.loc[v.ALL_REFRACTORY, "person_count"] == 1
    assert result.persons["sample"] == [1, 2, 4]


def test_committed_all_set_follows_circe_validity_rules(small_cdm: NamedProfile) -> None:
    sets = load_concept_sets(names=["all_leukemia"])
    result = _resolve(small_cdm, sets)
    items = [
        (i.concept.CONCEPT_ID, i.isExcluded, i.includeDescendants, i.includeMapped)
        for i in sets[0].expression.items
    ]
    got = _ids(result, "all_leukemia")
    assert got == circe_oracle(items)
    assert v.BURKITT_LEUKEMIA_DEPRECATED not in got  # stale ancestor row, invalid concept
    assert v.ICD10CM_C95_00 not in got  # only an invalid 'Maps to' reaches ALL
    assert {v.ICD10CM_C91_00, v.ICD10CM_C91_01, v.ICD10CM_C91_02, v.ICD9CM_204_00} <= got
    assert result.persons["all_leukemia"] == [1, 2, 4]


def test_orphans_and_diff(small_cdm: NamedProfile, tmp_path: Path) -> None:
    sample = json.loads((FIXTURES / "atlas_all_relapse_export.json").read_text())
    old = dict(sample)
    old["items"] = [dict(sample["items"][0], includeMapped=False)]
    old_path, new_path = tmp_path / "old.json", tmp_path / "new.json"
    old_path.write_text(json.dumps(old))
    new_path.write_text(json.dumps({"items": [sample["items"][0]]}))
    result = _resolve(
        small_cdm, [_single(old_path, "old_version"), _single(new_path, "new_version")]
    )
    orphans = result.orphans[result.orphans["concept_set_name"] == "old_version"]
    assert list(orphans["source_concept_id"]) == [v.ICD10CM_C91_02]
    assert list(orphans["maps_to_concept_id"]) == [v.ALL_RELAPSE]
    assert list(orphans["person_count"]) == [2]
    assert result.orphans[result.orphans["concept_set_name"] == "new_version"].empty
    changes = diff(result, result, "old_version", "new_version")
    assert changes.concepts_gained == sorted([v.ICD10CM_C91_02, v.ICD9CM_204_02])
    assert changes.concepts_lost == []
    assert changes.persons_gained == [2]
    assert changes.persons_lost == []


def test_vocabulary_issues_name_absent_and_invalid_concepts(
    small_cdm: NamedProfile, tmp_path: Path
) -> None:
    folder = tmp_path / "sets"
    shutil.copytree(default_folder(), folder)
    data = json.loads((folder / "tki.json").read_text())
    data["items"].append({"concept": {"CONCEPT_ID": 999999999}, "isExcluded": False})
    data["items"].append({"concept": {"CONCEPT_ID": v.BURKITT_LEUKEMIA_DEPRECATED}})
    (folder / "tki.json").write_text(json.dumps(data))
    with connected(small_cdm) as db:
        issues = vocabulary_issues(db, load_concept_sets(folder), "cdm")
    messages = [str(i) for i in issues]
    n = len(data["items"])
    assert messages == [
        # the deprecated Burkitt concept is also a Condition concept in a Drug set
        f"warning: {folder / 'tki.json'}:$.items[{n - 1}].concept.CONCEPT_ID: concept {v.BURKITT_LEUKEMIA_DEPRECATED} is a Condition concept in a Drug concept set",
        f"warning: {folder / 'tki.json'}:$.items[{n - 2}].concept.CONCEPT_ID: concept 999999999 is not in the vocabulary (cdm.concept)",
        f"warning: {folder / 'tki.json'}:$.items[{n - 1}].concept.CONCEPT_ID: concept {v.BURKITT_LEUKEMIA_DEPRECATED} is invalid (D) in the vocabulary: Circe ignores it and its descendants are taken only if valid",
    ]


def _profiles_file(tmp_path: Path, profile: NamedProfile) -> Path:
    path = tmp_path / "profiles.yml"
    settings = profile.settings
    path.write_text(
        f"default: t\nprofiles:\n  t:\n    type: duckdb\n    path: {settings.path}\n"  # type: ignore[union-attr]
    )
    return path


def test_cli_validate_resolve_diff(
    small_cdm: NamedProfile,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COHORT_ETL_PROFILES", str(_profiles_file(tmp_path, small_cdm)))
    run_cli(["concept-sets", "validate"])
    out = capsys.readouterr().out
    assert f"ok: {len(load_concept_sets())} concept sets valid (0 warning(s))" in out
    run_cli(["concept-sets", "resolve", "--set", "all_in_relapse", "--json"])
    payload = json.loads(capsys.readouterr().out)
    relapse = {row["concept_id"]: row for row in payload["all_in_relapse"]["concepts"]}
    assert relapse[v.ICD10CM_C91_02]["person_count"] == 2
    assert payload["all_in_relapse"]["persons"] == 2
    sample = FIXTURES / "atlas_all_relapse_export.json"
    run_cli(["concept-sets", "diff", str(sample), str(sample), "--json"])
    assert json.loads(capsys.readouterr().out) == {
        "concepts_gained": [],
        "concepts_lost": [],
        "persons_gained": [],
        "persons_lost": [],
    }


def test_cli_validate_schema_error_exits_with_spec_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "sets"
    shutil.copytree(default_folder(), folder)
    (folder / "mrd.json").write_text('{"items": [{"concept": {}}]}')
    with pytest.raises(SystemExit) as info:
        run_cli(["concept-sets", "validate", "--offline", "--folder", str(folder)])
    assert info.value.code == 6
    captured = capsys.readouterr()
    assert (
        f"error: {folder / 'mrd.json'}:$.items[0].concept.CONCEPT_ID: Field required"
        in captured.out
    )
    assert "error: 1 concept set error(s); see above" in captured.err


def test_cli_resolve_on_empty_vocabulary_is_a_clear_error(
    duckdb_profile: NamedProfile,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with connected(duckdb_profile) as db:
        CdmBuilder().person(1).write(db, vocabulary=False)
    monkeypatch.setenv("COHORT_ETL_PROFILES", str(_profiles_file(tmp_path, duckdb_profile)))
    with pytest.raises(SystemExit) as info:
        run_cli(["concept-sets", "resolve"])
    assert info.value.code == 5
    assert "error: vocabulary table cdm.concept is empty" in capsys.readouterr().err
