"""The generated CDM: spec conformance, integrity, deliberate errors, determinism and
agreement between the ground truth and the events it describes."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from tests.conftest import duckdb_profile_at
from tests.synthetic.conftest import Generated, small_params
from tests.synthetic.helpers import checksum

from cohort_etl.cdm.ddl import CLINICAL_TABLES, GENERATED_TABLES, physical_type
from cohort_etl.cdm.spec import TABLES
from cohort_etl.db import Database, connected
from cohort_etl.synthetic import vocabulary as v
from cohort_etl.synthetic.generator import generate

EVENT_DATES = {
    "visit_occurrence": "visit_start_date",
    "condition_occurrence": "condition_start_date",
    "drug_exposure": "drug_exposure_start_date",
    "procedure_occurrence": "procedure_date",
    "measurement": "measurement_date",
    "observation": "observation_date",
}


@pytest.fixture(scope="module")
def db(small_cdm: Generated) -> Iterator[Database]:
    with connected(small_cdm.profile, read_only=True) as con:
        yield con


def q(db: Database, sql: str) -> pd.DataFrame:
    return db.query_df(sql)


def one(db: Database, sql: str) -> object:
    return db.scalar(sql)


def t(db: Database, table: str, schema: str = "cdm") -> str:
    return db.table_ref(schema, table)


def params(db: Database) -> dict[str, str]:
    frame = q(db, f"select name, value from {t(db, 'parameters', 'synthetic_truth')}")
    return dict(zip(frame["name"], frame["value"], strict=True))


def test_every_table_has_the_spec_columns_and_types(db: Database) -> None:
    duck = {
        "BIGINT": "BIGINT",
        "INTEGER": "INTEGER",
        "DOUBLE": "DOUBLE",
        "DATE": "DATE",
        "TIMESTAMP": "TIMESTAMP",
    }
    for table in GENERATED_TABLES:
        got = db.columns("cdm", table)
        want = [f.name for f in TABLES[table]]
        assert list(got) == want, table
        for fld in TABLES[table]:
            phys = physical_type(fld, "duckdb")
            expected = duck.get(phys, "VARCHAR")
            assert got[fld.name] == expected, (table, fld.name, got[fld.name])
        nulls = [
            f.name
            for f in TABLES[table]
            if f.required and one(db, f"select count(*) from {t(db, table)} where {f.name} is null")
        ]
        assert nulls == [], table


def test_primary_keys_are_unique(db: Database) -> None:
    for table in GENERATED_TABLES:
        pks = [f.name for f in TABLES[table] if f.primary_key]
        if not pks:
            continue
        cols = ", ".join(pks)
        dup = one(
            db,
            f"select count(*) from (select {cols} from {t(db, table)} group by {cols} having count(*) > 1) x",
        )
        assert dup == 0, table
    assert one(db, f"select count(*) - count(distinct person_id) from {t(db, 'death')}") == 0


def test_referential_integrity(db: Database) -> None:
    concept = t(db, "concept")
    for table in GENERATED_TABLES:
        for fld in TABLES[table]:
            if fld.fk_table == "concept":
                missing = one(
                    db,
                    f"select count(*) from {t(db, table)} x where x.{fld.name} is not null "
                    f"and not exists (select 1 from {concept} c where c.concept_id = x.{fld.name})",
                )
                assert missing == 0, (table, fld.name)
            if fld.fk_table in ("person", "visit_occurrence") and table in CLINICAL_TABLES:
                target, key = fld.fk_table, f"{fld.fk_table}_id"
                missing = one(
                    db,
                    f"select count(*) from {t(db, table)} x where x.{fld.name} is not null "
                    f"and not exists (select 1 from {t(db, target)} p where p.{key} = x.{fld.name})",
                )
                assert missing == 0, (table, fld.name)


def test_type_and_domain_of_event_concepts(db: Database) -> None:
    """Standard event concepts are standard and in the table's domain (0 = unmapped)."""
    concept = t(db, "concept")
    for table, column, domains in (
        ("condition_occurrence", "condition_concept_id", ("Condition",)),
        ("drug_exposure", "drug_concept_id", ("Drug",)),
        ("procedure_occurrence", "procedure_concept_id", ("Procedure",)),
        ("measurement", "measurement_concept_id", ("Measurement",)),
    ):
        bad = q(
            db,
            f"select c.concept_id, c.domain_id, c.standard_concept, c.invalid_reason, count(*) n "
            f"from {t(db, table)} x join {concept} c on c.concept_id = x.{column} "
            f"where x.{column} <> 0 and (c.domain_id not in {domains if len(domains) > 1 else '(' + repr(domains[0]) + ')'} "
            f"or coalesce(c.standard_concept, '') <> 'S') group by all",
        )
        # the only non-standard event concept is the deprecated legacy leukemia code
        assert set(bad["concept_id"]) <= {v.BURKITT_LEUKEMIA_DEPRECATED}, (table, bad)


