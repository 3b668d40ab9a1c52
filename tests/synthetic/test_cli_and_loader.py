"""CLI (`cohort-etl synth` / `cohort-etl load`) behaviour, bad input, CSV round trip and
PostgreSQL."""

from __future__ import annotations

import csv
import gzip
import shutil
from pathlib import Path

import pytest
from tests.conftest import duckdb_profile_at
from tests.synthetic.conftest import Generated, small_params
from tests.synthetic.helpers import checksum, fingerprint

from cohort_etl.cdm.ddl import GENERATED_TABLES
from cohort_etl.cli import run_cli
from cohort_etl.config import NamedProfile
from cohort_etl.db import connected
from cohort_etl.errors import InputDataError, TargetNotEmpty
from cohort_etl.loader import load_csv_folder
from cohort_etl.synthetic.generator import generate
from cohort_etl.synthetic.natural_history import simulate_subset
from cohort_etl.synthetic.params import SynthParams


def write_profiles(tmp_path: Path, duck: Path, pg_url: str | None = None) -> Path:
    text = f"default: local\nprofiles:\n  local:\n    type: duckdb\n    path: {duck}\n"
    text += (
        "  down:\n    type: postgres\n    url: postgresql+psycopg://postgres@127.0.0.1:1/nowhere\n"
    )
    if pg_url:
        text += f"  pg:\n    type: postgres\n    url: {pg_url}\n"
    path = tmp_path / "profiles.yml"
    path.write_text(text)
    return path


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        run_cli(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    duck = tmp_path / "cli.duckdb"
    monkeypatch.setenv("COHORT_ETL_PROFILES", str(write_profiles(tmp_path, duck)))
    monkeypatch.delenv("COHORT_ETL_PROFILE", raising=False)
    return duck


SMALL_ARGS = ["--persons", "500", "--cart-patients", "20"]


def test_synth_cli_writes_then_refuses_then_replaces(profiles: Path, capsys) -> None:
    code, out, err = cli(["synth", *SMALL_ARGS, "--seed", "3"], capsys)
    assert code == 0, err
    assert "clinical event rows" in out
    with connected(duckdb_profile_at(profiles)) as db:
        before = checksum(db, "cdm", "person")
    # non-empty target: one-line error naming the schema, exit code 4, nothing changed
    code, out, err = cli(["synth", *SMALL_ARGS, "--seed", "4"], capsys)
    assert code == TargetNotEmpty.exit_code
    assert err.count("\n") == 1 and "'cdm'" in err and "--replace" in err
    with connected(duckdb_profile_at(profiles)) as db:
        assert checksum(db, "cdm", "person") == before
    # --if-missing: nothing to do, exit 0
    code, out, err = cli(["synth", *SMALL_ARGS, "--seed", "4", "--if-missing"], capsys)
    assert code == 0 and "nothing to do" in err
    with connected(duckdb_profile_at(profiles)) as db:
        assert checksum(db, "cdm", "person") == before
    # --replace overwrites
    code, out, err = cli(["synth", *SMALL_ARGS, "--seed", "4", "--replace"], capsys)
    assert code == 0, err
    with connected(duckdb_profile_at(profiles)) as db:
        assert checksum(db, "cdm", "person") != before


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--persons", "-5"], 2, "--persons"),
        (["--persons", "99999999999"], 2, "absurd"),
        (["--cart-patients", "-1"], 2, "--cart-patients"),
        (["--seed", "-1"], 2, "--seed"),
        (["--profile", "nope"], 2, "unknown profile 'nope'"),
        (["--profile", "down"], 3, "cannot connect to PostgreSQL"),
    ],
)
def test_synth_bad_input_is_one_line_with_exit_code(
    profiles: Path, capsys, args, code, needle
) -> None:
    got, out, err = cli(["synth", *args], capsys)
    assert got == code, err
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not profiles.exists() or not _has_cdm(profiles)


