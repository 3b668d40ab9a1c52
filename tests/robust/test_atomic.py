"""replaced_folder: a folder replaced as a whole, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohort_etl.atomic import moved, replaced_folder


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_new_content_replaces_the_old_entirely(tmp_path: Path) -> None:
    final = tmp_path / "study"
    with replaced_folder(final) as tmp:
        (tmp / "results.json").write_text("1")
        (tmp / "tables").mkdir()
        (tmp / "tables" / "table1_balance.csv").write_text("old")
    with replaced_folder(final) as tmp:
        (tmp / "results.json").write_text("2")
        paths = moved({"results": tmp / "results.json"}, tmp, final)
    assert files(final) == ["results.json"]
    assert paths["results"].read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"]


def test_a_failure_keeps_the_old_folder_and_leaves_no_temporary(tmp_path: Path) -> None:
    final = tmp_path / "study"
    with replaced_folder(final) as tmp:
        (tmp / "results.json").write_text("1")
    with pytest.raises(RuntimeError), replaced_folder(final) as tmp:
        (tmp / "results.json").write_text("half")
        raise RuntimeError("killed mid-write")
    assert (final / "results.json").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"]


def test_leftovers_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    final = tmp_path / "study"
    (tmp_path / ".study.new-abc").mkdir()
    (tmp_path / ".study.new-abc" / "results.json").write_text("half")
    (tmp_path / ".study.old-123").mkdir()
    with replaced_folder(final) as tmp:
        (tmp / "results.json").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"]