def test_events_outside_observation_periods_are_exactly_the_deliberate_ones(db: Database) -> None:
    p = params(db)
    op = t(db, "observation_period")
    outside = 0
    for table, col in EVENT_DATES.items():
        outside += int(
            one(
                db,
                f"select count(*) from {t(db, table)} x where not exists (select 1 from {op} o "
                f"where o.person_id = x.person_id and x.{col} between o.observation_period_start_date "
                f"and o.observation_period_end_date)",
            )
        )
    expected = int(p["error.outside_observation_period"])
    assert expected == int(p["error.before_op"]) + int(p["error.after_death"])
    assert expected > 0
    assert outside == expected
    # the death date of everyone who died lies inside an observation period
    assert (
        one(
            db,
            f"select count(*) from {t(db, 'death')} d where not exists (select 1 from {op} o "
            "where o.person_id = d.person_id and d.death_date between o.observation_period_start_date "
            "and o.observation_period_end_date)",
        )
        == 0
    )
    # visits end inside the period they start in
    assert (
        one(
            db,
            f"select count(*) from {t(db, 'visit_occurrence')} x where not exists (select 1 from {op} o "
            "where o.person_id = x.person_id and x.visit_start_date >= o.observation_period_start_date "
            "and x.visit_end_date <= o.observation_period_end_date)",
        )
        == 0
    )


def test_records_after_death_are_exactly_the_deliberate_ones(db: Database) -> None:
    p = params(db)
    after = 0
    death = t(db, "death")
    for table, col in EVENT_DATES.items():
        after += int(
            one(
                db,
                f"select count(*) from {t(db, table)} x join {death} d on d.person_id = x.person_id "
                f"where x.{col} > d.death_date",
            )
        )
    assert after == int(p["error.after_death"]) > 0
    truth = q(
        db, f"select person_id from {t(db, 'patients', 'synthetic_truth')} where record_after_death"
    )
    assert len(truth) == int(p["error.after_death_all_subset"])


def test_dates_inside_the_calendar_window(db: Database) -> None:
    p = params(db)
    for table, col in EVENT_DATES.items():
        lo, hi = q(db, f"select min({col}), max({col}) from {t(db, table)}").iloc[0]
        assert str(pd.Timestamp(lo).date()) >= p["start_date"], table
        assert str(pd.Timestamp(hi).date()) <= p["cutoff_date"], table
    op_end = one(db, f"select max(observation_period_end_date) from {t(db, 'observation_period')}")
    assert str(pd.Timestamp(op_end).date()) <= p["cutoff_date"]
    release = one(db, f"select source_release_date from {t(db, 'cdm_source')}")
    assert str(pd.Timestamp(release).date()) == p["cutoff_date"]