def _has_cdm(path: Path) -> bool:
    with connected(duckdb_profile_at(path)) as db:
        return db.schema_exists("cdm") and bool(db.tables("cdm"))


def test_failure_mid_generation_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    from cohort_etl.synthetic import generator

    profile = duckdb_profile_at(tmp_path / "fail.duckdb")

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(generator, "_cdm_source", boom)
    csv_dir = tmp_path / "csv"
    with pytest.raises(InputDataError, match="rolled back: simulated crash"):
        generator.generate(small_params(persons=200), profile, csv_dir=csv_dir)
    with connected(profile) as db:
        for schema in ("cdm", "cdm_storage_a", "cdm_storage_b", "synthetic_truth"):
            assert not db.schema_exists(schema) or db.tables(schema) == [], schema
    assert not csv_dir.exists() and not (tmp_path / "csv.partial").exists()


# --- CSV export and load ------------------------------------------------------------


def test_csv_export_loads_back_with_identical_counts_and_checksums(
    small_cdm: Generated, tmp_path: Path
) -> None:
    target = duckdb_profile_at(tmp_path / "loaded.duckdb", "loaded")
    result = load_csv_folder(small_cdm.csv_dir, target)
    assert set(result.row_counts) == set(GENERATED_TABLES)
    with connected(small_cdm.profile, read_only=True) as a, connected(target) as b:
        for table in GENERATED_TABLES:
            assert checksum(a, "cdm", table) == checksum(b, "cdm", table), table
            assert result.row_counts[table] == checksum(a, "cdm", table)[0]


def _copy(src: Path, dst: Path, tables: list[str]) -> None:
    dst.mkdir()
    for table in tables:
        shutil.copy(src / f"{table}.csv", dst / f"{table}.csv")


