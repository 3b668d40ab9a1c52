"""Generate a synthetic OMOP CDM v5.4 with known ground truth into a profile's database.

The whole write happens in one transaction (DuckDB and PostgreSQL both have
transactional DDL): the CDM schema, the truth schema and their tables appear together at
commit, and a failure rolls everything back, so nothing half-written is left behind.

Examples
--------
>>> from cohort_etl.config import get_profile                         # doctest: +SKIP
>>> from cohort_etl.synthetic.generator import generate
>>> from cohort_etl.synthetic.params import SynthParams
>>> result = generate(SynthParams(seed=1, persons=5_000), get_profile("duckdb"))  # doctest: +SKIP
>>> result.row_counts["person"]                                       # doctest: +SKIP
5877
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from cohort_etl.cdm.ddl import CLINICAL_TABLES, arrow_type, create_table_sql, physical_type
from cohort_etl.cdm.spec import TABLES
from cohort_etl.config import NamedProfile
from cohort_etl.db import Database, connect, quote_ident
from cohort_etl.errors import CohortEtlError, InputDataError, TargetNotEmpty
from cohort_etl.progress import task
from cohort_etl.synthetic import vocabulary as v
from cohort_etl.synthetic.background import BlockResult, block_range, generate_block, n_blocks
from cohort_etl.synthetic.controls import add_control_conditions
from cohort_etl.synthetic.natural_history import simulate_subset, truth_schema
from cohort_etl.synthetic.params import SynthParams

log = logging.getLogger(__name__)

#: Clinical tables whose rows count as "clinical event rows" in the benchmark.
EVENT_TABLES = (
    "observation_period",
    "visit_occurrence",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "death",
)
TRUTH_PATIENTS = "patients"
TRUTH_PARAMETERS = "parameters"
#: blocks of 10k persons generated per write chunk
CHUNK_BLOCKS = 5
#: DuckDB buffer-pool limit while generating (unless the profile sets memory_limit)
DUCKDB_MEMORY_LIMIT = "3GB"


@dataclass
class GenerateResult:
    """What one generation run wrote."""

    params: SynthParams
    cdm_schema: str
    truth_schema: str
    row_counts: dict[str, int] = field(default_factory=dict)
    deliberate_errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    csv_dir: Path | None = None

    @property
    def event_rows(self) -> int:
        return sum(self.row_counts.get(t, 0) for t in EVENT_TABLES)


def full_schema(table: str) -> pa.Schema:
    """Arrow schema with every CDM column of ``table`` (spec order, plain types)."""
    return pa.schema([pa.field(f.name, arrow_type(f)) for f in TABLES[table]])


def conform(table: str, data: pa.Table) -> pa.Table:
    """All spec columns in spec order; dictionary strings decoded; missing columns NULL."""
    schema = full_schema(table)
    cols = []
    for fld in schema:
        if fld.name in data.column_names:
            col = data.column(fld.name)
            if col.type != fld.type:
                col = col.cast(fld.type)
            cols.append(col)
        else:
            cols.append(pa.nulls(data.num_rows, fld.type))
    return pa.Table.from_arrays(cols, schema=schema)


class _CsvSink:
    """Streams tables to ``<dir>/<table>.csv`` (written to a temporary folder first)."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = final.with_name(final.name + ".partial")
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
        self.writers: dict[str, pacsv.CSVWriter] = {}

    def write(self, table: str, data: pa.Table) -> None:
        full = conform(table, data)
        if table not in self.writers:
            self.writers[table] = pacsv.CSVWriter(
                str(self.tmp / f"{table}.csv"),
                full.schema,
                write_options=pacsv.WriteOptions(include_header=True, quoting_style="needed"),
            )
        self.writers[table].write_table(full)

    def commit(self) -> None:
        for w in self.writers.values():
            w.close()
        if self.final.exists():
            shutil.rmtree(self.final)
        self.tmp.rename(self.final)

    def abort(self) -> None:
        for w in self.writers.values():
            w.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _check_targets(db: Database, schemas: list[str], replace: bool) -> None:
    for schema in schemas:
        if not db.schema_exists(schema):
            continue
        existing = db.tables(schema)
        if existing and not replace:
            raise TargetNotEmpty(
                f"schema {schema!r} already holds {len(existing)} tables "
                f"({', '.join(existing[:4])}{', ...' if len(existing) > 4 else ''}); "
                "pass --replace to overwrite it"
            )


