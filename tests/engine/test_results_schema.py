"""results.json: one versioned schema, published as docs/results.schema.json, followed by
every results.json the project writes (a study, a study that failed, the file door)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.engine.schema import SCHEMA_PATH, assert_valid, schema_errors
from tests.stats.test_matching_analyze import SPEC, _dataset, _write
from tests.studies.test_engine_inputs import cohort, spec

from cohort_etl.cli import main
from cohort_etl.engine import SCHEMA_VERSION, Study, StudyResults
from cohort_etl.engine.results import results_json_schema
from cohort_etl.errors import InputDataError
from cohort_etl.report.study import write_failure, write_outputs


def test_published_schema_is_the_one_the_models_define() -> None:
    published = json.loads(SCHEMA_PATH.read_text())
    assert published == results_json_schema(), (
        "docs/results.schema.json is out of date: .venv/bin/python -c 'from cohort_etl.engine."
        'results import write_json_schema as w; w("docs/results.schema.json")\''
    )
    assert published["properties"]["schema_version"]["const"] == SCHEMA_VERSION == 2


def test_study_and_failure_results_follow_the_schema(tmp_path: Path) -> None:
    s = spec(
        sensitivity=[
            {"kind": "unmatched", "outcome": "os"},
            {"kind": "landmark", "outcome": "os", "landmark_day": 90, "exposure_date": "hsct_date"},
        ]
    )
    paths = write_outputs(s, Study(s).run(cohort()), tmp_path / "study", {})
    saved = assert_valid(paths["results"])
    assert saved["schema_version"] == 2 and saved["outcomes"]["os"]["cox"]["estimable"]
    write_failure(s, "mart toy_mart does not exist", tmp_path / "failed", {})
    failed = assert_valid(tmp_path / "failed" / "results.json")
    assert failed["error"] == "mart toy_mart does not exist"


def test_file_door_results_follow_the_schema(tmp_path: Path) -> None:
    spec_path, data_path = _write(tmp_path, SPEC, _dataset(400))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["analyze", "--data", str(data_path), "--spec", str(spec_path), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    saved = assert_valid(out / "results.json")
    assert saved["provenance"]["door"] == "analyze" and len(saved["provenance"]["sha256"]) == 64


def test_schema_rejects_what_it_should(tmp_path: Path) -> None:
    paths = write_outputs(spec(), Study(spec()).run(cohort()), tmp_path, {})
    good = json.loads(paths["results"].read_text())
    assert not schema_errors(good)
    wrong_type = json.loads(json.dumps(good))
    wrong_type["outcomes"]["os"]["cox"]["hr"] = "1.2"
    unknown_key = {**good, "cox_robust_pairs": {}}
    old_version = {**good, "schema_version": 1}
    for bad in (wrong_type, unknown_key, old_version):
        assert schema_errors(bad)
    (tmp_path / "old.json").write_text(json.dumps(old_version))
    with pytest.raises(InputDataError, match="schema_version 1; this cohort-etl reads version 2"):
        StudyResults.read(tmp_path / "old.json")
    assert StudyResults.read(paths["results"]).outcomes["os"].type == "time_to_event"