def test_load_accepts_upper_case_names_tabs_and_gzip(small_cdm: Generated, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    person = (small_cdm.csv_dir / "person.csv").read_text()
    lines = person.splitlines()
    (folder / "PERSON.csv").write_text("\n".join([lines[0].upper()] + lines[1:]) + "\n")
    op = (small_cdm.csv_dir / "observation_period.csv").read_text().replace(",", "\t")
    with gzip.open(folder / "observation_period.tsv.gz", "wt") as fh:
        fh.write(op)
    (folder / "README.txt").write_text("not a table")
    target = duckdb_profile_at(tmp_path / "mixed.duckdb")
    result = load_csv_folder(folder, target)
    assert result.row_counts["person"] == len(lines) - 1
    with connected(small_cdm.profile, read_only=True) as a, connected(target) as b:
        assert checksum(a, "cdm", "person") == checksum(b, "cdm", "person")
        assert checksum(a, "cdm", "observation_period") == checksum(b, "cdm", "observation_period")


def test_load_errors_name_file_column_and_line(small_cdm: Generated, tmp_path: Path) -> None:
    target = duckdb_profile_at(tmp_path / "bad.duckdb")
    # missing required table
    only = tmp_path / "only_person"
    _copy(small_cdm.csv_dir, only, ["person"])
    with pytest.raises(InputDataError, match="required table observation_period is missing"):
        load_csv_folder(only, target)
    # missing required column
    cols = tmp_path / "cols"
    _copy(small_cdm.csv_dir, cols, ["person", "observation_period"])
    with (cols / "person.csv").open() as fh:
        table = list(csv.reader(fh))
    drop = table[0].index("year_of_birth")
    with (cols / "person.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([[x for i, x in enumerate(r) if i != drop] for r in table])
    with pytest.raises(
        InputDataError, match=r"person\.csv: required column year_of_birth is missing"
    ):
        load_csv_folder(cols, target)
    # malformed value: line number counts the header as line 1
    bad = tmp_path / "badvalue"
    _copy(small_cdm.csv_dir, bad, ["person", "observation_period"])
    path = bad / "observation_period.csv"
    with path.open() as fh:
        table = list(csv.reader(fh))
    head = table[0]
    table[3][head.index("observation_period_start_date")] = "2020-13-45"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(table)
    with pytest.raises(
        InputDataError,
        match=r"observation_period\.csv: column observation_period_start_date, line 4: not a valid date",
    ):
        load_csv_folder(bad, target)
    table[3][head.index("observation_period_start_date")] = "2020-01-01"
    table[3][head.index("person_id")] = "12x"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(table)
    with pytest.raises(InputDataError, match=r"column person_id, line 4: not an integer: '12x'"):
        load_csv_folder(bad, target)
    # nothing was written by the failed loads
    with connected(target) as db:
        assert not db.schema_exists("cdm") or db.tables("cdm") == []


def test_load_cli_refuses_non_empty_target_and_names_missing_folder(
    small_cdm: Generated, profiles: Path, capsys, tmp_path: Path
) -> None:
    folder = tmp_path / "two"
    _copy(small_cdm.csv_dir, folder, ["person", "observation_period"])
    code, out, err = cli(["load", "--from", str(folder)], capsys)
    assert code == 0, err
    assert "loaded 2 tables" in out
    code, out, err = cli(["load", "--from", str(folder)], capsys)
    assert code == TargetNotEmpty.exit_code and "--replace" in err
    code, out, err = cli(["load", "--from", str(folder), "--replace"], capsys)
    assert code == 0, err
    code, out, err = cli(["load", "--from", str(profiles.parent / "nowhere"), "--replace"], capsys)
    assert code == InputDataError.exit_code and "not a folder" in err


# --- PostgreSQL -------------------------------------------------------------------


@pytest.mark.postgres
def test_generator_into_postgres_matches_duckdb(
    small_cdm: Generated, pg_profile: NamedProfile
) -> None:
    result = generate(small_params(), pg_profile, replace=True)
    assert result.row_counts == small_cdm.result.row_counts
    with connected(small_cdm.profile, read_only=True) as a, connected(pg_profile) as b:
        for table in GENERATED_TABLES:
            assert fingerprint(a, "cdm", table) == fingerprint(b, "cdm", table), table
        assert sorted(b.tables("synthetic_truth")) == ["parameters", "patients"]
        n = b.scalar("select count(*) from synthetic_truth.patients where expected_in_cohort_a")
        assert n == a.scalar(
            f"select count(*) from {a.table_ref('synthetic_truth', 'patients')} where expected_in_cohort_a"
        )


@pytest.mark.postgres
def test_load_csv_into_postgres(small_cdm: Generated, pg_profile: NamedProfile) -> None:
    load_csv_folder(small_cdm.csv_dir, pg_profile, replace=True)
    with connected(small_cdm.profile, read_only=True) as a, connected(pg_profile) as b:
        for table in ("person", "observation_period", "measurement", "concept_ancestor"):
            assert fingerprint(a, "cdm", table) == fingerprint(b, "cdm", table), table


# --- the default demo is near the seed studies ----------------------------------------


def test_default_subset_is_near_the_seed_study_sizes() -> None:
    """Study A (TriNetX): 239 HSCT+ / 198 HSCT- = 437 CAR-T-treated R/R ALL patients.
    Study B: 74 B-ALL patients relapsing after CD19 CAR-T, 67 of them given salvage."""
    truth = simulate_subset(SynthParams(), first_person_id=1).truth.to_pandas()
    a = truth[truth["expected_in_cohort_a"]]
    assert 420 <= len(a) <= 460
    plus = int((a["expected_arm_a"] == "HSCT+").sum())
    assert 200 <= plus <= 280
    b = int(truth["expected_in_cohort_b"].sum())
    assert 45 <= b <= 100
    cr = truth[truth["expected_in_cohort_b"]].groupby("salvage_targeted")["cr_after_salvage"].mean()
    assert cr[True] > cr[False]
