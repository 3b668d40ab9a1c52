"""The analysis engine behind ``cohort-etl analyze``: an analysis spec on any dataset.

Writes to ``--out``: ``results.json`` (schema: docs/results_schema.md), ``balance.csv``
and ``matched_data.csv`` (the matched rows with ``set_id``, ``match_weight``, ``ps`` and
``logit_ps``; with matching preset ``none`` every compared row with ``set_id`` 0).

Bad input (missing columns, non-numeric or negative times, events not coded 0/1) is a
one-line error. A statistic that cannot be computed (one arm empty, no match within the
caliper, separation in the PS model, no events) is written as not estimable with the
reason, in ``results["not_estimable"]`` and next to the estimate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohort_etl.analysis_spec import (
    AnalysisSpec,
    BinaryOutcome,
    MatchingSpec,
    TimeToEventOutcome,
)
from cohort_etl.errors import CohortEtlError, InputDataError, NotEstimable
from cohort_etl.outcomes.summary import (
    cox_dict,
    json_safe,
    logrank_dict,
    proportions_dict,
    stat_test_dict,
)

SCHEMA_VERSION = 1
TREAT = "_treated"


# ----------------------------------------------------------------------------- data
def read_dataset(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet analysis dataset (by suffix)."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: analysis dataset not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise InputDataError(f"{path}: cannot be read: {exc}") from None
    raise InputDataError(f"{path}: unsupported file type {suffix!r} (use .csv or .parquet)")


def _numeric(data: pd.DataFrame, column: str, what: str) -> np.ndarray:
    raw = data[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = int((values.isna() & raw.notna()).sum())
    if bad:
        raise InputDataError(f"{what} column {column!r} has {bad} non-numeric value(s)")
    missing = int(values.isna().sum())
    if missing:
        raise InputDataError(f"{what} column {column!r} has {missing} missing value(s)")
    return values.to_numpy(dtype=float)


def _zero_one(data: pd.DataFrame, column: str, what: str) -> np.ndarray:
    x = _numeric(data, column, what)
    bad = int((~np.isin(x, [0.0, 1.0])).sum())
    if bad:
        raise InputDataError(f"{what} column {column!r} must be coded 0/1 ({bad} other value(s))")
    return x.astype(np.int64)


def validate_dataset(spec: AnalysisSpec, data: pd.DataFrame, source: str) -> None:
    """Check columns and outcome coding before any statistic is computed."""
    missing = [c for c in spec.required_columns() if c not in data.columns]
    if missing:
        raise InputDataError(f"{source}: column(s) named in the spec are missing: {missing}")
    for o in spec.outcomes:
        if isinstance(o, TimeToEventOutcome):
            t = _numeric(data, o.time, f"outcome {o.name!r} time")
            if not np.all(np.isfinite(t)):
                raise InputDataError(f"outcome {o.name!r} time column {o.time!r} is not finite")
            neg = int((t < 0).sum())
            if neg:
                raise InputDataError(
                    f"outcome {o.name!r} time column {o.time!r} has {neg} negative value(s)"
                )
            _zero_one(data, o.event, f"outcome {o.name!r} event")
        else:
            _zero_one(data, o.column, f"outcome {o.name!r}")


def select_arms(spec: AnalysisSpec, data: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows in either arm with a 0/1 ``_treated`` column; also the number left out."""
    tr = spec.treatment
    col = data[tr.column]

    def hits(value: object) -> pd.Series:
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and pd.api.types.is_numeric_dtype(col.dtype):
            return col == value
        return col.astype(str) == str(value)

    is_t, is_c = hits(tr.treated), hits(tr.control)
    keep = (is_t | is_c).to_numpy()
    out = data.loc[keep].copy()
    out[TREAT] = is_t.to_numpy()[keep].astype(np.int64)
    return out.reset_index(drop=True), int((~keep).sum())


# ----------------------------------------------------------------------- results
@dataclass
class MatchedArms:
    """What :func:`match_arms` found: the matched rows (None when matching was not
    possible), the matching summary for results.json, the balance table, the propensity
    scores of every input row, and not-estimable flags ``{section, reason}``."""

    matched: pd.DataFrame | None
    info: dict[str, Any]
    balance: pd.DataFrame | None = None
    ps: np.ndarray | None = None
    flags: list[dict[str, str]] = field(default_factory=list)


