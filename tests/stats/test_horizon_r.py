"""One horizon policy, R's: survival at a horizon past an arm's last follow-up time is
``summary(survfit, times, extend = TRUE)``'s carried-forward value with n.risk 0, flagged
as beyond follow-up; the headline does not present it as an estimate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.stats.r_oracle import run_r

from cohort_etl.engine import Study
from cohort_etl.engine.results import TimeToEventResult
from cohort_etl.report.study import write_outputs
from cohort_etl.studies.spec import StudySpec

# two arms; each arm's last follow-up time is a censoring (b: at day 40, a: at day 75),
# so the day-60 horizon is within a's follow-up and beyond b's, day 100 beyond both
DATA = pd.DataFrame(
    {
        "arm": ["a"] * 8 + ["b"] * 7,
        "days": [5, 12, 12, 20, 33, 41, 58, 75, 3, 9, 9, 15, 22, 30, 40],
        "died": [1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0],
    }
)
HORIZONS = [10, 30, 60, 100]


@pytest.mark.r_oracle
def test_horizon_beyond_follow_up_is_rs_extend_value(tmp_path: Path) -> None:
    r = run_r(
        """
        library(survival)
        fit <- survfit(Surv(days, died) ~ arm, data = d, conf.type = "log")
        s <- summary(fit, times = c(10, 30, 60, 100), extend = TRUE)
        result <- list(strata = as.character(s$strata), time = s$time, n_risk = s$n.risk,
                       n_event = s$n.event, n_censor = s$n.censor, surv = s$surv,
                       std_err = s$std.err, lower = s$lower, upper = s$upper)
        """,
        {"d": DATA},
    )
    spec = StudySpec.model_validate(
        {
            "name": "horizon",
            "title": "Horizon beyond follow-up",
            "arms": {"column": "arm", "treated": "a", "control": "b"},
            "matching": {"preset": "none"},
            "outcomes": [
                {"name": "os", "type": "time_to_event", "label": "OS", "time": "days",
                 "event": "died", "horizons_days": HORIZONS}
            ],
            "min_cell_count": 1,
        }
    )  # fmt: skip
    result = Study(spec).run(DATA)
    out = result.results.outcomes["os"]
    assert isinstance(out, TimeToEventResult)
    strata = np.asarray(r["strata"])
    ends = {"a": 75.0, "b": 40.0}
    for arm in ("a", "b"):
        rows = out.per_arm[arm].at_horizons
        in_r = strata == f"arm={arm}"
        assert [row.time for row in rows] == list(np.asarray(r["time"])[in_r])
        for key in ("n_risk", "n_event", "n_censor", "surv", "std_err", "lower", "upper"):
            ours = np.array([getattr(row, key) for row in rows], dtype=float)
            np.testing.assert_allclose(ours, np.asarray(r[key], dtype=float)[in_r], rtol=1e-10)
        for row in rows:
            assert row.follow_up_ends == ends[arm]
            assert row.beyond_follow_up == (row.time > ends[arm])
            if row.beyond_follow_up:
                assert row.n_risk == 0
    assert [r.beyond_follow_up for r in out.per_arm["b"].at_horizons] == [0, 0, 1, 1]
    write_outputs(spec, result, tmp_path, {})
    lines = {h.result: h.estimate for h in result.results.headline}
    assert lines["day-60 OS (Kaplan-Meier)"].endswith(
        "a vs not estimable: follow-up ends at day 40 b"
    )
    assert "%" in lines["day-60 OS (Kaplan-Meier)"].split(" vs ")[0]
    assert lines["day-100 OS (Kaplan-Meier)"] == (
        "not estimable: follow-up ends at day 75 a vs not estimable: follow-up ends at day 40 b"
    )
