"""An ATLAS concept set export dropped into concept_sets/ gets a draft registry row on
``concept-sets validate`` (or ``concept-sets add FILE``): printed, marked draft, the rows
above kept byte for byte, and a rerun changes nothing. Always on a copy of the folder."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from tests.synthetic.test_cli_and_loader import cli as _cli

from cohort_etl.concept_sets.registry import default_folder, load_concept_sets, load_registry

FIXTURES = Path(__file__).parent / "fixtures"
TKI_EXPORT = FIXTURES / "atlas_tki_export.json"


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "sets"
    shutil.copytree(default_folder(), folder)
    return folder


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "registry.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_validate_registers_a_dropped_export_as_draft_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    before = (folder / "registry.csv").read_text()
    shutil.copy(TKI_EXPORT, folder / "tki_export.json")
    export = json.loads(TKI_EXPORT.read_text())

    code, out, err = _cli(
        ["concept-sets", "validate", "--offline", "--folder", str(folder)], capsys
    )
    assert code == 0, err
    after = (folder / "registry.csv").read_text()
    assert after.startswith(before), "the reviewed rows are kept byte for byte"
    new = _rows(folder)[-1]
    # the name is the export's name as an identifier, the domain the items' DOMAIN_ID
    domains = {i["concept"]["DOMAIN_ID"] for i in export["expression"]["items"]}
    assert new["name"] == "all_bcr_abl1_tki_atlas_export" and export["name"].startswith("[ALL]")
    assert new["file"] == "tki_export.json" and new["status"] == "draft"
    assert domains == {new["domain"]}
    assert "DRAFT, not reviewed" in new["description"] and export["name"] in new["description"]
    numbers = [int(r["id"][2:]) for r in _rows(folder)[:-1] if r["id"].startswith("CS")]
    assert new["id"] == f"CS{max(numbers) + 1:03d}"
    assert f"added draft registry row: {new['id']},{new['name']},tki_export.json" in out
    assert "1 draft registry row(s) added to registry.csv" in out
    assert "draft set(s) not yet reviewed" in out and new["name"] in out
    # the set loads like any other, with the export's items
    (loaded,) = load_concept_sets(folder, [new["name"]])
    assert [i.concept.CONCEPT_ID for i in loaded.expression.items] == [
        i["concept"]["CONCEPT_ID"] for i in export["expression"]["items"]
    ]

    code, out, _ = _cli(["concept-sets", "validate", "--offline", "--folder", str(folder)], capsys)
    assert code == 0 and "added draft" not in out
    assert (folder / "registry.csv").read_text() == after, "a rerun adds nothing"


def test_add_copies_a_file_into_the_folder_and_is_idempotent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    outside = tmp_path / "downloads"
    outside.mkdir()
    plain = outside / "Prior-TKI.json"  # the bare expression: named after the file
    plain.write_text(json.dumps(json.loads(TKI_EXPORT.read_text())["expression"]))
    code, out, err = _cli(["concept-sets", "add", "--folder", str(folder), str(plain)], capsys)
    assert code == 0, err
    assert (folder / "Prior-TKI.json").read_bytes() == plain.read_bytes()
    assert "added draft registry row" in out
    entry = next(e for e in load_registry(folder) if e.file == "Prior-TKI.json")
    assert (entry.name, entry.status, entry.domain) == ("prior_tki", "draft", "Drug")
    text = (folder / "registry.csv").read_text()
    code, out, _ = _cli(["concept-sets", "add", "--folder", str(folder), str(plain)], capsys)
    assert code == 0 and "already registered: " in out
    assert (folder / "registry.csv").read_text() == text
    # a browser download's name is copied under a plain name; dropped in as is, refused
    spaced = outside / "TKI export (1).json"
    spaced.write_text(TKI_EXPORT.read_text())
    code, out, err = _cli(["concept-sets", "add", "--folder", str(folder), str(spaced)], capsys)
    assert code == 0, err
    assert f"copied {spaced} to {folder / 'tki_export_1.json'}" in out
    shutil.copy(spaced, folder / spaced.name)
    code, out, _ = _cli(["concept-sets", "validate", "--offline", "--folder", str(folder)], capsys)
    assert code == 6 and "rename it (e.g. tki_export_1.json)" in out


def test_what_cannot_be_registered_is_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    registry = (folder / "registry.csv").read_text()
    cases = {
        "empty.json": ('{"items": []}', "has no items"),
        "cohort.json": ('{"PrimaryCriteria": {}}', "not an ATLAS concept set expression"),
        "tki.json.bak.json": (
            json.dumps({"name": "tki", "expression": {"items": []}}),
            "has no items",
        ),
    }
    for name, (text, reason) in cases.items():
        path = folder / name
        path.write_text(text)
        code, out, err = _cli(
            ["concept-sets", "validate", "--offline", "--folder", str(folder)], capsys
        )
        assert code == 6 and reason in out and name in out, (name, out, err)
        path.unlink()
    # a name a registered set already uses
    clash = json.loads(TKI_EXPORT.read_text())
    clash["name"] = "TKI"
    (folder / "again.json").write_text(json.dumps(clash))
    code, out, _ = _cli(["concept-sets", "validate", "--offline", "--folder", str(folder)], capsys)
    assert code == 6 and "concept set name 'tki' is already used by tki.json" in out
    (folder / "again.json").unlink()
    # --no-register keeps the old behaviour: an unregistered file is an error
    shutil.copy(TKI_EXPORT, folder / "new.json")
    code, out, err = _cli(
        ["concept-sets", "validate", "--offline", "--no-register", "--folder", str(folder)],
        capsys,
    )
    assert code == 6 and "concept set file(s) not registered: new.json" in out + err
    assert (folder / "registry.csv").read_text() == registry
    # add refuses a file that is not a concept set and leaves no copy behind
    bad = tmp_path / "bad.json"
    bad.write_text('{"items": []}')
    code, _, err = _cli(["concept-sets", "add", "--folder", str(folder), str(bad)], capsys)
    assert code == 6 and "has no items" in err and not (folder / "bad.json").exists()


def test_a_hostile_export_name_stays_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    export = json.loads(TKI_EXPORT.read_text())
    export["name"] = "x',\n\"; drop table cdm.person; --\x00 TKI"
    (folder / "hostile.json").write_text(json.dumps(export))
    code, _, err = _cli(["concept-sets", "validate", "--offline", "--folder", str(folder)], capsys)
    assert code == 0, err
    entry = next(e for e in load_registry(folder) if e.file == "hostile.json")
    assert entry.name == "x_drop_table_cdm_person_tki"
    assert "\n" not in entry.description and "\x00" not in entry.description
    assert (folder / "registry.csv").read_text().count("\n") == len(_rows(folder)) + 1
