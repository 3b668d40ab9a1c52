"""The data-quality checks, in the spirit of OHDSI's DataQualityDashboard, for the tables
and fields the cohorts use. Read-only: every check is one ``select`` on the CDM schema.

Checks (DataQualityDashboard's name in brackets):

* ``required_table`` / ``required_column`` [cdmTable, cdmField], ``column_type``
  [cdmDatatype]: errors (the dbt sources read these columns);
* ``primary_key_unique`` [isPrimaryKey], ``required_not_null`` [isRequired]: errors;
* ``end_before_start`` [plausibleStartBeforeEnd]: warning, the staging repairs or drops
  the row (counted as a cleaning rule);
* ``after_death`` [plausibleAfterDeath]: events more than the grace period after death
  (dropped by staging) and within it (kept): warnings; ``cart_after_death``: a CD19 CAR-T
  infusion (a cohort index) within the grace period after death is an error (the index
  would fall after the end of follow-up);
* ``outside_observation_period``: warning (dropped by staging);
* cleaning counts per staging rule (whole tables): concept 0 without a source concept,
  outside observation, after death + grace, duplicates, end before start (repaired);
* ``person_not_in_person`` [fkPerson]: warning;
* ``vocabulary_empty``: an empty concept table is an error; an empty concept_ancestor or
  concept_relationship too, unless ``accept_incomplete_vocabulary`` (then a warning the
  report states); ``vocabulary_implausible``: warnings;
* ``concept_set_domain``: a concept-set item whose vocabulary domain differs from its
  set's intended domain (the domain its items declare, else the most common one): warning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cohort_etl.config import DuckDBProfile, NamedProfile, project_root
from cohort_etl.db import Database, connected, quote_ident
from cohort_etl.quality.findings import CleaningCount, Finding, QualityReport
from cohort_etl.quality.requirements import (
    EVENT_TABLES,
    NULLABLE_READ_COLUMNS,
    REQUIRED_COLUMNS,
    EventTable,
    accepts,
    dbt_var,
    spec_field,
)

#: Concept sets whose records are CAR-T infusions (the index of the cohorts).
CART_SETS = ("cart_cd19_products", "cart_administration")
EXAMPLES = 5


class _Checker:
    def __init__(
        self,
        db: Database,
        schema: str,
        report: QualityReport,
        grace_days: int,
    ) -> None:
        self.db = db
        self.schema = schema
        self.report = report
        self.grace = grace_days
        self.usable: dict[str, set[str]] = {}
        self._row_counts: dict[str, dict[str, int]] = {}

    # -- helpers ---------------------------------------------------------------------------
    def t(self, table: str) -> str:
        return self.db.table_ref(self.schema, table)

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.db.scalar(sql, list(params)) or 0)

    def examples(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        frame = self.db.query_df(sql + f" limit {EXAMPLES}", list(params))
        return tuple(frame.iloc[:, 0].tolist()) if not frame.empty else ()

    def find(
        self,
        check: str,
        severity: str,
        table: str,
        column: str | None,
        count: int,
        message: str,
        examples: tuple[Any, ...] = (),
    ) -> None:
        self.report.add(
            Finding(check, severity, table, column, count, message, examples)  # type: ignore[arg-type]
        )

    def has(self, table: str, *columns: str) -> bool:
        return table in self.usable and all(c in self.usable[table] for c in columns)

    def row_counts(self, table: str) -> dict[str, int]:
        """Every per-row count of ``table`` (NULLs in required columns, concept 0, end
        before start) from one scan: ``sum(case when ... then 1 else 0 end)`` per
        predicate, computed once per table (a 1-billion-row CDM is read once, not once
        per check)."""
        if table in self._row_counts:
            return self._row_counts[table]
        predicates = {
            f"null:{c}": f"{quote_ident(c)} is null"
            for c in self.null_columns(table)
            if self.has(table, c)
        }
        ev = next((e for e in EVENT_TABLES if e.table == table), None)
        if ev is not None and self.has(table, ev.concept_column, ev.source_column):
            predicates["no_concept"] = (
                f"coalesce({quote_ident(ev.concept_column)}, 0) = 0 "
                f"and coalesce({quote_ident(ev.source_column)}, 0) = 0"
            )
        if ev is not None and ev.end_column and self.has(table, ev.end_column, ev.start_column):
            predicates["end_before_start"] = (
                f"{quote_ident(ev.end_column)} < {quote_ident(ev.start_column)}"
            )
        if table == "observation_period" and self.has(
            table, "observation_period_start_date", "observation_period_end_date"
        ):
            predicates["end_before_start"] = (
                "observation_period_end_date < observation_period_start_date"
            )
        counts: dict[str, int] = {}
        if predicates:
            names = list(predicates)
            sums = ", ".join(
                f"sum(case when {predicates[n]} then 1 else 0 end) as c{i}"
                for i, n in enumerate(names)
            )
            frame = self.db.query_df(f"select {sums} from {self.t(table)}")
            row = frame.iloc[0].tolist() if not frame.empty else [None] * len(names)
            counts = {
                n: int(v) if v is not None and v == v else 0
                for n, v in zip(names, row, strict=True)
            }
        self._row_counts[table] = counts
        return counts

    @staticmethod
    def null_columns(table: str) -> list[str]:
        """Required columns of ``table`` checked for NULLs (the CDM spec's required
        fields the sources read; of the vocabulary tables only concept.concept_id)."""
        out = []
        for column in REQUIRED_COLUMNS.get(table, ()):
            spec = spec_field(table, column)
            if spec is None or not spec.required or column in NULLABLE_READ_COLUMNS:
                continue
            if table.startswith("concept") and column != "concept_id":
                continue
            out.append(column)
        return out

    # -- structure -------------------------------------------------------------------------
    def structure(self) -> None:
        present = set(self.db.tables(self.schema))
        for table, needed in REQUIRED_COLUMNS.items():
            if table not in present:
                self.find(
                    "required_table",
                    "error",
                    table,
                    None,
                    1,
                    f"CDM table {self.schema}.{table} is missing",
                )
                continue
            have = self.db.columns(self.schema, table)
            missing = [c for c in needed if c not in have]
            if missing:
                self.find(
                    "required_column",
                    "error",
                    table,
                    ", ".join(missing),
                    len(missing),
                    f"CDM table {self.schema}.{table} lacks column(s) {', '.join(missing)}",
                )
            usable = set()
            for column in needed:
                if column not in have:
                    continue
                spec = spec_field(table, column)
                if spec is not None and not accepts(spec.datatype, have[column]):
                    self.find(
                        "column_type",
                        "error",
                        table,
                        column,
                        1,
                        f"column {self.schema}.{table}.{column} has type {have[column]}, "
                        f"expected {spec.datatype} (convert it in the CDM's ETL)",
                    )
                    continue
                usable.add(column)
            self.usable[table] = usable

    # -- keys and required fields ----------------------------------------------------------
    def primary_key(self, table: str, column: str) -> None:
        if not self.has(table, column):
            return
        col, t = quote_ident(column), self.t(table)
        dup = f"select {col} from {t} where {col} is not null group by {col} having count(*) > 1"
        n = self.count(f"select count(*) from ({dup}) as duplicated")
        if n:
            self.find(
                "primary_key_unique",
                "error",
                table,
                column,
                n,
                f"{n} value(s) of primary key {self.schema}.{table}.{column} occur more than once",
                self.examples(dup + f" order by {col}"),
            )

    def not_null(self, table: str, column: str, id_column: str | None) -> None:
        if not self.has(table, column):
            return
        t, col = self.t(table), quote_ident(column)
        n = self.row_counts(table).get(f"null:{column}", 0)
        if n:
            ids: tuple[Any, ...] = ()
            what = "row(s)"
            if id_column and id_column != column and self.has(table, id_column):
                ids = self.examples(
                    f"select {quote_ident(id_column)} from {t} where {col} is null "
                    f"order by {quote_ident(id_column)}"
                )
                what = f"row(s) ({id_column} shown)"
            self.find(
                "required_not_null",
                "error",
                table,
                column,
                n,
                f"{n} {what} with NULL in required column {self.schema}.{table}.{column}",
                ids,
            )

    def keys_and_nulls(self) -> None:
        ids = {
            "person": "person_id",
            "observation_period": "observation_period_id",
            "concept": "concept_id",
            **{e.table: e.id_column for e in EVENT_TABLES},
        }
        for table, pk in ids.items():
            self.primary_key(table, pk)
        for table in REQUIRED_COLUMNS:
            for column in self.null_columns(table):
                self.not_null(table, column, ids.get(table))

    # -- dates -----------------------------------------------------------------------------
    def observation_periods(self) -> None:
        table = "observation_period"
        s, e = "observation_period_start_date", "observation_period_end_date"
        if not self.has(table, "observation_period_id", s, e):
            return
        where = f"{quote_ident(e)} < {quote_ident(s)}"
        n = self.row_counts(table).get("end_before_start", 0)
        if n:
            self.find(
                "end_before_start",
                "warning",
                table,
                e,
                n,
                f"{n} observation period(s) end before they start; staging drops them",
                self.examples(
                    f"select observation_period_id from {self.t(table)} where {where} "
                    "order by observation_period_id"
                ),
            )
            self.report.cleaning.append(
                CleaningCount("observation period end before start", table, n)
            )

    def events(self, ev: EventTable) -> None:
        if not self.has(ev.table, ev.id_column, "person_id", ev.start_column):
            return
        t = self.t(ev.table)
        idc, start = quote_ident(ev.id_column), quote_ident(ev.start_column)
        p = self.db.param
        per_row = self.row_counts(ev.table)
        linked = self.linked_counts(ev)

        def report(check: str, severity: str, column: str, where: str, message: str, n: int,
                   params: Sequence[Any] = (), rule: str | None = None,
                   action: str = "dropped", joins: str = "") -> None:  # fmt: skip
            if rule is not None:
                self.report.cleaning.append(CleaningCount(rule, ev.table, n, action))  # type: ignore[arg-type]
            if n:
                # examples only for a failed check: one more (top-5) read of the table
                ex = self.examples(
                    f"select event.{idc} from {t} as event {joins} where {where} "
                    f"order by event.{idc}",
                    params,
                )
                self.find(check, severity, ev.table, column, n, message.format(n=n), ex)

        # rule 1: no concept at all (concept 0 and no source concept): nothing can match it;
        # routine in real CDMs (unmapped codes), so counted, not a finding
        if "no_concept" in per_row:
            self.report.cleaning.append(
                CleaningCount(
                    "1: concept 0 without a source concept", ev.table, per_row["no_concept"]
                )
            )
        if self.has("observation_period", "person_id", "observation_period_start_date"):
            # "in no observation period" as a left join kept where nothing matched (an
            # anti-join on person_id with the date range as residual): a correlated
            # `not exists` with a range is planned by DuckDB 2.0 as a dependent join that
            # first materialises every column of the table and groups it by person and date
            outside = (
                f"left join {self.t('observation_period')} as op "
                "on op.person_id = event.person_id "
                f"and event.{start} >= op.observation_period_start_date "
                f"and event.{start} <= op.observation_period_end_date"
            )
            where = f"event.{start} is not null and op.person_id is null"
            report(
                "outside_observation_period",
                "warning",
                ev.start_column,
                where,
                "{n} row(s) start outside every observation period of their person; "
                "staging drops them",
                self.count(f"select count(*) from {t} as event {outside} where {where}"),
                rule="2: outside every observation period",
                joins=outside,
            )
        if "after_grace" in linked:
            death = (
                f"inner join (select person_id, min(death_date) as death_date "
                f"from {self.t('death')} group by person_id) as d "
                "on d.person_id = event.person_id"
            )
            report(
                "after_death",
                "warning",
                ev.start_column,
                f"event.{start} > d.death_date + cast({p} as integer)",
                "{n} row(s) start more than " + str(self.grace) + " days (the grace period) "
                "after their person's death; staging drops them",
                linked["after_grace"],
                [self.grace],
                rule=f"3: more than {self.grace} days after death",
                joins=death,
            )
            report(
                "after_death",
                "warning",
                ev.start_column,
                f"event.{start} > d.death_date "
                f"and event.{start} <= d.death_date + cast({p} as integer)",
                "{n} row(s) start after their person's death but within the "
                + str(self.grace)
                + "-day grace period; kept",
                linked["within_grace"],
                [self.grace],
                joins=death,
            )
        # rule 4: exact duplicates (all columns the staging reads, except the row id)
        cols = [ev.concept_column, ev.source_column, ev.start_column, ev.type_column]
        if ev.end_column:
            cols.append(ev.end_column)
        cols += list(ev.extra_columns)
        if self.has(ev.table, *cols):
            key = ", ".join(["person_id", *(quote_ident(c) for c in cols)])
            n = self.count(
                f"select coalesce(sum(n - 1), 0) from (select count(*) as n from {t} "
                f"group by {key} having count(*) > 1) as duplicated"
            )
            self.report.cleaning.append(
                CleaningCount("4: duplicate of another row in every column read", ev.table, n)
            )
        if "end_before_start" in per_row:
            end = quote_ident(ev.end_column or "")
            report(
                "end_before_start",
                "warning",
                ev.end_column or "",
                f"{end} < {start}",
                "{n} row(s) end before they start; staging sets the end to the start date",
                per_row["end_before_start"],
                rule="5: end before start (end set to start)",
                action="repaired",
            )
        if "unknown_person" in linked:
            report(
                "person_not_in_person",
                "warning",
                "person_id",
                "event.person_id is not null and known.person_id is null",
                "{n} row(s) name a person_id absent from the person table; no cohort keeps them",
                linked["unknown_person"],
                joins=f"left join (select person_id from {self.t('person')} "
                "group by person_id) as known on known.person_id = event.person_id",
            )

    def linked_counts(self, ev: EventTable) -> dict[str, int]:
        """Rows of an event table starting after their person's death (beyond and within
        the grace period) and rows naming no person, from one read of the table joined to
        one row per person of death (earliest date) and of person (both sides unique per
        person, so every event row is counted once)."""
        t, start = self.t(ev.table), quote_ident(ev.start_column)
        p = self.db.param
        sums, joins, params = [], [], []
        if self.has("death", "person_id", "death_date"):
            joins.append(
                f"left join (select person_id, min(death_date) as death_date "
                f"from {self.t('death')} group by person_id) as d "
                "on d.person_id = event.person_id"
            )
            sums += [
                f"sum(case when event.{start} > d.death_date + cast({p} as integer) "
                "then 1 else 0 end) as after_grace",
                f"sum(case when event.{start} > d.death_date "
                f"and event.{start} <= d.death_date + cast({p} as integer) "
                "then 1 else 0 end) as within_grace",
            ]
            params += [self.grace, self.grace]
        if self.has("person", "person_id"):
            joins.append(
                f"left join (select person_id from {self.t('person')} group by person_id) "
                "as known on known.person_id = event.person_id"
            )
            sums.append(
                "sum(case when event.person_id is not null and known.person_id is null "
                "then 1 else 0 end) as unknown_person"
            )
        if not sums:
            return {}
        frame = self.db.query_df(
            f"select {', '.join(sums)} from {t} as event {' '.join(joins)}", params
        )
        row = frame.iloc[0]
        return {str(k): int(v) if v is not None and v == v else 0 for k, v in row.items()}

    # -- vocabulary ------------------------------------------------------------------------
    def vocabulary(self, accept_incomplete: bool) -> None:
        if self.has("concept", "concept_id"):
            n = self.count(f"select count(*) from {self.t('concept')}")
            if not n:
                self.find(
                    "vocabulary_empty",
                    "error",
                    "concept",
                    None,
                    0,
                    f"CDM vocabulary table {self.schema}.concept is empty: concept sets cannot resolve",
                )
        for table, what in (
            ("concept_ancestor", "descendants (includeDescendants) cannot be found"),
            ("concept_relationship", "source codes cannot be mapped (includeMapped)"),
        ):
            if table not in self.usable:
                continue
            n = self.count(f"select count(*) from {self.t(table)}")
            if n:
                continue
            if accept_incomplete:
                self.find(
                    "vocabulary_empty",
                    "warning",
                    table,
                    None,
                    0,
                    f"vocabulary table {self.schema}.{table} is empty: {what}; proceeding "
                    "because --accept-incomplete-vocabulary was given: cohorts will be smaller",
                )
            else:
                self.find(
                    "vocabulary_empty",
                    "error",
                    table,
                    None,
                    0,
                    f"vocabulary table {self.schema}.{table} is empty: {what}; load the full "
                    "OMOP vocabulary, or pass --accept-incomplete-vocabulary to proceed anyway",
                )
        if self.has("concept_relationship", "relationship_id") and self.count(
            f"select count(*) from {self.t('concept_relationship')}"
        ):
            maps = self.count(
                f"select count(*) from {self.t('concept_relationship')} "
                f"where relationship_id = {self.db.param}",
                ["Maps to"],
            )
            if not maps:
                self.find(
                    "vocabulary_implausible",
                    "warning",
                    "concept_relationship",
                    "relationship_id",
                    0,
                    "no 'Maps to' relationships: source codes cannot be mapped (includeMapped)",
                )

    def vocabulary_self_rows(self, concept_ids: list[int]) -> None:
        """Standard concepts named by concept sets must be their own level-0 ancestor."""
        if not concept_ids or not self.has("concept_ancestor", "ancestor_concept_id"):
            return
        if not self.count(f"select count(*) from {self.t('concept_ancestor')}"):
            return
        ph = ", ".join([self.db.param] * len(concept_ids))
        sql = (
            f"select c.concept_id from {self.t('concept')} as c where c.concept_id in ({ph}) "
            "and c.standard_concept = 'S' and c.invalid_reason is null and not exists "
            f"(select 1 from {self.t('concept_ancestor')} as ca "
            "where ca.ancestor_concept_id = c.concept_id "
            "and ca.descendant_concept_id = c.concept_id)"
        )
        n = self.count(f"select count(*) from ({sql}) as missing", concept_ids)
        if n:
            self.find(
                "vocabulary_implausible",
                "warning",
                "concept_ancestor",
                "ancestor_concept_id",
                n,
                f"{n} standard concept(s) named by concept sets lack their own row "
                "(ancestor = descendant) in concept_ancestor: an incomplete hierarchy",
                self.examples(sql + " order by c.concept_id", concept_ids),
            )

    # -- concept sets ----------------------------------------------------------------------
    def concept_set_domains(self, sets: Sequence[Any]) -> list[int]:
        """Items whose vocabulary domain is not their set's intended domain; returns the
        concept ids the sets name."""
        from cohort_etl.concept_sets.validate import domain_mismatches

        ids = sorted({item.concept.CONCEPT_ID for s in sets for item in s.expression.items})
        if not ids or not self.has("concept", "concept_id", "domain_id"):
            return ids
        for mismatch in domain_mismatches(self.db, self.t("concept"), sets):
            self.find(
                "concept_set_domain",
                "warning",
                "concept",
                "domain_id",
                len(mismatch.concepts),
                mismatch.message(),
                tuple(c for _, c, _ in mismatch.concepts[:EXAMPLES]),
            )
        return ids

    def cart_after_death(self, sets: Sequence[Any]) -> None:
        """CAR-T infusion records dated after death (within the grace period): the index
        of the cohorts would fall after the end of follow-up."""
        cart = [s for s in sets if s.name in CART_SETS]
        needed = ("drug_exposure", "procedure_occurrence", "concept", "death")
        if not cart or not all(t in self.usable for t in needed):
            return
        if not self.has("death", "person_id", "death_date"):
            return
        if not self.count(f"select count(*) from {self.t('concept_ancestor')}"):
            return
        from cohort_etl.concept_sets.resolve import resolution_sql

        resolved, params = resolution_sql(cart, self.db.schema_ref(self.schema), self.db.param)
        resolved = (
            resolved.strip().rstrip(";").replace("order by r.concept_set_name, r.concept_id", "")
        )
        p = self.db.param
        parts = []
        for ev in EVENT_TABLES:
            if ev.table not in ("drug_exposure", "procedure_occurrence"):
                continue
            if not self.has(ev.table, ev.concept_column, ev.source_column, ev.start_column):
                continue
            parts.append(
                f"select e.person_id, e.{quote_ident(ev.start_column)} as start_date "
                f"from {self.t(ev.table)} as e join resolved r on "
                f"(r.match_column = 'standard' and e.{quote_ident(ev.concept_column)} = r.concept_id) "
                f"or (r.match_column = 'source' and e.{quote_ident(ev.source_column)} = r.concept_id)"
            )
        if not parts:
            return
        sql = (
            f"with resolved as ({resolved}), infusions as ({' union all '.join(parts)}), "
            f"deaths as (select person_id, min(death_date) as death_date "
            f"from {self.t('death')} group by person_id) "
            "select distinct i.person_id from infusions i join deaths d "
            "on d.person_id = i.person_id and i.start_date > d.death_date "
            f"and i.start_date <= d.death_date + cast({p} as integer)"
        )
        args = [*params, self.grace]
        n = self.count(f"select count(*) from ({sql}) as dead", args)
        if n:
            self.find(
                "cart_after_death",
                "error",
                "death",
                "death_date",
                n,
                f"{n} person(s) have a CD19 CAR-T infusion record after their death date "
                f"(within the {self.grace}-day grace period, so it would be a cohort index "
                "after the end of follow-up); correct the death or the infusion record",
                self.examples(f"select person_id from ({sql}) as dead order by person_id", args),
            )


#: DuckDB buffer-pool limit of the stage unless the profile sets memory_limit: its big
#: aggregates (primary keys and duplicates over every event row) spill to disk beyond it
#: instead of taking 80% of the machine (20 GB at 10M persons before the limit)
QUALITY_MEMORY_LIMIT = "6GB"


def _bound_duckdb(db: Database, profile: NamedProfile) -> None:
    """Cap DuckDB's memory for the stage (the profile's memory_limit, else
    :data:`QUALITY_MEMORY_LIMIT`) and let it drop row order, which no count needs."""
    if not getattr(profile.settings, "memory_limit", None):
        db.execute(f"set memory_limit = '{QUALITY_MEMORY_LIMIT}'")
    db.execute("set preserve_insertion_order = false")


def run_checks(
    profile: NamedProfile,
    *,
    accept_incomplete_vocabulary: bool = False,
    concept_sets_dir: Path | None = None,
) -> QualityReport:
    """Every check on ``profile``'s CDM; the report holds the findings (never raises for
    findings: call :meth:`QualityReport.raise_for_errors`)."""
    from cohort_etl.concept_sets.registry import load_concept_sets
    from cohort_etl.errors import InputDataError

    schema = profile.settings.cdm_schema
    grace = int(dbt_var("death_grace_days", project_root() / "dbt_project"))  # type: ignore[call-overload]
    report = QualityReport(
        schema=schema,
        options={
            "accept_incomplete_vocabulary": accept_incomplete_vocabulary,
            "death_grace_days": grace,
        },
    )
    sets = load_concept_sets(concept_sets_dir)
    missing = InputDataError(f"CDM schema {schema!r} does not exist (profile {profile.name!r})")
    duck = isinstance(profile.settings, DuckDBProfile)
    if duck and not profile.settings.resolved_path().exists():  # type: ignore[union-attr]
        raise missing
    with connected(profile, read_only=duck) as db:
        if duck:
            _bound_duckdb(db, profile)
        if not db.schema_exists(schema):
            raise missing
        checker = _Checker(db, schema, report, grace)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("structure", checker.structure),
            ("keys_and_nulls", checker.keys_and_nulls),
            ("observation_periods", checker.observation_periods),
            *((f"events:{ev.table}", lambda ev=ev: checker.events(ev)) for ev in EVENT_TABLES),
            ("vocabulary", lambda: checker.vocabulary(accept_incomplete_vocabulary)),
        ]
        for name, step in steps:
            step()
            report.checks_run.append(name)
        ids = checker.concept_set_domains(sets)
        report.checks_run.append("concept_set_domain")
        checker.vocabulary_self_rows(ids)
        checker.cart_after_death(sets)
        report.checks_run.append("cart_after_death")
    return report