def test_messy_reality_is_present(db: Database) -> None:
    cond = t(db, "condition_occurrence")
    # unmapped codes: concept 0 with a source value
    assert (
        one(
            db,
            f"select count(*) from {cond} where condition_concept_id = 0 and condition_source_value is not null",
        )
        > 0
    )
    # ALL records kept only as source concepts
    src = ", ".join(
        str(x) for x in (v.ICD10CM_C91_00, v.ICD10CM_C91_01, v.ICD10CM_C91_02, v.ICD9CM_204_00)
    )
    assert (
        one(
            db,
            f"select count(*) from {cond} where condition_concept_id = 0 and condition_source_concept_id in ({src})",
        )
        > 0
    )
    # ICD-9-CM before the October 2015 transition, ICD-10-CM after
    icd9 = q(
        db,
        f"select max(condition_start_date) d from {cond} c join {t(db, 'concept')} k on k.concept_id = c.condition_source_concept_id where k.vocabulary_id = 'ICD9CM'",
    )
    assert str(icd9["d"].iloc[0]) < "2015-10-01"
    truth = q(db, f"select * from {t(db, 'patients', 'synthetic_truth')}")
    assert truth["duplicate_cart_row"].sum() == int(params(db)["error.duplicates_all_subset"]) > 0
    assert set(truth["category"]) == {
        "core",
        "auto_hsct",
        "t_all",
        "aml",
        "cll",
        "dlbcl",
        "burkitt",
        "no_rr",
        "all_no_cart",
    }


def test_truth_lives_outside_the_cdm_schema(db: Database) -> None:
    assert set(db.tables("synthetic_truth")) == {"patients", "parameters"}
    assert not {"patients", "parameters"} & set(db.tables("cdm"))


# --- truth agrees with the events -------------------------------------------------


@pytest.fixture(scope="module")
def truth(db: Database) -> pd.DataFrame:
    return q(db, f"select * from {t(db, 'patients', 'synthetic_truth')}")


def _ids(concepts: set[int]) -> str:
    return ", ".join(str(c) for c in sorted(concepts))


def test_truth_car_t_date_has_a_car_t_drug_or_procedure_within_three_days(
    db: Database, truth: pd.DataFrame
) -> None:
    drugs = set()
    for ing in v.CD19_CART_INGREDIENTS:
        drugs |= v.descendants(ing)
    procs = v.descendants(v.CART_THERAPY_PROCEDURE)
    frame = q(
        db,
        f"""
        select person_id, drug_exposure_start_date d from {t(db, "drug_exposure")}
        where drug_concept_id in ({_ids(drugs)})
        union all
        select person_id, procedure_date from {t(db, "procedure_occurrence")}
        where procedure_concept_id in ({_ids(procs)})
        """,
    )
    frame["d"] = pd.to_datetime(frame["d"])
    first = frame.groupby("person_id")["d"].min()
    cart = truth[
        truth["car_t_date"].notna()
        & truth["category"].isin(["core", "auto_hsct", "t_all", "no_rr", "burkitt"])
    ]
    assert len(cart) > 50
    got = first.reindex(cart["person_id"]).to_numpy()
    want = pd.to_datetime(cart["car_t_date"]).to_numpy()
    delta = (got - want) / pd.Timedelta(days=1)
    assert ((delta >= 0) & (delta <= 3)).all()
    # patients never given CAR-T have no CAR-T record
    never = set(truth.loc[truth["car_t_date"].isna(), "person_id"])
    assert never and not never & set(frame["person_id"])


def test_truth_hsct_date_has_an_allogeneic_hsct_procedure_that_day(
    db: Database, truth: pd.DataFrame
) -> None:
    allo = v.descendants(v.ALLOGENEIC_BMT)
    auto = v.descendants(v.AUTOLOGOUS_BMT)
    proc = q(
        db,
        f"select person_id, procedure_date d, procedure_concept_id c from {t(db, 'procedure_occurrence')} where procedure_concept_id in ({_ids(allo | auto)})",
    )
    proc["d"] = pd.to_datetime(proc["d"])
    for kind, codes in (("allogeneic", allo), ("autologous", auto)):
        rows = truth[(truth["hsct_type"] == kind) & truth["hsct_date"].notna()]
        assert len(rows) > 0, kind
        for _, r in rows.iterrows():
            hits = proc[
                (proc["person_id"] == r["person_id"]) & (proc["d"] == pd.Timestamp(r["hsct_date"]))
            ]
            assert hits["c"].isin(codes).any(), (kind, r["person_id"])
            assert not hits["c"].isin(auto if kind == "allogeneic" else allo).any()