def cdm_has_tables(profile: NamedProfile) -> bool:
    """True when the profile's CDM schema exists and holds at least one table."""
    if profile.dialect == "duckdb":
        path = profile.settings.resolved_path()  # type: ignore[union-attr]
        if not path.exists():
            return False
    with connect(profile) as db:
        schema = profile.settings.cdm_schema
        return db.schema_exists(schema) and bool(db.tables(schema))


def _cdm_source(params: SynthParams) -> pa.Table:
    release = params.cutoff_date
    return pa.table(
        {
            "cdm_source_name": ["cohort-etl synthetic CDM"],
            "cdm_source_abbreviation": ["cohort-etl-synth"],
            "cdm_holder": ["cohort-etl"],
            "source_description": [
                f"Synthetic OMOP CDM v5.4 (seed {params.seed}, {params.persons} background "
                f"persons, {params.n_all_subset} ALL/CAR-T subset patients); data cut-off "
                f"{params.cutoff_date.isoformat()}. Ground truth in the synthetic_truth schema."
            ],
            "source_documentation_reference": ["docs/synthetic.md"],
            "cdm_etl_reference": ["cohort_etl.synthetic.generator"],
            "source_release_date": pa.array([release], pa.date32()),
            "cdm_release_date": pa.array([release], pa.date32()),
            "cdm_version": ["v5.4"],
            "cdm_version_concept_id": pa.array([v.CDM_V54], pa.int64()),
            "vocabulary_version": [v.VOCABULARY_VERSION[:20]],
        }
    )


def _blocks(params: SynthParams, chunk_blocks: int) -> Iterator[list[int]]:
    total = n_blocks(params)
    for first in range(0, total, chunk_blocks):
        yield list(range(first, min(first + chunk_blocks, total)))


def _generate_chunk(params: SynthParams, blocks: list[int]) -> list[BlockResult]:
    return [generate_block(params, b) for b in blocks]