def match_arms(
    data: pd.DataFrame,
    covariates: list[str],
    matching: MatchingSpec,
    *,
    categorical: list[str] | None = None,
    labels: tuple[str, str] = ("treated", "control"),
) -> MatchedArms:
    """Propensity model + matching + balance on rows with a 0/1 ``_treated`` column.

    An empty arm, a propensity model that is not estimable (separation) or no pair within
    the caliper give ``matched=None`` and a flag; bad data (missing values, a constant
    covariate) raise :class:`InputDataError` naming the column.
    """
    from cohort_etl.matching import balance_table, run_matching

    m = matching
    n1 = int(data[TREAT].sum())
    n0 = len(data) - n1
    info: dict[str, Any] = {"preset": m.preset, "n_before": {"treated": n1, "control": n0}}
    if m.preset == "none":
        info["n_after"] = info["n_before"]
        balance = None
        if covariates and n1 and n0:
            balance = balance_table(data, TREAT, covariates, categorical=categorical or [])
            info["balance"] = balance.to_dict(orient="records")
        return MatchedArms(data.assign(set_id=0, match_weight=1.0), info, balance)
    if n1 == 0 or n0 == 0:
        empty = labels[0] if n1 == 0 else labels[1]
        return MatchedArms(
            None, info, flags=[{"section": "matching", "reason": f"no persons in arm {empty!r}"}]
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = run_matching(
                data,
                TREAT,
                covariates,
                preset=m.preset,
                seed=m.seed,
                propensity_overrides={
                    **m.propensity_overrides(),
                    **({"categorical": categorical} if categorical else {}),
                },
                matcher_overrides=m.matcher_overrides(),
            )
    except NotEstimable as exc:  # bad input (InputDataError) is raised, not recorded
        reason = f"propensity model / matching not estimable: {exc}"
        return MatchedArms(None, info, flags=[{"section": "matching", "reason": reason}])
    model, res = run.model, run.result
    diag = model.diagnostics_
    info.update(
        {
            "settings": run.settings,
            "caliper_absolute": res.caliper,
            "n_after": {"treated": res.n_treated_matched, "control": res.n_control_matched},
            "n_sets": int((res.match_matrix >= 0).any(axis=1).sum()),
            "reason": res.reason,
            "propensity_model": {
                "method": model.method_,
                "lambda": model.lambda_,
                "converged": model.converged_,
                "coefficients": model.coef_.to_dict(),
                "auc": diag.auc,
                "equipoise": diag.equipoise,
                "treated_share": diag.treated_share,
                "warnings": sorted({*diag.warnings, *(str(w.message) for w in caught)}),
            },
            "max_abs_smd_before": float(run.balance["smd_before"].abs().max()),
            "max_abs_smd_after": float(run.balance["smd_after"].abs().max()),
            "smd_method": "matchit" if m.preset.startswith("matchit") else "pooled",
            "balance": run.balance.to_dict(orient="records"),
        }
    )
    got = MatchedArms(run.matched_data, info, run.balance, np.asarray(model.ps_))
    if res.reason:
        got.matched = None
        got.flags.append({"section": "matching", "reason": res.reason})
    return got


class _Analysis:
    def __init__(self, spec: AnalysisSpec) -> None:
        self.spec = spec
        self.not_estimable: list[dict[str, str]] = []

    def flag(self, section: str, reason: str) -> None:
        self.not_estimable.append({"section": section, "reason": reason})

    def arm(self, treated: int) -> str:
        return self.spec.treatment.label(bool(treated))

    # -------------------------------------------------------------- matching
    def match(self, data: pd.DataFrame) -> tuple[pd.DataFrame | None, dict[str, Any]]:
        spec = self.spec
        got = match_arms(
            data,
            list(spec.covariates),
            spec.matching,
            categorical=list(spec.categorical),
            labels=(self.arm(1), self.arm(0)),
        )
        self.not_estimable.extend(got.flags)
        if got.balance is not None:
            self.balance = got.balance
        return got.matched, got.info

    # -------------------------------------------------------------- outcomes
    def time_to_event(self, o: TimeToEventOutcome, data: pd.DataFrame, where: str) -> dict:
        from cohort_etl.outcomes.cox import CoxPH
        from cohort_etl.outcomes.km import KaplanMeier
        from cohort_etl.outcomes.logrank import logrank_test

        t = data[o.time].to_numpy(dtype=float)
        e = data[o.event].to_numpy(dtype=float)
        arm = data[TREAT].to_numpy()
        out: dict[str, Any] = {"per_arm": {}}
        for value in (1, 0):
            sel = arm == value
            label = self.arm(value)
            if not sel.any():
                self.flag(f"{where}:{o.name}", f"no persons in arm {label!r}")
                continue
            out["per_arm"][label] = self._km(KaplanMeier(conf_type=o.conf_type), t[sel], e[sel], o)
        if len(out["per_arm"]) < 2:
            return out
        if e.sum() == 0:
            self.flag(f"{where}:{o.name}", "no events in either arm: no comparison")
            return out
        lr = logrank_test(t, e, arm)
        out["logrank"] = logrank_dict(lr)
        x = pd.DataFrame({"treated": arm.astype(float)})
        fits: list[tuple[str, dict[str, Any]]] = [("cox", {})]
        if "set_id" in data and data["set_id"].nunique() > 1 and where == "matched":
            if self.spec.matching.replace:
                fits.append(("cox_robust_sets", {"cluster": data["set_id"].to_numpy()}))
            else:
                fits.append(("cox_stratified_sets", {"strata": data["set_id"].to_numpy()}))
                fits.append(("cox_robust_sets", {"cluster": data["set_id"].to_numpy()}))
        for key, extra in fits:
            try:
                r = CoxPH().fit(t, e, x, **extra).result_
            except CohortEtlError as exc:
                out[key] = {"estimable": False, "reason": str(exc)}
                self.flag(f"{where}:{o.name}:{key}", str(exc))
                continue
            out[key] = cox_dict(r)
        return out

    @staticmethod
    def _km(km: Any, t: np.ndarray, e: np.ndarray, o: TimeToEventOutcome) -> dict[str, Any]:
        km.fit(t, e)
        med = km.median()
        summary: dict[str, Any] = {
            "n": len(t),
            "events": int(e.sum()),
            "median": {
                "time": med.time,
                "lower": med.lower,
                "upper": med.upper,
                "conf_type": o.conf_type,
                "reason": med.reason,
            },
        }
        if o.horizons:
            within = [h for h in o.horizons if h <= km.timeline_[-1]]
            rows = km.survival_at(within).to_dict(orient="records") if within else []
            beyond = [h for h in o.horizons if h > km.timeline_[-1]]
            summary["survival_at"] = rows + [
                {"time": h, "surv": None, "lower": None, "upper": None,
                 "reason": f"beyond the last follow-up time ({km.timeline_[-1]:g})"}
                for h in beyond
            ]  # fmt: skip
        return summary

    def binary(self, o: BinaryOutcome, data: pd.DataFrame, where: str) -> dict:
        from cohort_etl.outcomes.binary import association_test, compare_proportions

        y = data[o.column].to_numpy(dtype=float).astype(np.int64)
        arm = data[TREAT].to_numpy()
        a, n1 = int(y[arm == 1].sum()), int((arm == 1).sum())
        c, n0 = int(y[arm == 0].sum()), int((arm == 0).sum())
        out: dict[str, Any] = {
            "per_arm": {
                self.arm(1): {"events": a, "n": n1},
                self.arm(0): {"events": c, "n": n0},
            }
        }
        if n1 == 0 or n0 == 0:
            self.flag(f"{where}:{o.name}", "an arm is empty: no comparison")
            return out
        cmp = compare_proportions(a, n1, c, n0)
        out["per_arm"][self.arm(1)]["risk"] = vars(cmp.risk_1)
        out["per_arm"][self.arm(0)]["risk"] = vars(cmp.risk_0)
        out.update(proportions_dict(cmp))
        out["association_test"] = stat_test_dict(
            association_test(np.array([[a, n1 - a], [c, n0 - c]]))
        )
        if cmp.reason:
            self.flag(f"{where}:{o.name}", cmp.reason)
        return out

    def grouping(self, column: str, data: pd.DataFrame, where: str) -> dict[str, Any]:
        from cohort_etl.outcomes.binary import association_test
        from cohort_etl.outcomes.km import KaplanMeier
        from cohort_etl.outcomes.logrank import logrank_test

        groups = data[column].astype(str).to_numpy()
        levels = sorted(set(groups.tolist()))
        result: dict[str, Any] = {"levels": levels, "outcomes": {}}
        for o in self.spec.outcomes:
            res: dict[str, Any] = {"per_level": {}}
            if isinstance(o, TimeToEventOutcome):
                t = data[o.time].to_numpy(dtype=float)
                e = data[o.event].to_numpy(dtype=float)
                for lev in levels:
                    sel = groups == lev
                    res["per_level"][lev] = self._km(
                        KaplanMeier(conf_type=o.conf_type), t[sel], e[sel], o
                    )
                if len(levels) > 1 and e.sum() > 0:
                    lr = logrank_test(t, e, groups)
                    res["logrank"] = logrank_dict(lr)
            else:
                y = data[o.column].to_numpy(dtype=float)
                table = []
                for lev in levels:
                    sel = groups == lev
                    k, n = int(y[sel].sum()), int(sel.sum())
                    res["per_level"][lev] = {"events": k, "n": n, "proportion": k / n}
                    table.append([k, n - k])
                if len(levels) > 1:
                    test = association_test(np.array(table))
                    res["association_test"] = stat_test_dict(test)
            result["outcomes"][o.name] = res
        return result


def run_analysis(
    spec: AnalysisSpec, data: pd.DataFrame, source: str = "data"
) -> tuple[dict[str, Any], pd.DataFrame | None, pd.DataFrame | None]:
    """Run ``spec`` on ``data``.

    Returns
    -------
    tuple
        (results dict following docs/results_schema.md, matched dataset or None,
        balance table or None).
    """
    validate_dataset(spec, data, source)
    compared, left_out = select_arms(spec, data)
    analysis = _Analysis(spec)
    matched, matching = analysis.match(compared)
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "analysis": spec.name,
        "spec": spec.model_dump(mode="json"),
        "arms": {"treated": analysis.arm(1), "control": analysis.arm(0)},
        "sample_sizes": {
            "rows_in_data": len(data),
            "rows_not_in_either_arm": left_out,
            "before_matching": matching["n_before"],
            "after_matching": matching.get("n_after"),
        },
        "matching": {k: v for k, v in matching.items() if k != "balance"},
        "balance": matching.get("balance", []),
        "outcomes": {},
        "groupings": {},
    }
    populations: dict[str, pd.DataFrame | None] = {}
    for wanted in spec.populations:
        if spec.matching.preset == "none" or wanted == "unmatched":
            populations["unmatched" if spec.matching.preset != "none" else "all"] = compared
        else:
            populations["matched"] = matched
    for o in spec.outcomes:
        entry: dict[str, Any] = {"type": o.type, "label": o.label or o.name}
        for pop, frame in populations.items():
            if frame is None:
                entry[pop] = None
                analysis.flag(f"{pop}:{o.name}", "matching produced no matched sample")
                continue
            if isinstance(o, TimeToEventOutcome):
                entry[pop] = analysis.time_to_event(o, frame, pop)
            else:
                entry[pop] = analysis.binary(o, frame, pop)
        results["outcomes"][o.name] = entry
    for column in spec.groupings:
        results["groupings"][column] = {
            pop: None if frame is None else analysis.grouping(column, frame, pop)
            for pop, frame in populations.items()
        }
    results["not_estimable"] = analysis.not_estimable
    balance = getattr(analysis, "balance", None)
    out_matched = None
    if matched is not None:
        out_matched = matched.drop(columns=[TREAT])
    return json_safe(results), out_matched, balance
