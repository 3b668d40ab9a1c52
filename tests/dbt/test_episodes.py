"""The OMOP episode, episode_event and cohort_definition rows the build writes.

* They conform to the CDM v5.4 field specification (:mod:`cohort_etl.cdm.spec`): every
  column, in spec order; required columns never null; every concept id a row of the CDM's
  vocabulary, in the domain the spec names (fkDomain; episode objects by the episode's
  concept class, as the spec's ETL conventions say); each episode_event's event_id a record
  of the table.field its field concept names, of the episode's person.
* Relapse and remission episodes are the derived events, person by person: the relapse
  dates of int__cart_course and int__salvage_after_relapse, the salvage CR, the first
  remission code after the infusion (recomputed here from the status events), and the
  study marts; Recurrence vs Progression agrees with the generator's CAR-T response.
* A line's regimen concept is the HemOnc regimen of exactly its ingredients, recomputed
  here from the vocabulary rows.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from tests.dbt.conftest import BuiltCdm

from cohort_etl.cdm.spec import EPISODE_OBJECT_DOMAINS, FK_DOMAINS, TABLES
from cohort_etl.db import Database, connected
from cohort_etl.dbt_runner import dbt_project_dir

pytestmark = pytest.mark.slow

RECURRENCE, PROGRESSION, REMISSION = 32529, 32677, 32530
FIRST_OCCURRENCE, REGIMEN = 32528, 32531
#: the response visit is on day 26-32 after the infusion (generator, tests/dbt/test_truth R6)
LAST_RESPONSE_DAY = 32


@pytest.fixture(scope="module", params=["synthetic_seed1", "synthetic_seed7"])
def built(request: pytest.FixtureRequest) -> BuiltCdm:
    return request.getfixturevalue(request.param)


def _query(built: BuiltCdm, sql: str) -> pd.DataFrame:
    settings = built.profile.settings
    with connected(built.profile, read_only=True) as db:
        refs = {
            "results": db.schema_ref(settings.results_schema),
            "cdm": db.schema_ref(settings.cdm_schema),
            "truth": db.schema_ref(settings.truth_schema),
        }
        return db.query_df(sql.format(**refs))


def _concepts(db: Database, cdm: str, ids: set[int]) -> pd.DataFrame:
    listed = ", ".join(str(i) for i in sorted(ids)) or "null"
    return db.query_df(
        f"select concept_id, domain_id, vocabulary_id, concept_class_id from {cdm}.concept "
        f"where concept_id in ({listed})"
    ).set_index("concept_id")


@pytest.mark.parametrize("table", ["episode", "episode_event", "cohort_definition"])
def test_rows_conform_to_the_v54_field_spec(built: BuiltCdm, table: str) -> None:
    settings = built.profile.settings
    spec = TABLES[table]
    with connected(built.profile, read_only=True) as db:
        cdm = db.schema_ref(settings.cdm_schema)
        assert list(db.columns(settings.results_schema, table)) == [f.name for f in spec]
        rows = db.query_df(f"select * from {db.table_ref(settings.results_schema, table)}")
        assert len(rows) > 0
        for field in spec:
            if field.required:
                assert rows[field.name].notna().all(), f"{table}.{field.name} is null"
            if field.fk_table != "concept":
                continue
            ids = set(rows[field.name].dropna().astype(int))
            concepts = _concepts(db, cdm, ids)
            assert ids <= set(concepts.index), f"{table}.{field.name}: not in concept"
            domains = FK_DOMAINS.get((table, field.name))
            if domains and field.name != "episode_object_concept_id":
                wrong = concepts[~concepts["domain_id"].isin(domains)]
                assert wrong.empty, f"{table}.{field.name}: {wrong.to_dict('index')}"
        if table == "episode":
            _episode_objects(db, cdm, rows)
        elif table == "episode_event":
            refs = (db.table_ref(settings.results_schema, t) for t in ("episode", table))
            _event_records(db, cdm, *refs, rows)
        else:
            _cohort_definition_values(db, cdm, rows)


def _episode_objects(db: Database, cdm: str, rows: pd.DataFrame) -> None:
    """Disease episodes have a Condition object; Treatment episodes a Procedure or Regimen
    (or 0: no HemOnc regimen of exactly the line's ingredients in the vocabulary)."""
    kinds = _concepts(db, cdm, set(rows["episode_concept_id"].astype(int)))["concept_class_id"]
    objects = _concepts(db, cdm, set(rows["episode_object_concept_id"].astype(int)))
    for row in rows.itertuples():
        kind = kinds[row.episode_concept_id]
        obj = objects.loc[row.episode_object_concept_id]
        if row.episode_object_concept_id == 0:
            assert kind == "Treatment Episode", row
            continue
        allowed = EPISODE_OBJECT_DOMAINS[kind]
        assert obj["domain_id"] in allowed or obj["concept_class_id"] in allowed, row
    assert set(rows["episode_concept_id"]) == {
        FIRST_OCCURRENCE,
        REGIMEN,
        RECURRENCE,
        PROGRESSION,
        REMISSION,
    }


def _event_records(
    db: Database, cdm: str, episode: str, episode_event: str, rows: pd.DataFrame
) -> None:
    """Every event_id is a record of the table.field its field concept names (the concept
    name, as in the CDM vocabulary), of the episode's own person; every episode has one."""
    fields = db.query_df(
        f"select concept_id, concept_name from {cdm}.concept where concept_id in "
        f"({', '.join(str(int(i)) for i in set(rows['episode_event_field_concept_id']))})"
    )
    assert len(fields) == rows["episode_event_field_concept_id"].nunique()
    for concept_id, name in fields.itertuples(index=False):
        table, column = name.split(".")
        missing = db.query_df(
            f"select count(*) as n from {episode_event} as ee "
            f"inner join {episode} as e on e.episode_id = ee.episode_id "
            f"where ee.episode_event_field_concept_id = {int(concept_id)} and not exists ("
            f"select 1 from {cdm}.{table} as r where r.{column} = ee.event_id "
            f"and r.person_id = e.person_id)"
        )
        assert int(missing.iat[0, 0]) == 0, name
    unlinked = db.query_df(
        f"select count(*) from {episode} as e where not exists (select 1 from "
        f"{episode_event} as ee where ee.episode_id = e.episode_id)"
    )
    assert int(unlinked.iat[0, 0]) == 0


def _cohort_definition_values(db: Database, cdm: str, rows: pd.DataFrame) -> None:
    """Subjects are persons: the Person domain's domain_concept_id (CommonDataModel
    convention); the initiation date is the CDM's release date (deterministic)."""
    person = db.query_df(f"select domain_concept_id from {cdm}.domain where domain_id = 'Person'")
    assert set(rows["subject_concept_id"]) == {int(person.iat[0, 0])}
    release = db.query_df(f"select max(cdm_release_date) from {cdm}.cdm_source")
    dates = set(pd.to_datetime(rows["cohort_initiation_date"]).dt.date)
    assert dates == {pd.Timestamp(release.iat[0, 0]).date()}


def _dates(frame: pd.DataFrame, column: str) -> dict[int, pd.Timestamp]:
    part = frame.dropna(subset=[column])
    return dict(zip(part["person_id"].astype(int), pd.to_datetime(part[column]), strict=True))


def test_relapse_and_remission_episodes_are_the_derived_events(built: BuiltCdm) -> None:
    episodes = _query(built, "select * from {results}.episode")
    episodes["n"] = episodes["episode_id"] - episodes["person_id"] * 1000
    episodes["episode_start_date"] = pd.to_datetime(episodes["episode_start_date"])
    episodes["episode_end_date"] = pd.to_datetime(episodes["episode_end_date"])
    course = _query(built, "select * from {results}.int__cart_course")
    salvage = _query(built, "select * from {results}.int__salvage_after_relapse")
    status = _query(
        built,
        "select person_id, status_date from {results}.int__disease_status_events "
        "where status = 'remission'",
    )
    followup = _dates(
        _query(built, "select * from {results}.int__person_followup"), "end_of_followup_date"
    )

    relapses = episodes[episodes["episode_concept_id"].isin([RECURRENCE, PROGRESSION])]
    remissions = episodes[episodes["episode_concept_id"] == REMISSION]
    assert set(relapses["n"]) <= {801, 802} and set(remissions["n"]) <= {901, 902}

    def starts(frame: pd.DataFrame) -> dict[int, pd.Timestamp]:
        return _dates(frame, "episode_start_date")

    first_relapse = relapses[relapses["episode_number"] == 1]
    second_relapse = relapses[relapses["episode_number"] == 2]
    assert starts(first_relapse) == _dates(course, "relapse_date")
    assert starts(second_relapse) == _dates(salvage, "second_relapse_date")

    # the first remission code after the infusion and before the relapse, recomputed
    m = course.merge(status, on="person_id")
    m = m[
        (pd.to_datetime(m["status_date"]) > pd.to_datetime(m["cart_date"]))
        & (
            m["relapse_date"].isna()
            | (pd.to_datetime(m["status_date"]) < pd.to_datetime(m["relapse_date"]))
        )
    ]
    cart_cr = m.groupby("person_id")["status_date"].min().reset_index()
    salvage_cr = _dates(salvage, "cr_date")
    relapse_day = starts(first_relapse)
    after_relapse = remissions["episode_start_date"] > remissions["person_id"].map(relapse_day)
    assert starts(remissions[~after_relapse]) == _dates(cart_cr, "status_date")
    assert starts(remissions[after_relapse]) == salvage_cr
    assert len(cart_cr) > 0 and len(salvage_cr) > 0 and len(second_relapse) > 0

    # Recurrence after a remission, Progression without one
    expected = (
        first_relapse["person_id"]
        .isin(cart_cr["person_id"])
        .map({True: RECURRENCE, False: PROGRESSION})
    )
    assert (first_relapse["episode_concept_id"] == expected).all()
    assert (second_relapse["episode_concept_id"] == RECURRENCE).all()
    assert {RECURRENCE, PROGRESSION} <= set(first_relapse["episode_concept_id"])

    # each ends at the next change of the other kind, else at the end of follow-up
    changes = pd.concat([relapses.assign(kind="r"), remissions.assign(kind="c")])
    for row in changes.itertuples():
        later = changes[
            (changes["person_id"] == row.person_id)
            & (changes["kind"] != row.kind)
            & (changes["episode_start_date"] > row.episode_start_date)
        ]["episode_start_date"]
        end = later.min() if len(later) else max(followup[row.person_id], row.episode_start_date)
        assert row.episode_end_date == end, row

    # the study marts date the same events
    mart_b = _query(built, "select * from {results}.analysis_salvage_after_relapse")
    assert all(relapse_day[p] == d for p, d in _dates(mart_b, "index_date").items())
    assert all(salvage_cr[p] == d for p, d in _dates(mart_b, "cr_date").items())
    mart_a = _query(built, "select * from {results}.analysis_hsct_after_cart")
    assert _dates(mart_a, "relapse_date") == {
        p: d for p, d in relapse_day.items() if p in set(mart_a["person_id"])
    }


def test_recurrence_or_progression_agrees_with_the_generators_cart_response(
    built: BuiltCdm,
) -> None:
    """A relapse of a CAR-T responder (truth CR) is a Recurrence, of a non-responder a
    Progression; the one exception allowed is a responder whose relapse came before the
    response visit (no remission code could precede it)."""
    m = _query(
        built,
        "select t.person_id, t.car_t_response, t.car_t_date, t.relapse_after_cart_date, "
        "e.episode_concept_id from {truth}.patients as t "
        "inner join {results}.episode as e on e.person_id = t.person_id "
        f"and e.episode_concept_id in ({RECURRENCE}, {PROGRESSION}) and e.episode_number = 1 "
        "where t.expected_in_cohort_a",
    )
    assert len(m) > 0
    recurrence = m[m["episode_concept_id"] == RECURRENCE]
    assert (recurrence["car_t_response"] == "CR").all()
    progression = m[m["episode_concept_id"] == PROGRESSION]
    early = (
        pd.to_datetime(progression["relapse_after_cart_date"])
        - pd.to_datetime(progression["car_t_date"])
    ).dt.days <= LAST_RESPONSE_DAY
    assert ((progression["car_t_response"] == "NR") | early).all()


def test_line_regimen_is_the_hemonc_regimen_of_exactly_its_ingredients(built: BuiltCdm) -> None:
    relationships = yaml.safe_load((dbt_project_dir() / "dbt_project.yml").read_text())["vars"][
        "hemonc_component_relationships"
    ]
    listed = ", ".join(f"'{r}'" for r in relationships)
    components = _query(
        built,
        "select r.concept_id_1 as regimen, r.concept_id_2 as ingredient "
        "from {cdm}.concept_relationship as r inner join {cdm}.concept as c "
        "on c.concept_id = r.concept_id_1 and c.vocabulary_id = 'HemOnc' "
        "and c.concept_class_id = 'Regimen' and c.invalid_reason is null "
        f"where r.invalid_reason is null and r.relationship_id in ({listed})",
    )
    by_set: dict[frozenset[int], int] = {}
    for regimen, part in components.groupby("regimen"):
        key = frozenset(part["ingredient"].astype(int))
        by_set[key] = min(by_set.get(key, int(regimen)), int(regimen))
    lines = _query(
        built,
        "select l.regimen, e.episode_object_concept_id from {results}.int__lines_of_therapy as l "
        "inner join {results}.episode as e on e.person_id = l.person_id "
        f"and e.episode_number = l.line_number and e.episode_concept_id = {REGIMEN}",
    )
    assert len(lines) > 0
    for regimen, concept_id in lines.itertuples(index=False):
        ingredients = frozenset(int(agent.split(":")[1]) for agent in regimen.split("+"))
        assert concept_id == by_set.get(ingredients, 0), regimen
    assert (lines["episode_object_concept_id"] != 0).sum() > 0
