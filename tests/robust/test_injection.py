"""SQL injection through every input file and option, on DuckDB and PostgreSQL.

Each hostile string goes in through one input (concept-set JSON, code_items.csv,
registry.csv, a study spec, profiles.yml, a command-line option, a CSV value to load);
the command must either refuse it with one line naming the file and line (or option), or
treat it as plain data. Before and after, every table of the database is checksummed:
nothing may change, and no table may appear (the issue's cases dropped cdm.person on
DuckDB and kept a created table on PostgreSQL through "...; commit; --").

The layer below validation is tested too: a code item that skipped validation (built
with ``model_construct``) reaches the vocabulary query as a bound value.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from tests.dbt.conftest import cdm_checksums

from cohort_etl.cli import run_cli
from cohort_etl.concept_sets.registry import CodeItem, default_folder, load_concept_sets
from cohort_etl.concept_sets.resolve import resolve
from cohort_etl.concept_sets.validate import vocabulary_issues
from cohort_etl.config import NamedProfile
from cohort_etl.db import Database, connected
from cohort_etl.synthetic.generator import generate
from cohort_etl.synthetic.params import SynthParams

ROOT = Path(__file__).resolve().parents[2]

#: hostile strings: quote-breaking, statement-stacking, transaction-ending, identifier-breaking
INJECTIONS = (
    "x'; drop view cdm.person; --",
    "x'); drop table cdm.person; --",
    "1; commit; create table cdm.pwned (i int); --",
    'x"; drop schema cdm cascade; --',
    "x' or '1'='1",
)
SMALL = SynthParams(seed=5, persons=300, n_core=15)
#: every string on DuckDB; on PostgreSQL the quote-breaking and the transaction-ending one
CASES = [pytest.param("duckdb", i, id=f"duckdb-{n}") for n, i in enumerate(INJECTIONS)] + [
    pytest.param("postgres", INJECTIONS[n], id=f"postgres-{n}", marks=pytest.mark.postgres)
    for n in (0, 2)
]


def snapshot(db: Database) -> dict[str, object]:
    """Every schema's tables with row counts and content hashes."""
    schemas = db.query_df(
        "select distinct table_schema from information_schema.tables "
        "where table_schema not in ('information_schema', 'pg_catalog') order by 1"
    )["table_schema"]
    return {str(s): cdm_checksums(db, str(s)) for s in schemas}


@pytest.fixture(scope="module")
def duck_cdm(tmp_path_factory: pytest.TempPathFactory) -> NamedProfile:
    from tests.conftest import duckdb_profile_at

    profile = duckdb_profile_at(tmp_path_factory.mktemp("inject") / "omop.duckdb", "inject")
    generate(SMALL, profile)
    return profile


@pytest.fixture(scope="module")
def pg_cdm(pg_database: str) -> NamedProfile:
    from cohort_etl.config import PostgresProfile

    profile = NamedProfile(
        name="inject-pg",
        settings=PostgresProfile(
            type="postgres", url=pg_database, cdm_schema="inject_cdm", truth_schema="inject_truth"
        ),
    )
    generate(SMALL, profile, replace=True)
    return profile


@pytest.fixture
def cdm(request: pytest.FixtureRequest) -> NamedProfile:
    return request.getfixturevalue("duck_cdm" if request.param == "duckdb" else "pg_cdm")


