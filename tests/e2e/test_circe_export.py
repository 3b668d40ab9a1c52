"""Issue 15: the Circe export of the study A index cohort, run through OHDSI Circe's own SQL
(ohdsi-circepy, translated to DuckDB by its SqlRender port) on the demo CDM, gives the
persons and start dates of the build's ``results.cohort`` rows; every exported file
validates with circepy's models."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from tests.e2e.conftest import DemoRun, run_cli

from cohort_etl.circe.sql import parse, run_duckdb

pytestmark = pytest.mark.slow


def test_cart_index_through_circe_gives_the_build_s_cohort(
    demo_run: DemoRun, tmp_path: Path
) -> None:
    out = tmp_path / "circe"
    proc = run_cli(
        ["cohorts", "export", "--format", "circe", "--out", str(out)],
        {"COHORT_ETL_DUCKDB": str(demo_run.duckdb_path)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    index = json.loads((out / "cohorts.json").read_text())
    for entry in index:
        parse(json.loads((out / entry["file"]).read_text()))  # circepy's pydantic models
        assert (out / entry["notes"]).read_text().startswith(f"# {entry['name']} ")
    con = duckdb.connect(str(demo_run.duckdb_path), read_only=True)
    try:
        catalog = con.execute("select current_database()").fetchall()[0][0]
        definitions = dict(
            con.execute(
                f'select cohort_definition_name, cohort_definition_id from "{catalog}".results.cohort_definition'
            ).fetchall()
        )
        # the export's ids and names are the build's
        assert {e["name"]: e["cohort_definition_id"] for e in index} == {
            name: definitions[name] for name in (e["name"] for e in index)
        }
        cart_index = definitions["cart_index"]
        ours = con.execute(
            f'select subject_id, cohort_start_date from "{catalog}".results.cohort '
            "where cohort_definition_id = ? order by 1",
            [cart_index],
        ).fetchall()
        expression = json.loads((out / "cart_index.json").read_text())
        theirs = run_duckdb(con, expression, f'"{catalog}".cdm', cohort_id=cart_index)
    finally:
        con.close()
    assert len(ours) > 100
    assert [(p, s) for p, s, _ in theirs] == [(int(p), s) for p, s in ours]
