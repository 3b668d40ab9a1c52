"""``concept-sets export --resolved``: code items written back as concept items with the
site's ids, so the exported file alone resolves (Circe semantics) to what the build uses.

Oracles: the synthetic vocabulary module (the concept row of each code, written
separately from this package) and the resolution of the registered set with its code
items; the exported file is resolved without any code item."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.concept_sets.test_resolve import _profiles_file, small_cdm  # noqa: F401 (fixture)

from cohort_etl.cli import run_cli
from cohort_etl.concept_sets.models import load_expression
from cohort_etl.concept_sets.registry import ConceptSet, default_folder, load_concept_sets
from cohort_etl.concept_sets.resolve import resolve
from cohort_etl.config import NamedProfile
from cohort_etl.db import connected
from cohort_etl.synthetic import vocabulary as v


def _by_code() -> dict[tuple[str, str], v.ConceptRow]:
    return {(r.vocabulary_id, r.concept_code): r for r in v.concepts()}


def test_resolved_export_carries_the_code_items(
    small_cdm: NamedProfile,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COHORT_ETL_PROFILES", str(_profiles_file(tmp_path, small_cdm)))
    folder = tmp_path / "sets"
    shutil.copytree(default_folder(), folder)
    # one code this vocabulary does not have: left out, and said so
    with (folder / "code_items.csv").open("a") as handle:
        handle.write("bone_marrow_assessment,CPT4,99999X,false,false,false,not in any vocabulary\n")
    out = tmp_path / "export"
    run_cli(["concept-sets", "export", "--resolved", "--folder", str(folder), "--out", str(out)])
    printed = capsys.readouterr().out
    sets = load_concept_sets(folder)
    assert f"ok: {len(sets)} concept set(s) written" in printed
    vocabulary = _by_code()
    for name in ("bone_marrow_assessment", "extramedullary_involvement"):
        committed = next(s for s in sets if s.name == name)
        assert committed.expression.items == [], "committed JSON stays empty for ATLAS"
        document = json.loads((out / f"{name}.json").read_text())
        assert document["name"] == name
        items = document["expression"]["items"]
        found = [c for c in committed.code_items if (c.vocabulary_id, c.concept_code) in vocabulary]
        assert found and len(items) == len(found)
        for item, code in zip(items, found, strict=True):
            row = vocabulary[(code.vocabulary_id, code.concept_code)]
            concept = item["concept"]
            assert concept["CONCEPT_ID"] == row.concept_id
            assert (concept["VOCABULARY_ID"], concept["CONCEPT_CODE"]) == (
                code.vocabulary_id,
                code.concept_code,
            )
            assert concept["DOMAIN_ID"] == row.domain_id
            assert concept["CONCEPT_NAME"] == row.concept_name
            assert (item["includeDescendants"], item["includeMapped"]) == (
                code.include_descendants,
                code.include_mapped,
            )
            assert (
                f"{code.vocabulary_id} {code.concept_code} -> {row.concept_id}"
                in (document["description"])
            )
    bm = json.loads((out / "bone_marrow_assessment.json").read_text())
    assert "not in this vocabulary and left out: CPT4 99999X" in bm["description"]
    assert "not in the vocabulary: CPT4 99999X" in printed

    # every exported file, read alone as an ATLAS file (no code items), resolves to the
    # concepts the build resolves for the registered set with its code items
    exported = [
        ConceptSet(entry=s.entry, path=out / f"{s.name}.json",
                   expression=load_expression(out / f"{s.name}.json"))
        for s in sets
    ]  # fmt: skip
    with connected(small_cdm) as db:
        built = resolve(db, sets, "cdm").concepts
        alone = resolve(db, exported, "cdm").concepts
    for s in sets:
        a = set(built.loc[built["concept_set_name"] == s.name, "concept_id"])
        b = set(alone.loc[alone["concept_set_name"] == s.name, "concept_id"])
        assert a == b, s.name
    with_codes = [s.name for s in sets if s.code_items]
    assert len(with_codes) >= 3


def test_plain_export_writes_the_committed_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export"
    run_cli(["concept-sets", "export", "--set", "tki", "--set", "bone_marrow_assessment",
             "--out", str(out)])  # fmt: skip
    assert "ok: 2 concept set(s) written" in capsys.readouterr().out
    (tki,) = load_concept_sets(names=["tki"])
    assert load_expression(out / "tki.json") == tki.expression
    bm = json.loads((out / "bone_marrow_assessment.json").read_text())
    assert bm["expression"]["items"] == []
    assert "code item(s) of code_items.csv are not included" in bm["description"]
