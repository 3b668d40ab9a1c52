"""Target-trial emulation (clone-censor-weight) with 500 bootstrap replicates.

* demo: study A of the demo CDM (seed 42, 440 persons; the cohort is drawn from the
  generator's natural-history model, which tests/designs/test_simulation_vs_mart.py shows
  equals the dbt mart); target <= 30 s;
* 100,000 eligible persons: the demo cohort resampled with replacement (seeded) to 100,000
  persons with new ids and each person's dates shifted by a random whole number of days
  of 0-3 (later), so ties and covariate patterns are realistic but not duplicated; target <= 5 min.

Wall time of :func:`cohort_etl.designs.target_trial.run_target_trial` only (data
preparation excluded), in a fresh process with its peak RSS.
"""

from __future__ import annotations

from pathlib import Path

from bench.memory import run_measured

ROOT = Path(__file__).resolve().parent.parent
N_BOOT = 500

CHILD = """
import sys, time
sys.path.insert(0, {root!r})
import numpy as np, pandas as pd
from cohort_etl.designs.simulation import draw_study_a
from cohort_etl.designs.harness import TT_COVARIATES
from cohort_etl.designs.target_trial import TargetTrialOptions, clone_data_from_frame, run_target_trial
from cohort_etl.synthetic.params import SynthParams
frame = draw_study_a(SynthParams(seed=42), truth_n=1_000).data
n = {n}
if n:
    rng = np.random.default_rng(20261130)
    frame = frame.iloc[rng.integers(0, len(frame), n)].reset_index(drop=True)
    shift = pd.to_timedelta(rng.integers(0, 4, n), unit="D")
    for col in ("hsct_date", "allo_hsct_any_date", "relapse_date", "death_date",
                "end_of_followup_date"):
        frame[col] = pd.to_datetime(frame[col]) + shift
    frame["person_id"] = np.arange(1, n + 1)
data = clone_data_from_frame(
    frame, exposure_any_col="allo_hsct_any_date", covariates=TT_COVARIATES
)
t0 = time.perf_counter()
res = run_target_trial(data, TargetTrialOptions(n_boot={n_boot}))
__extra['fit_seconds'] = time.perf_counter() - t0
__extra['persons'] = data.n
__extra['hr'] = res.hr
__extra['hr_ci'] = [res.hr_lower, res.hr_upper]
"""


def _one(name: str, n: int, target: float, n_boot: int = N_BOOT) -> dict[str, object]:
    out = run_measured(CHILD.format(root=str(ROOT / "src"), n=n, n_boot=n_boot))
    return {
        "name": name,
        "seconds": round(float(out["fit_seconds"]), 2),
        "peak_rss_mb": out.get("peak_rss_mb"),
        "target": f"<= {target:g} s",
        "persons": out["persons"],
        "bootstrap_replicates": n_boot,
        "hr": round(float(out["hr"]), 4),
        "hr_ci": [round(float(x), 4) for x in out["hr_ci"]],
    }


def run() -> list[dict[str, object]]:
    return [
        _one("target_trial_demo_500_bootstrap", 0, 30),
        _one("target_trial_100k_500_bootstrap", 100_000, 300),
    ]