def test_truth_death_dates_match_the_death_table(db: Database, truth: pd.DataFrame) -> None:
    death = q(db, f"select person_id, death_date from {t(db, 'death')}")
    m = truth.merge(death, on="person_id", how="left", suffixes=("", "_cdm"))
    assert (
        pd.to_datetime(m["death_date"]).fillna(pd.Timestamp(0))
        == pd.to_datetime(m["death_date_cdm"]).fillna(pd.Timestamp(0))
    ).all()
    assert m["death_date"].notna().sum() > 0


def test_truth_relapse_and_salvage_have_their_records(db: Database, truth: pd.DataFrame) -> None:
    relapse = v.descendants(v.ALL_RELAPSE) | {v.ALL_REFRACTORY}
    src = {v.ICD10CM_C91_02, v.ICD9CM_204_02}
    cond = q(
        db,
        f"select person_id, condition_start_date d from {t(db, 'condition_occurrence')} "
        f"where condition_concept_id in ({_ids(relapse)}) or condition_source_concept_id in ({_ids(src)})",
    )
    cond["d"] = pd.to_datetime(cond["d"])
    coded = truth[
        truth["relapse_coded"].fillna(False).astype(bool) & truth["lineage"].isin(["B", "T"])
    ]
    assert len(coded) > 5
    for _, r in coded.iterrows():
        assert (
            (cond["person_id"] == r["person_id"])
            & (cond["d"] == pd.Timestamp(r["relapse_after_cart_date"]))
        ).any()
    drugs = q(
        db,
        f"select person_id, drug_exposure_start_date d, drug_concept_id c from {t(db, 'drug_exposure')} "
        f"union all select person_id, procedure_date, procedure_concept_id from {t(db, 'procedure_occurrence')} "
        f"where procedure_concept_id in ({_ids(v.descendants(v.CART_THERAPY_PROCEDURE))})",
    )
    drugs["d"] = pd.to_datetime(drugs["d"])
    mab = v.descendants(v.BLINATUMOMAB) | v.descendants(v.INOTUZUMAB)
    tki = set().union(*(v.descendants(x) for x in v.TKI_INGREDIENTS))
    cart = set().union(*(v.descendants(x) for x in v.CD19_CART_INGREDIENTS))
    cart |= v.descendants(v.CART_THERAPY_PROCEDURE)
    salvage = truth[truth["salvage_start_date"].notna()]
    assert len(salvage) > 5
    for _, r in salvage.iterrows():
        day = pd.Timestamp(r["salvage_start_date"])
        mine = drugs[
            (drugs["person_id"] == r["person_id"])
            & (drugs["d"] >= day)
            & (drugs["d"] <= day + pd.Timedelta(days=4))
        ]
        assert len(mine) > 0, r["person_id"]
        used = set(mine["c"])
        if r["salvage_modality"] == "mab":
            assert used & mab
        elif r["salvage_modality"] == "reinfusion":
            assert used & cart
        elif r["salvage_modality"] == "chemo_tki":
            assert used & tki
        else:
            assert not used & (mab | cart | tki)
    # study arms follow the recorded HSCT and relapse dates
    a = truth[truth["expected_in_cohort_a"]]
    plus = a[a["expected_arm_a"] == "HSCT+"]
    gap = (pd.to_datetime(plus["hsct_date"]) - pd.to_datetime(plus["car_t_date"])).dt.days
    assert ((gap > 0) & (gap <= 180)).all()
    assert (plus["hsct_type"] == "allogeneic").all()


def test_every_subset_patient_has_a_diagnosis_record_of_its_disease(
    db: Database, truth: pd.DataFrame
) -> None:
    all_codes = v.descendants(v.ALL)
    all_src = {
        v.ICD10CM_C91_00,
        v.ICD9CM_204_00,
        v.ICD10CM_C91_01,
        v.ICD10CM_C91_02,
        v.ICD9CM_204_01,
        v.ICD9CM_204_02,
    }
    has_all = set(
        q(
            db,
            f"select distinct person_id from {t(db, 'condition_occurrence')} "
            f"where condition_concept_id in ({_ids(all_codes)}) or condition_source_concept_id in ({_ids(all_src)})",
        )["person_id"]
    )
    assert set(truth.loc[truth["has_all"], "person_id"]) <= has_all
    # other diseases never carry an ALL code (except the deprecated legacy concept)
    others = set(truth.loc[truth["lineage"].isin(["AML", "CLL", "DLBCL"]), "person_id"])
    assert others and not others & has_all