@pytest.fixture
def cli_env(cdm: NamedProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """profiles.yml naming the CDM as profile ``t``; returns the tmp folder."""
    s = cdm.settings
    body = (
        f"    type: duckdb\n    path: {s.path}\n"  # type: ignore[union-attr]
        if s.type == "duckdb"
        else f"    type: postgres\n    url: {s.url}\n"  # type: ignore[union-attr]
    )
    body += f"    cdm_schema: {s.cdm_schema}\n    truth_schema: {s.truth_schema}\n"
    (tmp_path / "profiles.yml").write_text(f"default: t\nprofiles:\n  t:\n{body}")
    monkeypatch.setenv("COHORT_ETL_PROFILES", str(tmp_path / "profiles.yml"))
    monkeypatch.delenv("COHORT_ETL_PROFILE", raising=False)
    return tmp_path


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        run_cli(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def sets_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "concept_sets"
    shutil.copytree(default_folder(), folder)
    return folder


def _rewrite_csv(path: Path, row: int, column: str, value: str) -> int:
    """Set ``column`` of data row ``row`` (0-based) to ``value``; returns its file line."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
        names = list(rows[0])
    rows[row][column] = value
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return row + 2


CSV_CASES = [
    ("code_items.csv", "concept_code"),
    ("code_items.csv", "vocabulary_id"),
    ("code_items.csv", "concept_set_name"),
    ("registry.csv", "name"),
    ("registry.csv", "file"),
]


@pytest.mark.parametrize(("cdm", "injection"), CASES, indirect=["cdm"])
@pytest.mark.parametrize(("file", "column"), CSV_CASES)
def test_concept_set_csv_files(
    cdm: NamedProfile, cli_env: Path, capsys, file: str, column: str, injection: str
) -> None:
    folder = sets_folder(cli_env)
    line = _rewrite_csv(folder / file, 0, column, injection)
    with connected(cdm) as db:
        before = snapshot(db)
    for argv in (["concept-sets", "validate"], ["concept-sets", "resolve"]):
        code, out = cli([*argv, "--folder", str(folder)], capsys)
        assert code == 6, out
        assert "Traceback" not in out
        assert f"{folder / file}: line {line}: column {column}" in out, out
    with connected(cdm) as db:
        assert snapshot(db) == before


@pytest.mark.parametrize(("cdm", "injection"), CASES, indirect=["cdm"])
def test_concept_set_json(cdm: NamedProfile, cli_env: Path, capsys, injection: str) -> None:
    folder = sets_folder(cli_env)
    path = folder / "tki.json"
    data = json.loads(path.read_text())
    data["items"][0]["concept"]["CONCEPT_ID"] = injection
    path.write_text(json.dumps(data, indent=2))
    with connected(cdm) as db:
        before = snapshot(db)
    code, out = cli(["concept-sets", "validate", "--folder", str(folder)], capsys)
    assert code == 6 and "Traceback" not in out
    assert f"{path}:$.items[0].concept.CONCEPT_ID" in out
    # free text fields are data: the name is never SQL, validation passes
    data["items"][0]["concept"]["CONCEPT_ID"] = 43012292
    data["items"][0]["concept"]["CONCEPT_NAME"] = injection
    path.write_text(json.dumps(data, indent=2))
    code, out = cli(["concept-sets", "validate", "--folder", str(folder)], capsys)
    assert code == 0, out
    with connected(cdm) as db:
        assert snapshot(db) == before


@pytest.mark.parametrize(("cdm", "injection"), CASES, indirect=["cdm"])
def test_values_below_validation_are_bound(cdm: NamedProfile, injection: str) -> None:
    """A code item that skipped validation reaches the SQL as a value, not as SQL."""
    sets = load_concept_sets()
    target = next(s for s in sets if s.code_items)
    hostile = CodeItem.model_construct(
        concept_set_name=target.name,
        vocabulary_id=injection,
        concept_code=injection,
        is_excluded=False,
        include_descendants=True,
        include_mapped=True,
        note="",
    )
    patched = [
        type(s)(entry=s.entry, path=s.path, expression=s.expression, code_items=(hostile,))
        if s is target
        else s
        for s in sets
    ]
    with connected(cdm) as db:
        before = snapshot(db)
        issues = vocabulary_issues(db, patched, cdm.settings.cdm_schema)
        hostile_set = [s for s in patched if s.name == target.name]
        resolved = resolve(db, hostile_set, cdm.settings.cdm_schema)
        after = snapshot(db)
    assert after == before
    assert f"{injection} {injection} is not in the vocabulary" in [i.message for i in issues]
    assert injection not in set(resolved.concepts["concept_code"].astype(str))


STUDY_FIELDS = [("name", 1), ("mart", 4)]


@pytest.mark.parametrize(("cdm", "injection"), CASES, indirect=["cdm"])
@pytest.mark.parametrize(("field", "_"), STUDY_FIELDS)
def test_study_spec_fields(
    cdm: NamedProfile, cli_env: Path, capsys, field: str, _: int, injection: str
) -> None:
    specs = cli_env / "studies"
    specs.mkdir()
    source = (ROOT / "studies" / "hsct_after_cart.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if text.startswith(f"{field}:"))
    source[line - 1] = f"{field}: {json.dumps(injection)}"
    (specs / "hsct_after_cart.yaml").write_text("\n".join(source) + "\n")
    with connected(cdm) as db:
        before = snapshot(db)
    code, out = cli(["run", "--skip-build", "--no-demo", "--specs", str(specs)], capsys)
    assert code == 6 and "Traceback" not in out
    assert f"{specs / 'hsct_after_cart.yaml'}: line {line}: {field}:" in out, out
    with connected(cdm) as db:
        assert snapshot(db) == before


@pytest.mark.parametrize(("cdm", "injection"), CASES, indirect=["cdm"])
@pytest.mark.parametrize("field", ["cdm_schema", "results_schema", "truth_schema"])
def test_profile_fields(
    cdm: NamedProfile, cli_env: Path, capsys, field: str, injection: str
) -> None:
    profiles = cli_env / "profiles.yml"
    text = profiles.read_text() + f"    {field}: {json.dumps(injection)}\n"
    profiles.write_text(text)
    line = len(text.splitlines())
    with connected(cdm) as db:
        before = snapshot(db)
    for argv in (["check"], ["build"], ["concept-sets", "resolve"], ["synth", "--replace"]):
        code, out = cli(argv, capsys)
        assert code == 2 and "Traceback" not in out, out
        assert f"{profiles}: line {line}: profiles.t.{field}:" in out, out
    with connected(cdm) as db:
        assert snapshot(db) == before


@pytest.mark.parametrize(("cdm", "injection"), CASES, indirect=["cdm"])
def test_command_line_options(cdm: NamedProfile, cli_env: Path, capsys, injection: str) -> None:
    with connected(cdm) as db:
        before = snapshot(db)
    cases = [
        (["concept-sets", "resolve", "--set", injection], 6, "unknown concept set"),
        (["run", "--skip-build", "--no-demo", "--study", injection], 6, "unknown study"),
        (["--quiet", "check", "--profile", injection], 2, "unknown profile"),
        (
            [
                "export",
                "--study-dir",
                str(cli_env),
                "--site-id",
                injection,
                "--key",
                str(cli_env / "k.json"),
                "--network",
                str(cli_env / "n.json"),
                "--out",
                str(cli_env / "p"),
            ],
            2,
            "--site-id",
        ),
        (["network", "keygen", "--site-id", injection, "--out-dir", str(cli_env)], 2, "--site-id"),
    ]
    for argv, expected, fragment in cases:
        code, out = cli(argv, capsys)
        assert code == expected, (argv, out)
        assert fragment in out and "Traceback" not in out, (argv, out)
    with connected(cdm) as db:
        assert snapshot(db) == before


@pytest.mark.parametrize(("cdm", "injection"), CASES, indirect=["cdm"])
def test_loaded_csv_values_are_data(cdm: NamedProfile, tmp_path: Path, injection: str) -> None:
    """A hostile value in a CDM CSV file is loaded verbatim into its own target; the source
    CDM is untouched."""
    from cohort_etl.config import DuckDBProfile, PostgresProfile
    from cohort_etl.loader import load_csv_folder

    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "person.csv").write_text(
        "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id,"
        "person_source_value\n"
        f"1,8532,1980,0,0,{json.dumps(injection)}\n".replace('\\"', '""')
    )
    (folder / "observation_period.csv").write_text(
        "observation_period_id,person_id,observation_period_start_date,"
        "observation_period_end_date,period_type_concept_id\n1,1,2020-01-01,2021-01-01,32817\n"
    )
    settings = cdm.settings
    if isinstance(settings, DuckDBProfile):
        target = NamedProfile(
            name="load",
            settings=DuckDBProfile(
                type="duckdb", path=tmp_path / "loaded.duckdb", cdm_schema="loaded"
            ),
        )
    else:
        assert isinstance(settings, PostgresProfile)
        target = NamedProfile(
            name="load",
            settings=PostgresProfile(type="postgres", url=settings.url, cdm_schema="loaded"),
        )
    with connected(cdm) as db:
        before = snapshot(db)[cdm.settings.cdm_schema]
    load_csv_folder(folder, target, replace=True)
    with connected(target) as db:
        stored = db.scalar(f"select person_source_value from {db.table_ref('loaded', 'person')}")
    assert stored == injection
    with connected(cdm) as db:
        assert snapshot(db)[cdm.settings.cdm_schema] == before
