"""The harness's shortcut gives the same study-A data set as CDM -> dbt -> mart.

For two generator seeds (two subset sizes) the CDM is written and built with dbt, and the
mart ``analysis_hsct_after_cart`` is compared, person by person and column by column, with
:func:`cohort_etl.designs.simulation.draw_study_a` of the same parameters: identical
except ``prior_lines`` (at most 1% of persons; see the test).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import duckdb_profile_at
from tests.dbt.conftest import generate_and_build

from cohort_etl.db import connected
from cohort_etl.designs.simulation import COLUMNS, draw_study_a
from cohort_etl.synthetic.params import SynthParams

pytestmark = pytest.mark.slow

CASES = {
    "seed7_small": dict(seed=7, persons=500, n_core=200, n_all_no_cart=100, n_dlbcl=20),
    "seed3_default_subset": dict(seed=3, persons=500),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_drawn_cohort_equals_the_mart(tmp_path: Path, case: str) -> None:
    sizes = dict(CASES[case])
    profile = duckdb_profile_at(tmp_path / "cdm.duckdb", case)
    generate_and_build(profile, **sizes)  # type: ignore[arg-type]
    with connected(profile, read_only=True) as db:
        ref = db.table_ref(profile.settings.results_schema, "analysis_hsct_after_cart")
        mart = db.query_df(f"select * from {ref}")
    drawn = draw_study_a(SynthParams(**sizes), truth_n=1_000).data  # type: ignore[arg-type]
    assert len(mart) > 100
    m = mart.set_index("person_id").sort_index()
    d = drawn.set_index("person_id").sort_index()
    assert list(m.index) == list(d.index)
    for col in COLUMNS[1:]:
        a, b = m[col], d[col]
        if col.endswith("_date"):
            a, b = pd.to_datetime(a), pd.to_datetime(b)
        same = (a == b) | (a.isna() & b.isna())
        if col == "prior_lines":
            # the mart counts lines with the regimen algorithm on the recorded drug rows,
            # the draw takes the generator's number of lines: rare disagreements (1 of
            # 440 persons for seed 3) are accepted and counted here
            assert (~same).sum() <= 0.01 * len(same), f"{col}: {int((~same).sum())} differ"
            continue
        assert same.all(), f"{col}: {int((~same).sum())} persons differ, e.g. {a[~same].head(3)}"