# --- determinism ---------------------------------------------------------------------


def test_same_seed_identical_tables_different_seed_different(
    small_cdm: Generated, tmp_path
) -> None:
    again = duckdb_profile_at(tmp_path / "again.duckdb", "again")
    other = duckdb_profile_at(tmp_path / "other.duckdb", "other")
    # a different write-chunk size must not change anything either
    generate(small_params(), again, chunk_blocks=1)
    generate(small_params(seed=12), other)
    with (
        connected(small_cdm.profile, read_only=True) as a,
        connected(again) as b,
        connected(other) as c,
    ):
        for table in GENERATED_TABLES + ("patients", "parameters"):
            schema = "synthetic_truth" if table in ("patients", "parameters") else "cdm"
            assert checksum(a, schema, table) == checksum(b, schema, table), table
        differ = [
            table
            for table in CLINICAL_TABLES
            if checksum(a, "cdm", table) != checksum(c, "cdm", table)
        ]
        assert set(differ) >= set(CLINICAL_TABLES) - {"cdm_source"}
        assert checksum(a, "cdm", "concept") == checksum(c, "cdm", "concept")


def test_no_new_treatment_between_car_t_and_relapse_or_transplant(
    db: Database, truth: pd.DataFrame
) -> None:
    """After the infusion, the only drugs before relapse are supportive (tocilizumab for
    CRS, methylprednisolone for GVHD) or transplant conditioning (days -7..-2 of HSCT), so
    a correct line-of-therapy algorithm sees no new line there."""
    supportive = {v.CLINICAL_DRUG[v.TOCILIZUMAB], v.CLINICAL_DRUG[v.METHYLPREDNISOLONE]}
    drugs = q(
        db,
        f"select person_id, drug_exposure_start_date d, drug_concept_id c from {t(db, 'drug_exposure')}",
    )
    drugs["d"] = pd.to_datetime(drugs["d"])
    m = drugs.merge(truth[truth["car_t_date"].notna()], on="person_id")
    after = m["d"] > pd.to_datetime(m["car_t_date"])
    before_relapse = m["relapse_after_cart_date"].isna() | (
        m["d"] < pd.to_datetime(m["relapse_after_cart_date"])
    )
    conditioning = m["hsct_date"].notna() & (
        m["d"] >= pd.to_datetime(m["hsct_date"]) - pd.Timedelta(days=8)
    )
    stray = m[after & before_relapse & ~conditioning & ~m["c"].isin(supportive)]
    assert stray.empty, stray.head()


def test_vocabulary_tables_are_the_package_csv_files(db: Database) -> None:
    """The CDM's vocabulary is exactly the package data (read here by pandas, not by the
    module's own reader): every row of every file, no more."""
    folder = v._data_folder()
    for table in v.VOCABULARY_FILES:
        with (folder / f"{table}.csv").open(encoding="utf-8") as handle:
            expected = pd.read_csv(
                handle, sep="\t", dtype=str, keep_default_na=False, quoting=3
            ).drop(columns=[v.SOURCE_COLUMN], errors="ignore")
        got = q(db, f"select * from {t(db, table)}")
        assert list(got.columns) == list(expected.columns), table
        for column in got.columns:
            if column.endswith("_date"):
                got[column] = pd.to_datetime(got[column]).dt.strftime("%Y%m%d")
            got[column] = got[column].map(lambda x: "" if pd.isna(x) else str(x))
        key = list(got.columns)
        assert len(got) == len(expected) > 0, table
        pd.testing.assert_frame_equal(
            got.sort_values(key).reset_index(drop=True),
            expected.sort_values(key).reset_index(drop=True),
            obj=table,
        )
