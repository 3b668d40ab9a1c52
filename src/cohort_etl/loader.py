"""Load a folder of OMOP CDM v5.4 CSV files into a profile's database.

Accepted files: one per table, named like the table in either case (``person.csv``,
``PERSON.csv``), optionally gzipped (``.csv.gz``), comma- or tab-separated, headers in
either case. Every file is validated against :mod:`cohort_etl.cdm.spec` before anything
is written: unknown tables are skipped with a warning, a missing required table or
column is an error naming the file and column, and a value that does not parse as its
column's type (or an empty required value) is an error naming file, column and line.
Everything is written in one transaction, so a failure leaves the target untouched.

Examples
--------
>>> from cohort_etl.loader import load_csv_folder                    # doctest: +SKIP
>>> load_csv_folder(Path("omop_csv"), get_profile("duckdb"), replace=True)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cohort_etl.cdm.ddl import GENERATED_TABLES, arrow_type, create_table_sql, physical_type
from cohort_etl.cdm.spec import TABLES, Field
from cohort_etl.config import NamedProfile
from cohort_etl.db import Database, connect, quote_ident
from cohort_etl.errors import CohortEtlError, InputDataError, TargetNotEmpty
from cohort_etl.progress import task

log = logging.getLogger(__name__)

#: Tables a CDM folder must contain.
REQUIRED_TABLES: tuple[str, ...] = ("person", "observation_period")
_SUFFIX = re.compile(r"\.(csv|tsv|txt)(\.gz)?$", re.IGNORECASE)
_BATCH_BYTES = 64 << 20


@dataclass
class LoadResult:
    """What was loaded: rows per table and the files used."""

    schema: str
    row_counts: dict[str, int] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    skipped: list[Path] = field(default_factory=list)
    #: schemas of a synthetic demo CDM that ``--replace`` removed with it
    removed: list[str] = field(default_factory=list)


def demo_leftovers(db: Database, profile: NamedProfile) -> list[str]:
    """Schemas a synthetic demo CDM keeps beside the profile's CDM schema: the generator's
    storage schemas (``<cdm>_storage_a/_b``) and its truth schema (recognised by the
    generator's own ``parameters`` row). Replacing the CDM must remove them as well."""
    from cohort_etl.synthetic.generator import TRUTH_PARAMETERS, _storage_names

    settings = profile.settings
    out = [s for s in _storage_names(settings.cdm_schema) if db.schema_exists(s)]
    truth = settings.truth_schema
    if db.schema_exists(truth) and TRUTH_PARAMETERS in db.tables(truth):
        made_by = db.scalar(
            f"select value from {db.table_ref(truth, TRUTH_PARAMETERS)} where name = {db.param}",
            ["generated_by"],
        )
        if made_by == "cohort_etl.synthetic.generator":
            out.append(truth)
    return out


def find_files(folder: Path) -> tuple[dict[str, Path], list[Path]]:
    """Map CDM table name -> file in ``folder``; also the files that match no table."""
    if not folder.is_dir():
        raise InputDataError(f"{folder}: not a folder")
    found: dict[str, Path] = {}
    skipped: list[Path] = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or not _SUFFIX.search(path.name):
            continue
        table = _SUFFIX.sub("", path.name).lower()
        if table not in TABLES:
            skipped.append(path)
            continue
        if table in found:
            raise InputDataError(
                f"{folder}: two files for table {table}: {found[table].name} and {path.name}"
            )
        found[table] = path
    return found, skipped


def _open_text(path: Path) -> Any:
    import gzip

    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def _unreadable(path: Path, exc: BaseException) -> InputDataError:
    """A gzip file that is truncated or not gzip at all, named."""
    return InputDataError(
        f"{path.name}: cannot read: truncated or corrupt gzip file "
        f"({str(exc) or type(exc).__name__})"
    )


def _delimiter(path: Path) -> str:
    import gzip
    import zlib

    try:
        with _open_text(path) as fh:
            raw = fh.readline()
    except (EOFError, OSError, gzip.BadGzipFile, zlib.error) as exc:
        raise _unreadable(path, exc) from None
    header = raw.decode("utf-8", errors="replace")
    if not header.strip():
        raise InputDataError(f"{path.name}: empty file (no header line)")
    counts = {d: header.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    if best in (";", "|") and counts[best] > max(counts[","], counts["\t"]):
        raise InputDataError(
            f"{path.name}: line 1: fields are separated by {best!r}; "
            "OMOP CSV files are comma- or tab-separated (re-export with ',' as separator)"
        )
    return "\t" if counts["\t"] > counts[","] else ","


def _first_non_utf8(path: Path) -> tuple[int, int, int] | None:
    """(line, column, byte) of the first byte sequence that is not UTF-8, if any."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with _open_text(path) as fh:
        for raw in fh:
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as exc:
                return line, exc.start + 1, raw[exc.start]
            line += 1
    return None


def _csv_error(path: Path, exc: Exception) -> InputDataError:
    """A pyarrow CSV error as one line naming the file (and the line of a bad byte)."""
    import gzip
    import zlib

    lowered = str(exc).lower()
    if isinstance(exc, EOFError | gzip.BadGzipFile | zlib.error) or "compress" in lowered:
        return _unreadable(path, exc)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "utf8" in text.lower() or "utf-8" in text.lower():
        try:
            bad = _first_non_utf8(path)
        except (EOFError, OSError, gzip.BadGzipFile, zlib.error) as err:
            return _unreadable(path, err)
        if bad is not None:
            line, column, byte = bad
            return InputDataError(
                f"{path.name}: line {line}, byte {column}: not UTF-8 text (byte {byte:#04x}); "
                "save the file as UTF-8"
            )
    return InputDataError(f"{path.name}: cannot parse as CSV: {text}")


def _header(path: Path, delimiter: str) -> list[str]:
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 16),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(column_types={}, strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise _csv_error(path, exc) from None
    return list(reader.schema.names)


def _batches(
    path: Path,
    delimiter: str,
    names: list[str],
    on_position: Callable[[int], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The file's record batches (all columns as strings); ``on_position`` gets the bytes
    of the file on disk (compressed, for .gz) read so far, before each batch."""
    try:
        raw = pa.OSFile(str(path), "rb")
    except OSError as exc:
        raise _csv_error(path, exc) from None
    try:
        source = pa.CompressedInputStream(raw, "gzip") if _is_gzip(path) else raw
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(block_size=_BATCH_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
            ),
        )
        for batch in reader:
            if on_position is not None:
                on_position(raw.tell())
            yield batch
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise _csv_error(path, exc) from None
    finally:
        raw.close()


def _is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _first_bad(values: pa.Array, ok: pa.Array) -> int:
    """Index of the first non-empty value for which ``ok`` is false."""
    bad = pc.and_(pc.invert(pc.fill_null(ok, False)), pc.not_equal(values, ""))
    idx = pc.index(bad, True).as_py()
    return int(idx)


_INT = re.compile(r"^\s*[-+]?\d+\s*$")
_FLOAT = r"^\s*[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|nan|NaN|inf|-inf)\s*$"
_DATE_ISO = r"^\d{4}-\d{2}-\d{2}$"
_DATE_COMPACT = r"^\d{8}$"


def _convert(values: pa.Array, fld: Field, path: Path, first_line: int) -> pa.Array:
    """Parse one string column to its CDM type; raise naming file, column and line."""
    target = arrow_type(fld)
    empty = pc.equal(pc.utf8_trim_whitespace(values), "")
    where_null = pc.fill_null(empty, True)

    def fail(index: int, what: str) -> InputDataError:
        return InputDataError(
            f"{path.name}: column {fld.name}, line {first_line + index}: {what} "
            f"{values[index].as_py()!r} (expected {physical_type(fld, 'duckdb').lower()})"
        )

    if fld.required and pc.any(where_null).as_py():
        idx = int(pc.index(where_null, True).as_py())
        raise InputDataError(
            f"{path.name}: column {fld.name}, line {first_line + idx}: empty value in a required column"
        )
    if target == pa.string():
        return pc.if_else(where_null, pa.scalar(None, pa.string()), values)
    cleaned = pc.if_else(where_null, pa.scalar(None, pa.string()), pc.utf8_trim_whitespace(values))
    if pa.types.is_integer(target):
        ok = pc.match_substring_regex(cleaned, _INT.pattern)
        if not pc.all(pc.fill_null(ok, True)).as_py():
            raise fail(_first_bad(cleaned, ok), "not an integer:")
        try:
            return pc.cast(cleaned, target)
        except (pa.ArrowInvalid, OverflowError):
            raise fail(
                _first_bad(cleaned, pc.less(pc.utf8_length(cleaned), 19)), "integer out of range:"
            ) from None
    if pa.types.is_floating(target):
        ok = pc.match_substring_regex(cleaned, _FLOAT)
        if not pc.all(pc.fill_null(ok, True)).as_py():
            raise fail(_first_bad(cleaned, ok), "not a number:")
        return pc.cast(cleaned, target)
    if target == pa.date32():
        iso = pc.match_substring_regex(cleaned, _DATE_ISO)
        compact = pc.match_substring_regex(cleaned, _DATE_COMPACT)
        if pc.all(pc.fill_null(iso, True)).as_py():
            fmt = "%Y-%m-%d"
        elif pc.all(pc.fill_null(compact, True)).as_py():
            fmt = "%Y%m%d"
        else:
            raise fail(_first_bad(cleaned, iso), "not a date (YYYY-MM-DD):")
        try:
            parsed = pc.strptime(cleaned, format=fmt, unit="s")
            # strptime rolls impossible days over (2020-02-30 -> 2020-03-01): round-trip
            same = pc.equal(pc.strftime(parsed, format=fmt), cleaned)
            if not pc.all(pc.fill_null(same, True)).as_py():
                raise fail(_first_bad(cleaned, same), "not a valid date:")
            return pc.cast(parsed, pa.date32())
        except pa.ArrowInvalid:
            for i, value in enumerate(cleaned.to_pylist()):
                if value is None:
                    continue
                try:
                    pc.strptime(pa.array([value]), format=fmt, unit="s")
                except pa.ArrowInvalid:
                    raise fail(i, "not a valid date:") from None
            raise
    if pa.types.is_timestamp(target):
        try:
            return pc.cast(pc.cast(cleaned, pa.timestamp("us")), target)
        except pa.ArrowInvalid:
            for i, value in enumerate(cleaned.to_pylist()):
                if value is None:
                    continue
                try:
                    pc.cast(pa.array([value]), pa.timestamp("us"))
                except pa.ArrowInvalid:
                    raise fail(i, "not a datetime:") from None
            raise
    raise AssertionError(f"unhandled type {target}")  # pragma: no cover


@dataclass
class _Plan:
    table: str
    path: Path
    delimiter: str
    names: list[str]  # as in the file
    mapping: dict[str, str]  # file column -> spec column


def plan_folder(
    folder: Path, tables: tuple[str, ...] = GENERATED_TABLES
) -> tuple[list[_Plan], list[Path]]:
    """Validate file names and headers (no data read yet)."""
    files, skipped = find_files(folder)
    for table in REQUIRED_TABLES:
        if table not in files:
            raise InputDataError(
                f"{folder}: required table {table} is missing (expected {table}.csv)"
            )
    plans: list[_Plan] = []
    for table, path in files.items():
        if table not in tables:
            skipped.append(path)
            continue
        delimiter = _delimiter(path)
        names = _header(path, delimiter)
        lower = {n.strip().lower(): n for n in names}
        if len(lower) != len(names):
            raise InputDataError(f"{path.name}: duplicate column names in the header")
        spec = {f.name: f for f in TABLES[table]}
        for fld in TABLES[table]:
            if fld.required and fld.name not in lower:
                raise InputDataError(f"{path.name}: required column {fld.name} is missing")
        unknown = [n for n in lower if n not in spec]
        if unknown:
            log.warning(
                "%s: ignoring columns not in the CDM spec: %s", path.name, ", ".join(unknown)
            )
        mapping = {lower[n]: n for n in lower if n in spec}
        plans.append(_Plan(table, path, delimiter, names, mapping))
    for path in skipped:
        log.warning("skipping %s: not a CDM table this loader writes", path.name)
    return plans, skipped


def _read(plan: _Plan, on_position: Callable[[int], None] | None = None) -> Iterator[pa.Table]:
    line = 2
    fields = {f.name: f for f in TABLES[plan.table]}
    for batch in _batches(plan.path, plan.delimiter, plan.names, on_position):
        cols, names = [], []
        for src, dst in plan.mapping.items():
            cols.append(_convert(batch.column(src), fields[dst], plan.path, line))
            names.append(dst)
        line += batch.num_rows
        yield pa.Table.from_arrays(cols, names=names)


def load_csv_folder(folder: Path, profile: NamedProfile, *, replace: bool = False) -> LoadResult:
    """Load ``folder`` into ``profile``'s CDM schema (one transaction)."""
    plans, skipped = plan_folder(folder)
    schema = profile.settings.cdm_schema
    result = LoadResult(schema, files={p.table: p.path for p in plans}, skipped=skipped)
    db: Database = connect(profile)
    in_tx = False
    try:
        if db.schema_exists(schema) and db.tables(schema) and not replace:
            existing = db.tables(schema)
            raise TargetNotEmpty(
                f"schema {schema!r} already holds {len(existing)} tables "
                f"({', '.join(existing[:4])}{', ...' if len(existing) > 4 else ''}); "
                "pass --replace to overwrite it"
            )
        leftovers = demo_leftovers(db, profile) if replace else []
        db.execute("begin transaction" if db.dialect == "duckdb" else "begin")
        in_tx = True
        db.execute(f"drop schema if exists {quote_ident(schema)} cascade")
        for other in leftovers:
            db.execute(f"drop schema if exists {quote_ident(other)} cascade")
        result.removed = leftovers
        db.execute(f"create schema {quote_ident(schema)}")
        sizes = {plan.table: plan.path.stat().st_size for plan in plans}
        with task("loading CSV", total=sum(sizes.values()), unit="bytes", logger=log) as bar:
            for plan in plans:
                db.execute(create_table_sql(plan.table, db.schema_ref(schema), db.dialect))
                n = 0
                position = [0]

                def moved(now: int, table: str = plan.table, seen: list[int] = position) -> None:
                    # bytes of this file read so far (the reader may run a block ahead)
                    now = min(now, sizes[table])
                    bar.advance(now - seen[0], note=table)
                    seen[0] = now

                started = time.perf_counter()
                for data in _read(plan, moved):
                    if data.num_rows:
                        db.insert_arrow(schema, plan.table, data)
                        n += data.num_rows
                moved(sizes[plan.table])
                result.row_counts[plan.table] = n
                log.info("loaded %s: %d rows from %s", plan.table, n, plan.path.name)
                log.debug("%s loaded in %.2f s", plan.table, time.perf_counter() - started)
        db.execute("commit")
        in_tx = False
    except BaseException as exc:
        if in_tx:
            with contextlib.suppress(Exception):
                db.execute("rollback")
        if isinstance(exc, CohortEtlError | KeyboardInterrupt):
            raise
        raise InputDataError(f"loading {folder} failed and was rolled back: {exc}") from exc
    finally:
        db.close()
    return result
