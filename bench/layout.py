"""Give a generated DuckDB CDM the physical layout of a real site's CDM (bench only).

The synthetic generator writes the ALL/CAR-T subset first into every table and numbers
its patients above the background (``persons + 1, ...``). In DuckDB the subset's rows
then fill the first row group(s) of each table and hold the highest person_ids, so zone
maps and dynamic join filters skip nearly every row group when a query looks for ALL
codes or joins to ALL patients. A real CDM is clustered by person_id with the ALL
patients scattered among everyone else, and nothing is skipped.

:func:`scatter_persons` rewrites a generated CDM file in place into that layout: one
seeded random permutation of the person_ids is applied to every table of the CDM (the
physical tables behind the ``cdm`` views, any base table in ``cdm``) and of the truth
schema, and each table is stored ordered by (new person_id, original row order). Rows
and per-person contents are unchanged up to the renumbering. Use it on a scratch copy
only: it is never meant for a user's CDM. Tables in other schemas (dbt results) that hold
person ids are not renumbered; they describe the old ids and are reported as stale
(rebuild them with dbt).

Example (on a copy of the 1M-person CDM)::

    .venv/bin/python -m bench.layout /tmp/scatter/omop.duckdb --seed 7
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench.memory import peak_rss_mb
from cohort_etl.db import quote_ident

#: name suffix of the rewritten table while it is being filled
_NEW_SUFFIX = "__scatter_new"


def _ref(catalog: str, schema: str, table: str) -> str:
    # catalog-qualified: the catalog is the file stem, which may equal a schema name
    return f"{quote_ident(catalog)}.{quote_ident(schema)}.{quote_ident(table)}"


def _targets(con, cdm_schema: str, truth_schema: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Base tables to renumber and tables elsewhere that hold person ids (left stale).

    Renumbered: every base table with a ``person_id`` column in ``cdm_schema``, in
    ``truth_schema`` and in any schema a ``cdm_schema`` view reads from (the DuckDB
    storage schemas). Every ``cdm_schema`` view with a ``person_id`` column must read
    from one of those tables.
    """
    rows = con.execute(
        """
        select c.table_schema, c.table_name, t.table_type
        from information_schema.columns as c
        inner join information_schema.tables as t
            on t.table_catalog = c.table_catalog
           and t.table_schema = c.table_schema
           and t.table_name = c.table_name
        where c.column_name = 'person_id' and c.table_catalog = current_database()
        order by 1, 2
        """
    ).fetchall()
    base = {(s, t) for s, t, kind in rows if kind == "BASE TABLE"}
    views = [(s, t) for s, t, kind in rows if kind == "VIEW" and s == cdm_schema]
    schemas = {cdm_schema, truth_schema}
    for schema, view in views:
        sql = con.execute(
            "select sql from duckdb_views() where database_name = current_database() "
            "and schema_name = ? and view_name = ?",
            [schema, view],
        ).fetchall()[0][0]
        read = [
            (s.strip('"'), t.strip('"'))
            for s, t in re.findall(r'\bFROM\s+("?[\w]+"?)\.("?[\w]+"?)', sql, flags=re.I)
        ]
        if not any(r in base for r in read):
            raise RuntimeError(
                f"view {schema}.{view} has a person_id column but reads from no base table "
                f"with one (it reads {read or 'nothing recognisable'}); cannot renumber it"
            )
        schemas.update(s for s, _ in read)
    remap = sorted(st for st in base if st[0] in schemas)
    stale = sorted(f"{s}.{t}" for s, t in base if s not in schemas)
    if not remap:
        raise RuntimeError(
            f"no base table with a person_id column in schemas {sorted(schemas)}: "
            "is this a generated CDM?"
        )
    return remap, stale


def _new_table_ddl(con, catalog: str, schema: str, table: str) -> str:
    """The table's own CREATE statement (types, NOT NULL, keys) under the temporary name."""
    sql = con.execute(
        "select sql from duckdb_tables() where database_name = current_database() "
        "and schema_name = ? and table_name = ?",
        [schema, table],
    ).fetchall()[0][0]
    head = re.match(
        rf'CREATE TABLE\s+(?:"?{re.escape(schema)}"?\.)?"?{re.escape(table)}"?\s*\(', sql
    )
    if head is None:
        raise RuntimeError(f"unexpected DDL of {schema}.{table}: {sql[:200]}")
    return f"CREATE TABLE {_ref(catalog, schema, table + _NEW_SUFFIX)}(" + sql[head.end() :]


def _counts(con, catalog: str, schema: str, table: str) -> tuple[int, int]:
    rows, persons = con.execute(
        f"select count(*), count(distinct person_id) from {_ref(catalog, schema, table)}"
    ).fetchall()[0]
    return int(rows), int(persons)


def person_permutation(ids: np.ndarray, seed: int) -> np.ndarray:
    """New id for each of ``ids`` (sorted, distinct): a seeded random permutation of them."""
    return np.random.default_rng(seed).permutation(ids)


