"""Table-driven bad input: every case is (what is wrong, the command, the exit code, a
fragment of the one-line message). None may end in a traceback or in exit 0.

The cases cover every input a user hands cohort-etl: profiles.yml, CDM CSV folders,
concept-set files, study specs, the CDM's own data (through the data-quality stage) and
command-line options, including the vague messages of issue 10 (';'-delimited CSV,
non-UTF-8 bytes, a truncated .gz, an apostrophe in a code, an outcome name with '/',
``data_cutoff: 2025-13-01``).
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from tests.quality.conftest import materialize

from cohort_etl.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
#: the line of study A's data_cutoff (the spec grows; the message must name this line)
_CUTOFF_LINE = next(
    i
    for i, line in enumerate(
        (ROOT / "studies" / "hsct_after_cart.yaml").read_text().splitlines(), 1
    )
    if line.startswith("data_cutoff:")
)
_SPEC_LINES = len((ROOT / "studies" / "hsct_after_cart.yaml").read_text().splitlines())


@dataclass
class Ctx:
    """A case's scratch folder; ``cdm`` is a copy of the session's small synthetic CDM."""

    tmp: Path
    base_cdm: Path

    @property
    def profiles(self) -> Path:
        return self.tmp / "profiles.yml"

    def write_profiles(self, text: str) -> None:
        self.profiles.write_text(text)

    def cdm(self, *sql: str, tables: tuple[str, ...] = ()) -> Path:
        path = self.tmp / "case.duckdb"
        shutil.copyfile(self.base_cdm, path)
        con = duckdb.connect(str(path))
        try:
            for table in tables:
                materialize(con, table)
            for statement in sql:
                con.execute(statement)
        finally:
            con.close()
        self.write_profiles(f"default: t\nprofiles:\n  t:\n    type: duckdb\n    path: {path}\n")
        return path

    # -- CSV folders ------------------------------------------------------------------------
    def csv_folder(self, person: str | bytes | None = None, name: str = "person.csv") -> Path:
        folder = self.tmp / "csv"
        folder.mkdir(exist_ok=True)
        (folder / "observation_period.csv").write_text(
            "observation_period_id,person_id,observation_period_start_date,"
            "observation_period_end_date,period_type_concept_id\n1,1,2020-01-01,2021-01-01,32817\n"
        )
        if person is None:
            person = PERSON_HEADER + "1,8532,1980,0,0\n"
        data = person.encode() if isinstance(person, str) else person
        (folder / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        self.write_profiles(
            f"default: t\nprofiles:\n  t:\n    type: duckdb\n    path: {self.tmp / 'load.duckdb'}\n"
        )
        return folder

    # -- concept sets -----------------------------------------------------------------------
    def sets(self) -> Path:
        folder = self.tmp / "concept_sets"
        if not folder.exists():
            shutil.copytree(ROOT / "concept_sets", folder)
        return folder

    def csv_cell(self, file: str, row: int, column: str, value: str) -> Path:
        folder = self.sets()
        path = folder / file
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        rows[row][column] = value
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return folder

    def set_json(self, name: str, change: Callable[[dict], object]) -> Path:
        folder = self.sets()
        path = folder / f"{name}.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data, indent=2))
        return folder

    # -- study specs ------------------------------------------------------------------------
    def spec(self, edit: Callable[[str], str], name: str = "hsct_after_cart.yaml") -> Path:
        folder = self.tmp / "studies"
        folder.mkdir(exist_ok=True)
        text = (ROOT / "studies" / name).read_text()
        (folder / name).write_text(edit(text))
        self.cdm()
        return folder


PERSON_HEADER = "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id\n"


def validate(folder: Path) -> list[str]:
    return ["concept-sets", "validate", "--offline", "--folder", str(folder)]


def run_specs(folder: Path) -> list[str]:
    return ["run", "--skip-build", "--no-demo", "--specs", str(folder)]


def load(folder: Path) -> list[str]:
    return ["load", "--from", str(folder), "--replace"]


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Ctx], list[str]]
    exit: int
    fragment: str


def _profile_case(id: str, text: str, fragment: str, exit: int = 2) -> Case:
    def make(ctx: Ctx) -> list[str]:
        ctx.write_profiles(text)
        return ["check"]

    return Case(id, make, exit, fragment)


DUCK = "default: t\nprofiles:\n  t:\n    type: duckdb\n    path: /nonexistent/x.duckdb\n"

CASES: list[Case] = [
    # -- profiles.yml -----------------------------------------------------------------------
    Case("profiles missing", lambda c: ["check"], 2, "profiles file not found"),
    _profile_case("profiles not YAML", "default: [t\n", "not valid YAML"),
    _profile_case(
        "profiles default undefined",
        "default: x\nprofiles: {}\n",
        "default profile 'x' is not defined",
    ),
    _profile_case(
        "profiles unknown key",
        DUCK + "    colour: red\n",
        "line 6: profiles.t.colour: Extra inputs",
    ),
    _profile_case(
        "profiles bad schema", DUCK + "    cdm_schema: CDM-1\n", "line 6: profiles.t.cdm_schema"
    ),
    _profile_case(
        "profiles bad url",
        "default: t\nprofiles:\n  t:\n    type: postgres\n    url: mysql://x\n",
        "line 5: profiles.t.url",
    ),
    _profile_case(
        "profiles unset env var",
        "default: t\nprofiles:\n  t:\n    type: duckdb\n    path: ${NO_SUCH_VAR_COHORT}\n",
        "environment variable NO_SUCH_VAR_COHORT is not set",
    ),
    _profile_case(
        "profiles unknown type",
        "default: t\nprofiles:\n  t:\n    type: oracle\n",
        "line 4: profiles.t",
    ),
    Case(
        "unknown profile",
        lambda c: (c.cdm(), ["check", "--profile", "nope"])[1],
        2,
        "unknown profile 'nope'",
    ),
    Case(
        "postgres unreachable",
        lambda c: (
            c.write_profiles(
                "default: t\nprofiles:\n  t:\n    type: postgres\n"
                "    url: postgresql://postgres@127.0.0.1:1/x\n"
            ),
            ["check"],
        )[1],
        3,
        "cannot connect to PostgreSQL at 127.0.0.1:1",
    ),
    # -- CDM CSV folders --------------------------------------------------------------------
    Case(
        "load missing folder",
        lambda c: (c.csv_folder(), load(c.tmp / "nope"))[1],
        5,
        "not a folder",
    ),
    Case(
        "load no person.csv",
        lambda c: (f := c.csv_folder(), (f / "person.csv").unlink(), load(f))[2],
        5,
        "required table person is missing (expected person.csv)",
    ),
    Case(
        "load semicolon CSV",
        lambda c: load(c.csv_folder(PERSON_HEADER.replace(",", ";") + "1;8532;1980;0;0\n")),
        5,
        "person.csv: line 1: fields are separated by ';'",
    ),
    Case(
        "load pipe CSV",
        lambda c: load(c.csv_folder(PERSON_HEADER.replace(",", "|") + "1|8532|1980|0|0\n")),
        5,
        "person.csv: line 1: fields are separated by '|'",
    ),
    Case(
        "load non-UTF-8",
        lambda c: load(
            c.csv_folder(
                (PERSON_HEADER.strip() + ",person_source_value\n1,8532,1980,0,0,ok\n").encode()
                + b"2,8532,1980,0,0,caf\xe9\n"
            )
        ),
        5,
        "person.csv: line 3, byte 20: not UTF-8 text (byte 0xe9)",
    ),
    Case(
        "load truncated gz",
        lambda c: (
            f := c.csv_folder(name="person.csv.gz"),
            (f / "person.csv.gz").write_bytes(
                gzip.compress(
                    (
                        PERSON_HEADER
                        + "".join(f"{i},8532,{1900 + i % 100},0,0\n" for i in range(1, 30_000))
                    ).encode()
                )[:20_000]
            ),
            load(f),
        )[2],
        5,
        "person.csv.gz: cannot read: truncated or corrupt gzip file",
    ),
    Case(
        "load not gzip",
        lambda c: (
            f := c.csv_folder(name="person.csv.gz"),
            (f / "person.csv.gz").write_bytes(b"plain text, not gzip\n"),
            load(f),
        )[2],
        5,
        "person.csv.gz: cannot read: truncated or corrupt gzip file",
    ),
    Case(
        "load empty file",
        lambda c: load(c.csv_folder("")),
        5,
        "person.csv: empty file (no header line)",
    ),
    Case(
        "load missing column",
        lambda c: load(c.csv_folder("person_id,gender_concept_id\n1,8532\n")),
        5,
        "person.csv: required column year_of_birth is missing",
    ),
    Case(
        "load duplicate header",
        lambda c: load(c.csv_folder(PERSON_HEADER.strip() + ",person_id\n1,8532,1980,0,0,1\n")),
        5,
        "person.csv: duplicate column names in the header",
    ),
    Case(
        "load not an integer",
        lambda c: load(c.csv_folder(PERSON_HEADER + "1,8532,19x0,0,0\n")),
        5,
        "person.csv: column year_of_birth, line 2: not an integer: '19x0'",
    ),
    Case(
        "load integer out of range",
        lambda c: load(c.csv_folder(PERSON_HEADER + "99999999999999999999,8532,1980,0,0\n")),
        5,
        "person.csv: column person_id, line 2: integer out of range",
    ),
    Case(
        "load empty required value",
        lambda c: load(c.csv_folder(PERSON_HEADER + "1,,1980,0,0\n")),
        5,
        "person.csv: column gender_concept_id, line 2: empty value in a required column",
    ),
    Case(
        "load bad date",
        lambda c: (
            f := c.csv_folder(),
            (f / "observation_period.csv").write_text(
                "observation_period_id,person_id,observation_period_start_date,"
                "observation_period_end_date,period_type_concept_id\n1,1,01/02/2020,2021-01-01,32817\n"
            ),
            load(f),
        )[2],
        5,
        "observation_period.csv: column observation_period_start_date, line 2: not a date",
    ),
    Case(
        "load impossible date",
        lambda c: (
            f := c.csv_folder(),
            (f / "observation_period.csv").write_text(
                "observation_period_id,person_id,observation_period_start_date,"
                "observation_period_end_date,period_type_concept_id\n1,1,2020-02-30,2021-01-01,32817\n"
            ),
            load(f),
        )[2],
        5,
        "line 2: not a valid date: '2020-02-30'",
    ),
    Case(
        "load two files for a table",
        lambda c: (
            f := c.csv_folder(),
            shutil.copy(f / "person.csv", f / "PERSON.csv"),
            load(f),
        )[2],
        5,
        "two files for table person",
    ),
    Case(
        "load unbalanced quote",
        lambda c: load(c.csv_folder(PERSON_HEADER + '1,8532,"1980,0,0\n')),
        5,
        "person.csv",
    ),
    # -- concept sets -----------------------------------------------------------------------
    Case(
        "registry missing",
        lambda c: (f := c.sets(), (f / "registry.csv").unlink(), validate(f))[2],
        6,
        "concept set registry not found",
    ),
    Case(
        "registry bad name",
        lambda c: validate(c.csv_cell("registry.csv", 0, "name", "All Leukemia")),
        6,
        "line 2: column name: Value error, must be a lower-case identifier",
    ),
    Case(
        "registry bad status",
        lambda c: validate(c.csv_cell("registry.csv", 1, "status", "final")),
        6,
        "line 3: column status",
    ),
    Case(
        "registry file with a folder",
        lambda c: validate(c.csv_cell("registry.csv", 2, "file", "../t_all.json")),
        6,
        "line 4: column file",
    ),
    Case(
        "registry bad date",
        lambda c: validate(c.csv_cell("registry.csv", 0, "created", "2026-13-01")),
        6,
        "line 2: column created",
    ),
    Case(
        "registry duplicate name",
        lambda c: validate(c.csv_cell("registry.csv", 1, "name", "all_leukemia")),
        6,
        "duplicate name all_leukemia",
    ),
    Case(
        "unregistered JSON",
        lambda c: (f := c.sets(), (f / "stray.json").write_text('{"items": []}'), validate(f))[2],
        6,
        "concept set file(s) not registered: stray.json",
    ),
    Case(
        "concept set not JSON",
        lambda c: (f := c.sets(), (f / "tki.json").write_text('{"items": [\n'), validate(f))[2],
        6,
        "tki.json: not valid JSON (line 2)",
    ),
    Case(
        "concept id as text",
        lambda c: validate(
            c.set_json("tki", lambda d: d["items"][0]["concept"].update(CONCEPT_ID="1304107"))
        ),
        6,
        "tki.json:$.items[0].concept.CONCEPT_ID",
    ),
    Case(
        "negative concept id",
        lambda c: validate(
            c.set_json("tki", lambda d: d["items"][1]["concept"].update(CONCEPT_ID=-5))
        ),
        6,
        "tki.json:$.items[1].concept.CONCEPT_ID",
    ),
    Case(
        "isExcluded not a boolean",
        lambda c: validate(c.set_json("tki", lambda d: d["items"][0].update(isExcluded="no"))),
        6,
        "tki.json:$.items[0].isExcluded",
    ),
    Case(
        "items missing",
        lambda c: validate(c.set_json("tki", lambda d: d.pop("items"))),
        6,
        "tki.json:$.items",
    ),
    Case(
        "apostrophe in a code",
        lambda c: validate(c.csv_cell("code_items.csv", 0, "concept_code", "0540'T")),
        6,
        'code_items.csv: line 2: column concept_code: Value error, "0540\'T" contains "\'"',
    ),
    Case(
        "code item unknown set",
        lambda c: validate(c.csv_cell("code_items.csv", 0, "concept_set_name", "no_such_set")),
        6,
        "concept set 'no_such_set' is not in the registry",
    ),
    Case(
        "code item bad vocabulary",
        lambda c: validate(c.csv_cell("code_items.csv", 1, "vocabulary_id", "ICD10PCS;x")),
        6,
        "code_items.csv: line 3: column vocabulary_id",
    ),
    Case(
        "code item bad boolean",
        lambda c: validate(c.csv_cell("code_items.csv", 0, "is_excluded", "maybe")),
        6,
        "code_items.csv: line 2: column is_excluded",
    ),
    Case(
        "resolve unknown set",
        lambda c: (c.cdm(), ["concept-sets", "resolve", "--set", "nope"])[1],
        6,
        "unknown concept set nope",
    ),
    # -- study specs ------------------------------------------------------------------------
    Case(
        "spec data_cutoff 2025-13-01",
        lambda c: run_specs(
            c.spec(lambda t: t.replace("data_cutoff: 2025-06-30", "data_cutoff: 2025-13-01"))
        ),
        6,
        f"hsct_after_cart.yaml: line {_CUTOFF_LINE}: data_cutoff: Input should be a valid date",
    ),
    Case(
        "spec not YAML",
        lambda c: run_specs(c.spec(lambda t: t + "\noutcomes: [\n")),
        6,
        "hsct_after_cart.yaml: line",
    ),
    Case(
        "spec not a mapping",
        lambda c: run_specs(c.spec(lambda t: "- just\n- a list\n")),
        6,
        "a study spec is a YAML mapping",
    ),
    Case(
        "spec unknown field",
        lambda c: run_specs(c.spec(lambda t: t + "colour: red\n")),
        6,
        f"line {_SPEC_LINES + 1}: colour: Extra inputs are not permitted",
    ),
    Case(
        "spec missing title",
        lambda c: run_specs(
            c.spec(lambda t: t.replace('title: "Consolidation', 'ttle: "Consolidation'))
        ),
        6,
        "title: Field required",
    ),
    Case(
        "spec bad name",
        lambda c: run_specs(
            c.spec(lambda t: t.replace("name: hsct_after_cart", "name: HSCT after CAR-T"))
        ),
        6,
        "line 3: name: String should match pattern",
    ),
    Case(
        "spec bad mart",
        lambda c: run_specs(
            c.spec(lambda t: t.replace("mart: analysis_hsct_after_cart", "mart: x;y"))
        ),
        6,
        "line 12: mart: String should match pattern",
    ),
    Case(
        "spec outcome type unknown",
        lambda c: run_specs(c.spec(lambda t: t.replace("type: binary", "type: ordinal"))),
        6,
        "line 42: outcomes.2: Input tag 'ordinal'",
    ),
    Case(
        "spec outcome name with a slash",
        lambda c: run_specs(c.spec(lambda t: t.replace("  - name: os\n", "  - name: os/5y\n", 1))),
        6,
        "outcomes.0.name: String should match pattern",
    ),
    Case(
        "spec sensitivity unknown outcome",
        lambda c: run_specs(
            c.spec(
                lambda t: t.replace(
                    "{kind: unmatched, outcome: os}", "{kind: unmatched, outcome: pfs}"
                )
            )
        ),
        6,
        "refers to outcome 'pfs'",
    ),
    Case(
        "spec window not positive",
        lambda c: run_specs(c.spec(lambda t: t.replace("window_days: 1826", "window_days: 0"))),
        6,
        "outcomes.2.window_days: Input should be greater than 0",
    ),
    Case(
        "spec not UTF-8",
        lambda c: (
            f := c.spec(lambda t: t),
            (f / "hsct_after_cart.yaml").write_bytes(b"name: caf\xe9\n"),
            run_specs(f),
        )[2],
        6,
        "hsct_after_cart.yaml: line 1: not UTF-8 text (byte 0xe9)",
    ),
    Case(
        "spec folder empty",
        lambda c: (c.cdm(), (c.tmp / "empty").mkdir(), run_specs(c.tmp / "empty"))[2],
        6,
        "no study specs (*.yaml)",
    ),
    Case(
        "run unknown study",
        lambda c: (c.cdm(), ["run", "--skip-build", "--no-demo", "--study", "nope"])[1],
        6,
        "unknown study nope",
    ),
    # -- the CDM's data, through the data-quality stage -------------------------------------
    Case(
        "cdm schema missing",
        lambda c: (c.cdm("drop schema cdm cascade"), ["check"])[1],
        5,
        "CDM schema 'cdm' does not exist",
    ),
    Case(
        "cdm table missing",
        lambda c: (c.cdm("drop view cdm.death"), ["check"])[1],
        5,
        "CDM table cdm.death is missing",
    ),
    Case(
        "cdm column missing",
        lambda c: (
            c.cdm(
                "alter table cdm.drug_exposure drop column drug_type_concept_id",
                tables=("drug_exposure",),
            ),
            ["build"],
        )[1],
        5,
        "CDM table cdm.drug_exposure lacks column(s) drug_type_concept_id",
    ),
    Case(
        "cdm dates as text",
        lambda c: (
            c.cdm(
                "alter table cdm.condition_occurrence alter condition_start_date type varchar",
                tables=("condition_occurrence",),
            ),
            ["build"],
        )[1],
        5,
        "column cdm.condition_occurrence.condition_start_date has type VARCHAR, expected date",
    ),
    Case(
        "cdm duplicate person",
        lambda c: (
            c.cdm(
                "insert into cdm.person select * from cdm.person where person_id = 3",
                tables=("person",),
            ),
            ["run", "--no-demo"],
        )[1],
        5,
        "primary key cdm.person.person_id occur more than once (e.g. 3)",
    ),
    Case(
        "cdm null person_id",
        lambda c: (
            c.cdm(
                "update cdm.drug_exposure set person_id = null where drug_exposure_id = (select min(drug_exposure_id) from cdm.drug_exposure)",
                tables=("drug_exposure",),
            ),
            ["check"],
        )[1],
        5,
        "NULL in required column cdm.drug_exposure.person_id",
    ),
    Case(
        "cdm empty concept",
        lambda c: (c.cdm("delete from cdm.concept"), ["check"])[1],
        5,
        "CDM vocabulary table cdm.concept is empty",
    ),
    Case(
        "cdm empty concept_ancestor",
        lambda c: (c.cdm("delete from cdm.concept_ancestor"), ["build"])[1],
        5,
        "pass --accept-incomplete-vocabulary to proceed anyway",
    ),
    Case(
        "cdm empty concept_relationship",
        lambda c: (c.cdm("delete from cdm.concept_relationship"), ["check"])[1],
        5,
        "vocabulary table cdm.concept_relationship is empty",
    ),
    # -- command-line options ---------------------------------------------------------------
    Case(
        "synth negative persons",
        lambda c: ["synth", "--persons", "-1"],
        2,
        "--persons must be >= 0",
    ),
    Case("synth absurd persons", lambda c: ["synth", "--persons", "999999999999"], 2, "is absurd"),
    Case("synth negative seed", lambda c: ["synth", "--seed", "-3"], 2, "--seed must be >= 0"),
    Case(
        "synth replace and if-missing",
        lambda c: ["synth", "--replace", "--if-missing"],
        2,
        "contradict each other",
    ),
    Case("build zero threads", lambda c: ["build", "--threads", "0"], 2, "--threads"),
    Case("unknown command", lambda c: ["frobnicate"], 2, "No such command 'frobnicate'"),
    Case(
        "synth persons not a number",
        lambda c: ["synth", "--persons", "many"],
        2,
        "'many' is not a valid integer",
    ),
]


@pytest.fixture(scope="module")
def base_cdm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import duckdb_profile_at

    from cohort_etl.synthetic.generator import generate
    from cohort_etl.synthetic.params import SynthParams

    path = tmp_path_factory.mktemp("bad_input") / "base.duckdb"
    generate(SynthParams(seed=8, persons=300, n_core=20), duckdb_profile_at(path, "base"))
    return path


def test_enough_cases() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(
    case: Case,
    base_cdm: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ctx = Ctx(tmp_path, base_cdm)
    monkeypatch.setenv("COHORT_ETL_PROFILES", str(ctx.profiles))
    monkeypatch.delenv("COHORT_ETL_PROFILE", raising=False)
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    argv = case.make(ctx)
    try:
        run_cli(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    assert code == case.exit, f"{case.id}: exit {code}, expected {case.exit}:\n{text[-1500:]}"
    assert case.fragment in text, f"{case.id}: {case.fragment!r} not in:\n{text[-1500:]}"
