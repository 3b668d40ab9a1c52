"""Resolve concept sets against a connected vocabulary, with Circe semantics, in SQL.

The Circe SQL is the dbt project's: ``dbt_project/macros/circe.sql`` (the macros the
models ``concept_set_item_concepts`` and ``concept_set_concepts`` call) is rendered here
with plain Jinja over the CDM's vocabulary tables, so ``cohort-etl concept-sets resolve``
and the build cannot drift and no dbt build is needed. The rules:

* an item contributes its own concept if the vocabulary has it and it is valid
  (``invalid_reason is null``); code items are looked up by ``(vocabulary_id, concept_code)``;
* ``includeDescendants`` adds valid descendants through ``concept_ancestor``;
* ``includeMapped`` adds source concepts whose valid ``'Maps to'`` points at any of those;
* excluded items are expanded the same way and subtracted.

Standard concepts (``standard_concept = 'S'``) match ``*_concept_id`` columns, all others
``*_source_concept_id``: counts per concept follow that rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
import pandas as pd

from cohort_etl.concept_sets.compile import seed_rows
from cohort_etl.concept_sets.registry import ConceptSet
from cohort_etl.config import project_root
from cohort_etl.db import Database

#: The dbt macros with the Circe SQL (plain Jinja; see the file's header).
CIRCE_MACROS = ("dbt_project", "macros", "circe.sql")

#: CDM event tables: (table, concept column, source concept column)
EVENT_TABLES: tuple[tuple[str, str, str], ...] = (
    ("condition_occurrence", "condition_concept_id", "condition_source_concept_id"),
    ("drug_exposure", "drug_concept_id", "drug_source_concept_id"),
    ("procedure_occurrence", "procedure_concept_id", "procedure_source_concept_id"),
    ("measurement", "measurement_concept_id", "measurement_source_concept_id"),
    ("observation", "observation_concept_id", "observation_source_concept_id"),
)


def _items_sql(sets: Sequence[ConceptSet], param: str) -> tuple[str, list[Any]]:
    """The concept set items as a ``values`` list of bound parameters (``param`` is the
    driver's placeholder): no item text ever becomes SQL text."""
    rows = seed_rows(sets)
    if not rows:
        return (
            "select cast(null as varchar(100)) as concept_set_name, cast(null as bigint) as concept_id, "
            "cast(null as varchar(20)) as vocabulary_id, cast(null as varchar(50)) as concept_code, "
            "false as is_excluded, false as include_descendants, false as include_mapped where 1 = 0",
            [],
        )
    one = (
        f"(cast({param} as varchar(100)), cast({param} as bigint), cast({param} as varchar(20)), "
        f"cast({param} as varchar(50)), cast({param} as boolean), cast({param} as boolean), "
        f"cast({param} as boolean))"
    )
    params: list[Any] = []
    for name, concept_id, vocabulary, code, excluded, descendants, mapped in rows:
        params += [
            name,
            int(concept_id) if concept_id else None,
            vocabulary or None,
            code or None,
            excluded,
            descendants,
            mapped,
        ]
    return (
        "select * from (values\n" + ",\n".join([one] * len(rows)) + "\n) as raw_items "
        "(concept_set_name, concept_id, vocabulary_id, concept_code, is_excluded, "
        "include_descendants, include_mapped)",
        params,
    )


@cache
def _circe_macros() -> Any:
    """The macros of dbt_project/macros/circe.sql as Python callables."""
    path = project_root().joinpath(*CIRCE_MACROS)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return env.from_string(path.read_text(encoding="utf-8")).module


def resolution_sql(sets: Sequence[ConceptSet], schema: str, param: str) -> tuple[str, list[Any]]:
    """SQL returning ``concept_set_name, concept_id, concept_name, vocabulary_id,
    concept_code, standard_concept, match_column`` for every resolved concept, and its
    bound parameters (``schema`` is an already quoted reference)."""
    items, params = _items_sql(sets, param)
    macros = _circe_macros()
    item_concepts = macros.circe_item_concepts(
        "seed_items",
        f"{schema}.concept",
        f"{schema}.concept_ancestor",
        f"{schema}.concept_relationship",
    )
    concepts = macros.circe_concepts("item_concepts", f"{schema}.concept")
    return (
        f"""
with seed_items as ({items}),
item_concepts as ({item_concepts}),
resolved as ({concepts})
select r.concept_set_name, r.concept_id, r.concept_name, r.vocabulary_id, r.concept_code,
       r.standard_concept, r.match_column
from resolved r
order by r.concept_set_name, r.concept_id
""",
        params,
    )


def _events_union(schema: str, tables: Sequence[str]) -> str:
    parts = [
        f"select person_id, {concept} as concept_id, coalesce({source}, 0) as source_concept_id "
        f"from {schema}.{table}"
        for table, concept, source in EVENT_TABLES
        if table in tables
    ]
    if not parts:
        return (
            "select cast(null as bigint) as person_id, cast(null as bigint) as concept_id, "
            "cast(null as bigint) as source_concept_id where 1 = 0"
        )
    return "\nunion all\n".join(parts)


@dataclass
class Resolution:
    """Resolved concept sets with CDM counts.

    Attributes
    ----------
    concepts : pandas.DataFrame
        One row per set and concept: ``concept_set_name, concept_id, concept_name,
        vocabulary_id, concept_code, standard_concept, match_column, record_count,
        person_count``.
    orphans : pandas.DataFrame
        Source concepts present in the CDM whose valid 'Maps to' target is in a set while
        the source concept itself is not: ``concept_set_name, source_concept_id,
        concept_name, vocabulary_id, concept_code, maps_to_concept_id, record_count,
        person_count``.
    persons : dict
        Set name -> the sorted person ids with at least one matching record.
    """

    concepts: pd.DataFrame
    orphans: pd.DataFrame
    persons: dict[str, list[int]]


def resolve(db: Database, sets: Sequence[ConceptSet], schema: str) -> Resolution:
    """Resolve ``sets`` against the vocabulary in ``schema`` and count their CDM records."""
    present = set(db.tables(schema))
    schema = db.schema_ref(schema)
    base, params = resolution_sql(sets, schema, db.param)
    base = base.strip().rstrip(";")
    events = _events_union(schema, sorted(present))
    counted = f"""
with resolved as ({base.replace("order by r.concept_set_name, r.concept_id", "")}),
events as ({events}),
matches as (
    select r.concept_set_name, r.concept_id, e.person_id
    from resolved r join events e
      on (r.match_column = 'standard' and e.concept_id = r.concept_id)
      or (r.match_column = 'source' and e.source_concept_id = r.concept_id)
)
select r.concept_set_name, r.concept_id, r.concept_name, r.vocabulary_id, r.concept_code,
       r.standard_concept, r.match_column,
       count(m.person_id) as record_count, count(distinct m.person_id) as person_count
from resolved r
left join matches m on m.concept_set_name = r.concept_set_name and m.concept_id = r.concept_id
group by r.concept_set_name, r.concept_id, r.concept_name, r.vocabulary_id, r.concept_code,
         r.standard_concept, r.match_column
order by r.concept_set_name, r.concept_id
"""
    concepts = db.query_df(counted, params)
    orphans_sql = f"""
with resolved as ({base.replace("order by r.concept_set_name, r.concept_id", "")}),
events as ({events}),
source_codes as (
    select source_concept_id, count(*) as record_count, count(distinct person_id) as person_count
    from events where source_concept_id <> 0
    group by source_concept_id
)
select r.concept_set_name, s.source_concept_id, c.concept_name, c.vocabulary_id,
       c.concept_code, cr.concept_id_2 as maps_to_concept_id, s.record_count, s.person_count
from source_codes s
join {schema}.concept_relationship cr
  on cr.concept_id_1 = s.source_concept_id and cr.relationship_id = 'Maps to'
 and cr.invalid_reason is null and cr.concept_id_2 <> s.source_concept_id
join resolved r on r.concept_id = cr.concept_id_2 and r.match_column = 'standard'
join {schema}.concept c on c.concept_id = s.source_concept_id
where not exists (
    select 1 from resolved r2
    where r2.concept_set_name = r.concept_set_name and r2.concept_id = s.source_concept_id
)
order by r.concept_set_name, s.source_concept_id
"""
    orphans = db.query_df(orphans_sql, params)
    persons_sql = f"""
with resolved as ({base.replace("order by r.concept_set_name, r.concept_id", "")}),
events as ({events})
select distinct r.concept_set_name, e.person_id
from resolved r join events e
  on (r.match_column = 'standard' and e.concept_id = r.concept_id)
  or (r.match_column = 'source' and e.source_concept_id = r.concept_id)
order by r.concept_set_name, e.person_id
"""
    frame = db.query_df(persons_sql, params)
    persons: dict[str, list[int]] = {s.name: [] for s in sets}
    for name, person_id in zip(frame["concept_set_name"], frame["person_id"], strict=True):
        persons[str(name)].append(int(person_id))
    for col in ("concept_id", "record_count", "person_count"):
        concepts[col] = concepts[col].astype("int64")
    for col in ("source_concept_id", "maps_to_concept_id", "record_count", "person_count"):
        orphans[col] = orphans[col].astype("int64")
    return Resolution(concepts=concepts, orphans=orphans, persons=persons)


@dataclass
class SetDiff:
    """What changes between two versions of a concept set."""

    concepts_gained: list[int]
    concepts_lost: list[int]
    persons_gained: list[int]
    persons_lost: list[int]


def diff(old: Resolution, new: Resolution, old_name: str, new_name: str) -> SetDiff:
    """Concepts and persons gained / lost going from ``old_name`` in ``old`` to ``new``."""
    old_ids = set(old.concepts.loc[old.concepts["concept_set_name"] == old_name, "concept_id"])
    new_ids = set(new.concepts.loc[new.concepts["concept_set_name"] == new_name, "concept_id"])
    old_people = set(old.persons.get(old_name, []))
    new_people = set(new.persons.get(new_name, []))
    return SetDiff(
        concepts_gained=sorted(int(i) for i in new_ids - old_ids),
        concepts_lost=sorted(int(i) for i in old_ids - new_ids),
        persons_gained=sorted(new_people - old_people),
        persons_lost=sorted(old_people - new_people),
    )