def scatter_persons(
    path: Path,
    seed: int = 7,
    progress: Callable[[str], None] | None = None,
    *,
    cdm_schema: str = "cdm",
    truth_schema: str = "synthetic_truth",
    memory_limit: str = "4GB",
) -> dict:
    """Renumber persons by one seeded permutation and cluster every table by person_id.

    Rewrites the DuckDB file at ``path`` in place, in one transaction (a failure leaves
    the file as it was). Each renumbered table is recreated from its own DDL (same column
    types, NOT NULL constraints and name), filled ordered by (new person_id, old rowid),
    and swapped in; the ``cdm`` views read the new tables by name.

    Returns
    -------
    dict
        ``tables``: ``{"schema.table": {"rows": n, "persons": distinct person_ids}}``
        (asserted equal before and after); ``persons``: how many ids were permuted;
        ``mapping``: int64 array of shape (persons, 2), columns old id, new id;
        ``stale``: tables outside the CDM/truth schemas with a person_id column, not
        renumbered; ``seconds``; ``peak_rss_mb`` of this process so far; ``seed``.
    """
    import duckdb

    say = progress or (lambda message: None)
    t0 = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DuckDB CDM file {path} does not exist")
    con = duckdb.connect(str(path))
    try:
        con.execute(f"set memory_limit = '{memory_limit}'")
        con.execute("set preserve_insertion_order = true")
        con.execute("set enable_progress_bar = false")
        catalog = con.execute("select current_database()").fetchall()[0][0]
        remap, stale = _targets(con, cdm_schema, truth_schema)
        for schema, table in remap:
            typ = con.execute(
                "select data_type from information_schema.columns where table_catalog = "
                "current_database() and table_schema = ? and table_name = ? "
                "and column_name = 'person_id'",
                [schema, table],
            ).fetchall()[0][0]
            if typ not in ("BIGINT", "INTEGER", "HUGEINT", "UBIGINT", "UINTEGER"):
                raise RuntimeError(f"{schema}.{table}.person_id has type {typ}, not an integer")
        before = {f"{s}.{t}": _counts(con, catalog, s, t) for s, t in remap}
        union = " union ".join(
            f"select person_id from {_ref(catalog, s, t)} where person_id is not null"
            for s, t in remap
        )
        ids = np.sort(
            con.execute(f"select person_id from ({union})").fetchnumpy()["person_id"]
        ).astype(np.int64)
        new = person_permutation(ids, seed).astype(np.int64)
        mapping = pa.table({"old_id": ids, "new_id": new})
        con.register("scatter_mapping_arrow", mapping)
        con.execute(
            "create or replace temp table scatter_person_map as "
            "select old_id, new_id from scatter_mapping_arrow"
        )
        con.unregister("scatter_mapping_arrow")
        say(f"{len(ids):,} person ids permuted (seed {seed}); {len(remap)} tables to rewrite")
        con.execute("begin transaction")
        try:
            for schema, table in remap:
                start = time.perf_counter()
                con.execute(_new_table_ddl(con, catalog, schema, table))
                con.execute(
                    f"insert into {_ref(catalog, schema, table + _NEW_SUFFIX)} "
                    f"select t.* replace (m.new_id as person_id) "
                    f"from {_ref(catalog, schema, table)} as t "
                    f"left join scatter_person_map as m on m.old_id = t.person_id "
                    f"order by m.new_id, t.rowid"
                )
                con.execute(f"drop table {_ref(catalog, schema, table)}")
                con.execute(
                    f"alter table {_ref(catalog, schema, table + _NEW_SUFFIX)} rename to {quote_ident(table)}"
                )
                after = _counts(con, catalog, schema, table)
                key = f"{schema}.{table}"
                assert after == before[key], (
                    f"{key}: rows/distinct persons {before[key]} before, {after} after"
                )
                say(f"{key}: {after[0]:,} rows in {time.perf_counter() - start:.1f} s")
            # the CDM views bind tables by name: check that each still reads
            for (view,) in con.execute(
                "select view_name from duckdb_views() where database_name = current_database() "
                "and schema_name = ? and not internal",
                [cdm_schema],
            ).fetchall():
                con.execute(f"select * from {_ref(catalog, cdm_schema, view)} limit 1").fetchall()
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("checkpoint")
    finally:
        con.close()
    return {
        "seed": seed,
        "persons": int(len(ids)),
        "tables": {k: {"rows": r, "persons": p} for k, (r, p) in before.items()},
        "mapping": np.column_stack([ids, new]),
        "stale": stale,
        "seconds": round(time.perf_counter() - t0, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.layout", description=__doc__)
    parser.add_argument("path", type=Path, help="generated DuckDB CDM file (rewritten!)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    result = scatter_persons(args.path, args.seed, progress=lambda m: print(m, flush=True))
    for key, counts in result["tables"].items():
        print(f"  {key}: {counts['rows']:,} rows, {counts['persons']:,} persons")
    if result["stale"]:
        print(f"  not renumbered (stale, rebuild with dbt): {', '.join(result['stale'])}")
    print(f"seconds={result['seconds']} peak_rss_mb={result['peak_rss_mb']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
