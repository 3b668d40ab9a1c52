"""Simulation harness: target-trial, published-design and landmark estimates against the
generator's counterfactual truth over many generator seeds.

Run as ``python -m cohort_etl.designs.harness --seeds 200 --out FILE`` (one JSON line per
seed, resumable: seeds already in FILE are skipped) and summarise with ``--summary``.
The study-A cohorts come from :func:`cohort_etl.designs.simulation.draw_study_a`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from cohort_etl.designs.immortal_time import immortal_time_check
from cohort_etl.designs.landmark import landmark_cox
from cohort_etl.designs.simulation import draw_study_a
from cohort_etl.designs.target_trial import (
    TargetTrialOptions,
    clone_data_from_frame,
    run_target_trial,
)
from cohort_etl.errors import NotEstimable
from cohort_etl.outcomes.cox import CoxPH
from cohort_etl.synthetic.params import SynthParams

#: censoring-model covariates (baseline and day-28 response) used by the harness
TT_COVARIATES = [
    "age_at_index",
    "prior_lines",
    "ph_positive",
    "mrd_negative_after_cart",
    "cr_after_cart",
]
#: propensity covariates of the published (TriNetX-style) design
PSM_COVARIATES = ["age_at_index", "female", "ph_positive", "prior_lines"]
LANDMARK_DAY = 100.0


def _published(frame: Any, data: Any, seed: int) -> dict[str, Any]:
    """HSCT+ (transplant within the window) vs HSCT-, 1:1 PSM (TriNetX preset), Cox HR."""
    from cohort_etl.matching.presets import run_matching

    df = frame.assign(
        treated=frame["hsct_date"].notna().astype(int),
        _time=data.time,
        _event=data.event.astype(int),
    )
    run = run_matching(df, "treated", PSM_COVARIATES, preset="trinetx", seed=seed)
    m = run.matched_data
    fit = CoxPH().fit(m["_time"], m["_event"], m[["treated"]])
    b, se = float(fit.coef_[0]), float(fit.se_[0])
    check = immortal_time_check(
        df["treated"].to_numpy(),
        np.where(df["treated"] == 1, data.exposure, 0.0),
        data.time,
        data.event,
    )
    return {
        "log_hr": b,
        "lower": b - 1.959963984540054 * se,
        "upper": b + 1.959963984540054 * se,
        "immortal_time_flag": check.flagged,
    }


def one_seed(seed: int, n_boot: int = 500, truth_n: int = 100_000) -> dict[str, Any]:
    """Every estimate and the truth for generator seed ``seed``."""
    t0 = time.perf_counter()
    draw = draw_study_a(SynthParams(seed=seed), truth_n=truth_n)
    assert draw.truth.strategy is not None
    truth = math.log(draw.truth.strategy.os_hr)
    truth_fu = math.log(draw.truth.strategy.os_hr_study_followup)
    data = clone_data_from_frame(
        draw.data, exposure_any_col="allo_hsct_any_date", covariates=TT_COVARIATES
    )
    out: dict[str, Any] = {
        "seed": seed,
        "n": data.n,
        "n_boot": n_boot,
        "truth_n": truth_n,
        "truth_log_hr": truth,
        "truth_log_hr_study_followup": truth_fu,
    }
    tt = run_target_trial(data, TargetTrialOptions(n_boot=n_boot, seed=seed))
    assert tt.hr_lower is not None and tt.hr_upper is not None
    tt_check = immortal_time_check(
        np.ones(2 * data.n),
        np.zeros(2 * data.n),
        np.r_[data.time, data.time],
        np.r_[data.event, data.event],
    )
    out["tt"] = {
        "log_hr": math.log(tt.hr),
        "lower": math.log(tt.hr_lower),
        "upper": math.log(tt.hr_upper),
        "immortal_time_flag": tt_check.flagged,
        "surv_5y_diff": tt.survival_difference[-1],
        "surv_5y_diff_lower": tt.survival_difference_lower[-1],
        "surv_5y_diff_upper": tt.survival_difference_upper[-1],
        "surv_1y_diff": tt.survival_difference[0],
    }
    try:
        out["published"] = _published(draw.data, data, seed)
    except NotEstimable as exc:
        out["published"] = {"error": str(exc)}
    try:
        lm = landmark_cox(data, [LANDMARK_DAY], relapse_free=True)
        out["landmark"] = {
            "log_hr": math.log(lm.hr),
            "lower": math.log(lm.hr_lower),
            "upper": math.log(lm.hr_upper),
        }
    except NotEstimable as exc:
        out["landmark"] = {"error": str(exc)}
    out["truth_surv_1y_diff"] = (
        draw.truth.strategy.os_survival[(1, "within_grace")]
        - draw.truth.strategy.os_survival[(1, "never")]
    )
    out["truth_surv_5y_diff"] = (
        draw.truth.strategy.os_survival[(5, "within_grace")]
        - draw.truth.strategy.os_survival[(5, "never")]
    )
    out["seconds"] = time.perf_counter() - t0
    return out


def _bias(rows: list[dict[str, Any]], key: str, truth: str) -> dict[str, Any]:
    bias = np.array([r[key]["log_hr"] - r[truth] for r in rows])
    cover = np.array([r[key]["lower"] <= r[truth] <= r[key]["upper"] for r in rows])
    n = len(rows)
    return {
        "mean_bias_log_hr": float(bias.mean()),
        "mc_se_bias": float(bias.std(ddof=1) / math.sqrt(n)) if n > 1 else None,
        "coverage": float(cover.mean()),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean bias of the log HR, 95% CI coverage and flag rates per design, against the
    5-year strategy truth and against the truth under the study's follow-up."""
    out: dict[str, Any] = {"seeds": len(rows)}
    for key in ("tt", "published", "landmark"):
        ok = [r for r in rows if "log_hr" in r.get(key, {})]
        if not ok:
            continue
        out[key] = {
            "n": len(ok),
            "mean_hr": float(np.exp(np.mean([r[key]["log_hr"] for r in ok]))),
            "vs_truth_5y": _bias(ok, key, "truth_log_hr"),
        }
        if all("truth_log_hr_study_followup" in r for r in ok):
            out[key]["vs_truth_study_followup"] = _bias(ok, key, "truth_log_hr_study_followup")
        flags = [r[key]["immortal_time_flag"] for r in ok if "immortal_time_flag" in r[key]]
        if flags:
            out[key]["immortal_time_flag_rate"] = float(np.mean(flags))
    tt = [r for r in rows if "surv_5y_diff_lower" in r.get("tt", {})]
    if tt:
        d = np.array([r["tt"]["surv_5y_diff"] - r["truth_surv_5y_diff"] for r in tt])
        cover = [
            r["tt"]["surv_5y_diff_lower"]
            <= r["truth_surv_5y_diff"]
            <= r["tt"]["surv_5y_diff_upper"]
            for r in tt
        ]
        out["tt"]["surv_5y_difference"] = {
            "mean_bias": float(d.mean()),
            "mc_se_bias": float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else None,
            "coverage": float(np.mean(cover)),
            "mean_truth": float(np.mean([r["truth_surv_5y_diff"] for r in tt])),
        }
    out["mean_truth_hr"] = float(np.exp(np.mean([r["truth_log_hr"] for r in rows])))
    if all("truth_log_hr_study_followup" in r for r in rows):
        out["mean_truth_hr_study_followup"] = float(
            np.exp(np.mean([r["truth_log_hr_study_followup"] for r in rows]))
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cohort_etl.designs.harness")
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--n-boot", type=int, default=500)
    ap.add_argument("--truth-n", type=int, default=100_000)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--summary", action="store_true")
    args = ap.parse_args(argv)
    done: dict[int, dict[str, Any]] = {}
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["seed"]] = row
    if not args.summary:
        with args.out.open("a") as fh:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                if seed in done:
                    continue
                row = one_seed(seed, n_boot=args.n_boot, truth_n=args.truth_n)
                done[seed] = row
                fh.write(json.dumps(row) + "\n")
                fh.flush()
    rows = [done[s] for s in sorted(done)]
    print(json.dumps(summarise(rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
