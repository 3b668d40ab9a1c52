"""Report helpers a clinician reads: units, test names, labels, Table 1 (hand-computed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cohort_etl.report.clinical import (
    duration,
    duration_range,
    label,
    level_label,
    stat_test_name,
    table_one,
)


def test_months_are_30_4375_days() -> None:
    # the seed's median OS 8.6 months (95% CI 4.2-13.1) is 262 days (128-399 days)
    assert duration(262, "months") == "8.6 months"
    assert duration_range(128, 399, "months") == "4.2–13.1 months"
    assert duration(262) == "262 days"
    assert duration(None, "months") == "not reached"
    assert duration_range(128, None, "months") == "4.2–not reached months"


def test_test_names() -> None:
    assert stat_test_name("pearson-chi-square-yates") == "Yates-corrected chi-square"
    assert stat_test_name("fisher-exact") == "Fisher's exact test"
    assert stat_test_name("pearson-chi-square") == "Pearson chi-square"


def test_labels_from_the_spec_else_from_the_name() -> None:
    labels = {"salvage_targeted": "Targeted salvage", "race.asian": "Asian (race)"}
    assert label("salvage_targeted", labels) == "Targeted salvage"
    assert label("age_at_relapse") == "Age at relapse"
    assert label("distance") == "propensity score"
    assert level_label("race", "asian", labels) == "Race: Asian (race)"
    assert level_label("race", "black") == "Race: Black"


def test_table_one_counts_percentages_means_and_sds() -> None:
    data = pd.DataFrame(
        {
            "age": [10.0, 20.0, 30.0, 40.0, 60.0],
            "female": [1, 1, 0, 0, 1],
            "race": ["white", "asian", "white", "white", "asian"],
        }
    )
    treated = np.array([True, True, True, False, False])
    weights = np.array([1.0, 1.0, 0.0, 1.0, 1.0])  # person 3 unmatched
    t1 = table_one(
        data, treated, ["age", "female", "race"], weights, arm_labels=("HSCT+", "HSCT-")
    ).set_index("Characteristic")
    assert t1.loc["Patients, n", "HSCT+, before matching"] == "3"
    assert t1.loc["Patients, n", "HSCT+, after matching"] == "2"
    assert t1.loc["Age, mean (SD)", "HSCT+, before matching"] == "20.0 (10.0)"
    assert t1.loc["Age, mean (SD)", "HSCT+, after matching"] == "15.0 (7.1)"
    assert t1.loc["Age, mean (SD)", "HSCT-, before matching"] == "50.0 (14.1)"
    assert t1.loc["Female, n (%)", "HSCT+, before matching"] == "2 (66.7%)"
    assert t1.loc["Female, n (%)", "HSCT+, after matching"] == "2 (100.0%)"
    assert t1.loc["Female, n (%)", "HSCT-, after matching"] == "1 (50.0%)"
    assert t1.loc["Race: Asian, n (%)", "HSCT-, before matching"] == "1 (50.0%)"
    assert t1.loc["Race: White, n (%)", "HSCT+, before matching"] == "2 (66.7%)"
