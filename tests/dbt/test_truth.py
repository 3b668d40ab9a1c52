"""The cohorts agree with the synthetic CDM's ground truth, person by person.

Truth comes from the generator (``synthetic_truth.patients``), written by a different
module from a simulated history, not from these models. Every remaining disagreement is
explained by a documented rule and asserted exactly:

R1 (non-responders): a CAR-T non-responder gets an ALL-refractory code at the response
   assessment (day 27-33); the models date progression at that first refractory code,
   the generator at its simulated progression day (28-45, coded or not; none when
   follow-up ends first). Our date equals the first refractory code after the infusion.
R2 (uncoded relapse): 10% of relapses carry no relapse code; the models then see the
   relapse only when the salvage line starts, so the relapse date equals the truth's
   salvage start (and there is no relapse when no salvage line follows).
R3 (study B population): persons with an autologous HSCT after CAR-T (generator category
   auto_hsct) who relapse and receive salvage are in our study B cohort; the generator's
   expected_in_cohort_b flag counts category core only. Nothing in the published design
   excludes them.
R4 (relapse site / CD19 without a relapse code): site and CD19 evidence is recorded with
   the relapse code; when the relapse is uncoded (R2) both are 'unknown' in the mart.
R6 (response not observable): CAR-T response (remission code, MRD) is assessed on day
   26-32; when follow-up ends first, the generator's simulated response is not in the CDM.
R5 (repeated regimen without a relapse code): when a relapse before CAR-T is documented
   only by a detected-MRD measurement (generator rr_evidence 'lines') and the same salvage
   regimen is given twice within the 120-day gap, DESIGN.md's rule (no new agent, no gap)
   makes it one line: prior_lines is one less than the generator's count.
"""

from __future__ import annotations

import pandas as pd
import pytest
from tests.dbt.conftest import BuiltCdm

from cohort_etl.db import connected
from cohort_etl.synthetic import vocabulary as v

MODALITY = {
    "reinfusion": "cart_reinfusion",
    "mab": "monoclonal_antibody",
    "chemo_tki": "chemotherapy_tki",
    "chemo": "chemotherapy",
}
SITE = {"marrow": "bone_marrow", "cns": "cns", "emd": "extramedullary", "unknown": "unknown"}

pytestmark = pytest.mark.slow


def _frames(built: BuiltCdm) -> dict[str, pd.DataFrame]:
    results = built.profile.settings.results_schema
    truth = built.profile.settings.truth_schema
    cdm = built.profile.settings.cdm_schema
    with connected(built.profile) as db:
        results, truth, cdm = (db.schema_ref(x) for x in (results, truth, cdm))
        return {
            "truth": db.query_df(f"select * from {truth}.patients"),
            "a": db.query_df(f"select * from {results}.analysis_hsct_after_cart"),
            "b": db.query_df(f"select * from {results}.analysis_salvage_after_relapse"),
            "refractory": db.query_df(
                f"select person_id, condition_start_date as d from {cdm}.condition_occurrence "
                f"where condition_concept_id = {v.ALL_REFRACTORY}"
            ),
        }


def _same(left: pd.Series, right: pd.Series) -> pd.Series:
    left = pd.to_datetime(left)
    right = pd.to_datetime(right)
    return (left == right) | (left.isna() & right.isna())


@pytest.fixture(scope="module", params=["synthetic_seed1", "synthetic_seed7"])
def frames(request: pytest.FixtureRequest) -> dict[str, pd.DataFrame]:
    return _frames(request.getfixturevalue(request.param))


def test_study_a_cohort_index_arm_hsct_and_death_agree(frames: dict[str, pd.DataFrame]) -> None:
    truth, a = frames["truth"], frames["a"]
    expected = truth[truth["expected_in_cohort_a"]]
    assert len(expected) > 100
    assert sorted(a["person_id"]) == sorted(expected["person_id"])
    m = expected.merge(a, on="person_id", suffixes=("_truth", ""))
    assert _same(m["car_t_date"], m["index_date"]).all()
    arm = m["expected_arm_a"].map({"HSCT+": "hsct_plus", "HSCT-": "hsct_minus"})
    assert (arm == m["arm"]).all()
    assert {"hsct_plus", "hsct_minus"} <= set(m["arm"])
    plus = m[m["arm"] == "hsct_plus"]
    assert _same(plus["hsct_date_truth"], plus["hsct_date"]).all()
    assert _same(m["death_date_truth"], m["death_date"]).all()
    assert _same(m["end_of_followup"], m["end_of_followup_date"]).all()
    # R6: the response is assessed on day 26-32; persons whose follow-up ends before it
    # have a simulated response the CDM cannot show (ours: 0).
    followed = (pd.to_datetime(m["end_of_followup"]) - pd.to_datetime(m["index_date"])).dt.days
    responded = (m["car_t_response"] == "CR").astype(int)
    mrd = m["mrd_negative_after_cart_truth"].fillna(False).astype(int)
    for ours, theirs in ((m["cr_after_cart"], responded), (m["mrd_negative_after_cart"], mrd)):
        differ = ours != theirs
        assert (followed[differ] < 33).all()
        assert (ours[differ] == 0).all()
    assert m["cr_after_cart"].sum() > 0.8 * len(m)
    lines_differ = m[m["prior_lines"] != m["n_lines_before_cart"]]
    assert (lines_differ["rr_evidence"] == "lines").all()  # R5
    assert (lines_differ["prior_lines"] == lines_differ["n_lines_before_cart"] - 1).all()
    assert len(lines_differ) <= 0.05 * len(m)