def generate(
    params: SynthParams,
    profile: NamedProfile,
    *,
    replace: bool = False,
    csv_dir: Path | None = None,
    chunk_blocks: int = CHUNK_BLOCKS,
    progress: Callable[[str], None] | None = None,
) -> GenerateResult:
    """Generate the synthetic CDM and its ground truth into ``profile``'s database.

    Parameters
    ----------
    params : SynthParams
        Sizes, seed, calendar and true effects (validated here).
    profile : NamedProfile
        Target database; tables go to its ``cdm_schema``, the truth to ``truth_schema``.
    replace : bool
        Overwrite non-empty target schemas (otherwise :class:`TargetNotEmpty`).
    csv_dir : Path, optional
        Also write one OMOP CSV file per CDM table into this folder.
    chunk_blocks : int
        Blocks of 10,000 background persons generated per write; affects memory only,
        never the output.
    progress : callable, optional
        Receives the step messages (default: the module's logger; block lines at DEBUG,
        as the progress bar shows them).

    Returns
    -------
    GenerateResult
    """
    params.validate()
    say = progress or log.info
    # each chunk's line: the bar shows it live and logs each tenth in plain mode
    say_block = progress or log.debug
    t0 = time.perf_counter()
    cdm, truth = profile.settings.cdm_schema, profile.settings.truth_schema
    if cdm == truth:
        raise InputDataError(
            f"profile {profile.name!r}: cdm_schema and truth_schema are both {cdm!r}"
        )
    if csv_dir is not None and csv_dir.exists() and any(csv_dir.iterdir()) and not replace:
        raise TargetNotEmpty(f"CSV folder {csv_dir} is not empty; pass --replace to overwrite it")
    result = GenerateResult(params, cdm, truth, csv_dir=csv_dir)
    db = connect(profile)
    sink = _CsvSink(csv_dir) if csv_dir is not None else None
    counts = result.row_counts
    in_tx = False
    duck = db.dialect == "duckdb"
    storage = cdm
    try:
        _check_targets(db, [cdm, truth], replace)
        if duck:
            db.execute("set preserve_insertion_order = false")
            db.execute("set enable_progress_bar = false")
            if not getattr(profile.settings, "memory_limit", None):
                db.execute(f"set memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
            # Bulk data go to a fresh storage schema outside any transaction (DuckDB keeps
            # uncommitted appends in memory); the CDM schema only changes in the final,
            # small transaction that swaps the views over to it.
            storage = _next_storage(db, cdm)
            db.execute(f"drop schema if exists {quote_ident(storage)} cascade")
            db.execute(f"create schema {quote_ident(storage)}")
        else:
            db.execute("begin")
            in_tx = True
            for schema in (cdm, truth):
                db.execute(f"drop schema if exists {quote_ident(schema)} cascade")
                db.execute(f"create schema {quote_ident(schema)}")
        created: set[str] = set()

        where: dict[str, str] = {}

        def create(table: str, populated: set[str] | None = None) -> None:
            """Create ``table`` (see :func:`storage_schema` for the DuckDB layout)."""
            if db.dialect == "duckdb" and populated is not None:
                ddl = create_table_sql(table, db.schema_ref(storage), db.dialect)
                keep = [
                    line.rstrip(",")
                    for line in ddl.split("\n")[1:-1]
                    if line.split()[0] in populated or "NOT NULL" in line
                ]
                db.execute(ddl.split("\n")[0] + "\n" + ",\n".join(keep) + "\n)")
                cols = []
                for fld in TABLES[table]:
                    typ = physical_type(fld, "duckdb")
                    cols.append(
                        quote_ident(fld.name)
                        if fld.name in populated or fld.required
                        else f"cast(null as {typ}) as {quote_ident(fld.name)}"
                    )
                views.append(
                    f"create view {db.table_ref(cdm, table)} as select "
                    + ", ".join(cols)
                    # unqualified: the view keeps working when the file is attached under
                    # another catalog name
                    + f" from {quote_ident(storage)}.{quote_ident(table)}"
                )
                where[table] = storage
            else:
                db.execute(create_table_sql(table, db.schema_ref(cdm), db.dialect))
                where[table] = cdm
            created.add(table)

        views: list[str] = []

        def write(table: str, data: pa.Table) -> None:
            if data.num_rows == 0:
                return
            if db.dialect == "postgres":
                data = _decode_dictionaries(data)
            db.insert_arrow(where[table], table, data)
            counts[table] = counts.get(table, 0) + data.num_rows
            if sink is not None:
                sink.write(table, data)

        chunks = list(_blocks(params, max(1, chunk_blocks)))
        bg_errors = {"before_op": 0, "after_death": 0, "duplicates": 0}
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(_generate_chunk, params, chunks[0]) if chunks else None
            # two bars: a subset patient costs ~100 background persons, one ETA would lie
            with task(
                "ALL/CAR-T subset", total=params.n_all_subset, unit="patients", logger=log
            ) as bar:
                subset = simulate_subset(
                    params, first_person_id=params.persons + 1, on_progress=bar.advance
                )
            control_truth: list[tuple[str, str]] = []
            if params.control_outcomes:
                ctrl = add_control_conditions(
                    params.seed,
                    params.control_bias_mean,
                    params.control_bias_sd,
                    subset.truth,
                    subset.tables["condition_occurrence"],
                )
                subset.tables["condition_occurrence"] = ctrl.table
                control_truth = ctrl.parameters
            done = pending.result() if pending is not None else []
            populated: dict[str, set[str]] = {}
            for tables in [subset.tables] + [b.tables for b in done]:
                for table, data in tables.items():
                    populated.setdefault(table, set()).update(data.column_names)
            for table in CLINICAL_TABLES:
                if table not in created and table != "cdm_source":
                    create(table, populated.get(table, set()))
            for table, data in subset.tables.items():
                write(table, data)
            say(
                f"ALL/CAR-T subset: {params.n_all_subset} patients, truth rows {subset.truth.num_rows}"
            )
            with task(
                "background population", total=params.persons, unit="persons", logger=log
            ) as bar:
                for i in range(len(chunks)):
                    if i > 0:
                        assert pending is not None
                        done = pending.result()
                    pending = (
                        pool.submit(_generate_chunk, params, chunks[i + 1])
                        if i + 1 < len(chunks)
                        else None
                    )
                    for table in done[0].tables:
                        write(table, pa.concat_tables([b.tables[table] for b in done]))
                    for block in done:
                        for k, n in block.errors.items():
                            bg_errors[k] += n
                    say_block(
                        f"background: blocks {chunks[i][0]}-{chunks[i][-1]} of {n_blocks(params)} written"
                    )
                    bar.advance(
                        sum(block_range(params, b)[1] for b in chunks[i]),
                        note=f"block {chunks[i][-1] + 1} of {n_blocks(params)}",
                    )
        errors = {f"{k}_all_subset": n for k, n in subset.errors.items()}
        errors.update({f"{k}_background": n for k, n in bg_errors.items()})
        errors["before_op"] = errors["before_op_all_subset"] + errors["before_op_background"]
        errors["after_death"] = errors["after_death_all_subset"] + errors["after_death_background"]
        errors["outside_observation_period"] = errors["before_op"] + errors["after_death"]
        errors["duplicates"] = errors["duplicates_all_subset"] + errors["duplicates_background"]
        result.deliberate_errors = errors
        if duck:
            say("swapping the new CDM in")
            db.execute("begin transaction")
            in_tx = True
            for schema in (cdm, truth, *(x for x in _storage_names(cdm) if x != storage)):
                db.execute(f"drop schema if exists {quote_ident(schema)} cascade")
            for schema in (cdm, truth):
                db.execute(f"create schema {quote_ident(schema)}")
        for table in ("cdm_source", *v.vocabulary_tables()):
            create(table)
        db.execute(
            f"create table {db.table_ref(truth, TRUTH_PARAMETERS)} "
            "(name varchar(100) not null, value text)"
        )
        db.execute(_truth_ddl(db.table_ref(truth, TRUTH_PATIENTS), db.dialect))
        for table, data in v.vocabulary_tables().items():
            write(table, data)
        write("cdm_source", _cdm_source(params))
        db.insert_arrow(truth, TRUTH_PATIENTS, subset.truth)
        rows = params.as_rows() + [
            ("cdm_schema", cdm),
            ("generated_by", "cohort_etl.synthetic.generator"),
            ("vocabulary_version", v.VOCABULARY_VERSION),
        ]
        if subset.hsct is not None:
            rows += subset.hsct.as_rows()
        rows += control_truth
        rows += [(f"error.{k}", str(n)) for k, n in sorted(errors.items())]
        rows += [(f"rows.{k}", str(n)) for k, n in sorted(counts.items())]
        rows.append(("rows.clinical_events", str(sum(counts.get(t, 0) for t in EVENT_TABLES))))
        db.insert_arrow(
            truth,
            TRUTH_PARAMETERS,
            pa.table({"name": [r[0] for r in rows], "value": [r[1] for r in rows]}),
        )
        for sql in views:
            db.execute(sql)
        say("committing")
        db.execute("commit")
        in_tx = False
        storage = cdm  # committed: nothing to clean up
        if sink is not None:
            sink.commit()
            sink = None
    except BaseException as exc:
        if in_tx:
            with contextlib.suppress(Exception):
                db.execute("rollback")
        if duck and storage != cdm:
            with contextlib.suppress(Exception):
                db.execute(f"drop schema if exists {quote_ident(storage)} cascade")
        if sink is not None:
            sink.abort()
        if isinstance(exc, CohortEtlError | KeyboardInterrupt):
            raise
        raise InputDataError(f"synthetic CDM generation failed and was rolled back: {exc}") from exc
    finally:
        db.close()
    result.seconds = time.perf_counter() - t0
    say(
        f"synthetic CDM written to {profile.name}:{cdm} in {result.seconds:.1f} s "
        f"({result.event_rows:,} clinical event rows); truth in {truth}"
    )
    return result


def _storage_names(cdm: str) -> tuple[str, str]:
    """DuckDB only: the two schemas that alternately hold the physical clinical tables.

    On DuckDB, appending columns that are always NULL costs as much as real data (about
    half of all spec columns are never populated here). So each clinical table is stored
    with its populated columns in ``<cdm>_storage_a`` or ``_b`` and exposed in the CDM
    schema as a view with every spec column, in spec order and with spec types (NULL
    casts for the others). A new CDM is written to the schema not in use and swapped in
    at the end. Vocabulary tables and cdm_source are ordinary tables in the CDM schema.
    """
    return f"{cdm}_storage_a", f"{cdm}_storage_b"


def storage_schema(db: Database, cdm: str) -> str | None:
    """The storage schema the CDM views of ``cdm`` read from (DuckDB), if any."""
    if db.dialect != "duckdb":
        return None
    frame = db.query_df("select sql from duckdb_views() where schema_name = ?", [cdm])
    for name in _storage_names(cdm):
        if any(quote_ident(name) in str(sql) for sql in frame["sql"]):
            return name
    return None


def _next_storage(db: Database, cdm: str) -> str:
    a, b = _storage_names(cdm)
    return b if storage_schema(db, cdm) == a else a


def _decode_dictionaries(data: pa.Table) -> pa.Table:
    cols = []
    for col in data.columns:
        cols.append(col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col)
    return pa.Table.from_arrays(cols, names=data.column_names)


def _truth_ddl(target: str, dialect: str) -> str:
    sql = {
        "int64": "BIGINT",
        "bool": "BOOLEAN",
        "double": "DOUBLE PRECISION",
        "date32[day]": "DATE",
    }
    cols = []
    for fld in truth_schema():
        typ = sql.get(str(fld.type), "TEXT")
        if typ == "DOUBLE PRECISION" and dialect == "duckdb":
            typ = "DOUBLE"
        cols.append(f"    {fld.name} {typ}")
    return f"create table {target} (\n" + ",\n".join(cols) + "\n)"
