"""`cohort-etl concept-sets resolve` and the dbt build resolve concept sets with the same
SQL (dbt_project/macros/circe.sql): on the same CDM they give the same concepts, matched
against the same column. Circe semantics themselves are tested in tests/concept_sets."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.dbt.conftest import BuiltCdm

from cohort_etl.concept_sets.registry import load_concept_sets
from cohort_etl.concept_sets.resolve import CIRCE_MACROS, resolve
from cohort_etl.config import project_root
from cohort_etl.db import connected

COLUMNS = ["concept_set_name", "concept_id", "vocabulary_id", "concept_code", "match_column"]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[COLUMNS].astype({"concept_id": "int64"}).astype(str)
    return out.sort_values(COLUMNS).reset_index(drop=True)


@pytest.mark.slow
def test_python_resolution_equals_the_built_concept_sets(synthetic_seed1: BuiltCdm) -> None:
    sets = load_concept_sets()
    with connected(synthetic_seed1.profile) as db:
        python = resolve(db, sets, "cdm").concepts
        built = db.query_df(f"select * from {db.table_ref('results', 'concept_set_concepts')}")
    assert len(built) > 100
    assert set(built["concept_set_name"]) <= {s.name for s in sets}
    pd.testing.assert_frame_equal(_sorted(python), _sorted(built))


def test_both_sides_use_the_one_macro_file() -> None:
    models = project_root() / "dbt_project" / "models" / "concept_sets"
    assert "circe_item_concepts(" in (models / "concept_set_item_concepts.sql").read_text()
    assert "circe_concepts(" in (models / "concept_set_concepts.sql").read_text()
    assert project_root().joinpath(*CIRCE_MACROS).is_file()