def test_relapse_after_cart_agrees_except_documented_rules(frames: dict[str, pd.DataFrame]) -> None:
    truth, a, refractory = frames["truth"], frames["a"], frames["refractory"]
    m = truth[truth["expected_in_cohort_a"]].merge(a, on="person_id", suffixes=("_truth", ""))
    agree = _same(m["relapse_after_cart_date"], m["relapse_date"])
    assert agree.mean() > 0.85
    first_refractory = (
        refractory.merge(m[["person_id", "index_date"]], on="person_id")
        .loc[lambda f: pd.to_datetime(f["d"]) > pd.to_datetime(f["index_date"])]
        .groupby("person_id")["d"]
        .min()
    )
    for row in m[~agree].itertuples():
        ours = pd.to_datetime(row.relapse_date)
        theirs = pd.to_datetime(row.relapse_after_cart_date)
        if row.car_t_response == "NR":  # R1
            assert ours == pd.to_datetime(first_refractory[row.person_id])
            if pd.isna(theirs):  # follow-up ended before the simulated progression day
                assert (
                    pd.to_datetime(row.end_of_followup) - pd.to_datetime(row.index_date)
                ).days < 46
            else:
                assert abs((ours - theirs).days) <= 20
            assert 27 <= (ours - pd.to_datetime(row.index_date)).days <= 33
        else:  # R2
            assert row.relapse_coded is False or row.relapse_coded == 0
            assert _same(pd.Series([row.salvage_start_date]), pd.Series([row.relapse_date])).all()


def test_study_b_salvage_modality_cr_and_dates_agree(frames: dict[str, pd.DataFrame]) -> None:
    truth, b = frames["truth"], frames["b"]
    ours = set(b.loc[b["received_salvage"] == 1, "person_id"])
    expected = set(truth.loc[truth["expected_in_cohort_b"], "person_id"])
    assert len(expected) > 20
    assert expected <= ours
    extra = truth[truth["person_id"].isin(ours - expected)]
    assert (extra["category"] == "auto_hsct").all()  # R3
    m = truth[truth["person_id"].isin(expected)].merge(b, on="person_id", suffixes=("_truth", ""))
    assert (m["salvage_modality_truth"].map(MODALITY) == m["salvage_modality"]).all()
    assert _same(m["salvage_start_date_truth"], m["salvage_start_date"]).all()
    assert (m["cr_after_salvage"].fillna(False).astype(int) == m["cr"]).all()
    assert ((m["salvage_targeted_truth"].astype(int)) == m["salvage_targeted"]).all()
    assert _same(m["death_date_truth"], m["death_date"]).all()
    assert _same(m["second_relapse_date_truth"], m["second_relapse_date"]).all()
    assert m["second_relapse_date"].notna().sum() >= 3
    assert set(m["salvage_modality"]) <= set(MODALITY.values())
    assert len(set(m["salvage_modality"])) >= 3


def test_relapse_site_and_cd19_agree_when_relapse_is_coded(frames: dict[str, pd.DataFrame]) -> None:
    truth, b = frames["truth"], frames["b"]
    m = truth[truth["expected_in_cohort_b"]].merge(b, on="person_id", suffixes=("_truth", ""))
    coded = m["relapse_coded"].astype(bool)
    site_ok = m["relapse_site_truth"].map(SITE) == m["relapse_site"]
    cd19_ok = m["cd19_status_truth"] == m["cd19_status"]
    assert site_ok[coded].all()
    assert cd19_ok[coded].all()
    assert (m.loc[~coded, "relapse_site"] == "unknown").all()  # R4
    assert (m.loc[~coded, "cd19_status"] == "unknown").all()
    assert {"bone_marrow", "cns"} <= set(m["relapse_site"])
