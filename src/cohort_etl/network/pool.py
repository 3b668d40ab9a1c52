"""Coordinator: pool the site packages of one study.

- Kaplan-Meier per arm on the package grid from the summed (n at risk, events) per
  interval: exactly the KM (Greenwood SE, log-type CI as ``survfit``) of the pooled
  interval-grouped data. An interval that any site withheld makes the pooled curve not
  estimable from there on (null with the sites named), never silently wrong.
- Site-stratified log-rank from the summed O - E - V (:func:`pool_logrank`): exactly
  ``survdiff(Surv(t, e) ~ arm + strata(site))`` on the pooled person-level data.
- Fixed-effect and DerSimonian-Laird meta-analysis of every log hazard ratio (the robust
  SE where the site gave one).
- Binary outcomes: summed events and n per arm.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cohort_etl import __version__
from cohort_etl.errors import CohortEtlError, InputDataError
from cohort_etl.network.meta import meta_analysis
from cohort_etl.network.package import SitePackage, read_package
from cohort_etl.outcomes.logrank import LogRankResult, pool_logrank
from cohort_etl.outcomes.summary import RESULT_DIGITS, RESULT_FLOAT_FORMAT, json_safe

POOLED_SCHEMA_VERSION = 1


def check_compatible(packages: Sequence[tuple[str, SitePackage]]) -> None:
    """Refuse packages of different studies, spec hashes, schema versions or grids, and
    duplicate site ids; the error names the package."""
    if not packages:
        raise InputDataError("pool: no packages given")
    name0, first = packages[0]
    for key in ("schema_version", "study", "study_spec_sha256", "interval_days"):
        for name, pkg in packages[1:]:
            if pkg.meta.get(key) != first.meta.get(key):
                raise InputDataError(
                    f"{name}: {key} is {pkg.meta.get(key)!r} but {name0} has "
                    f"{first.meta.get(key)!r}; packages of one study (same spec) only"
                )
    seen: dict[str, str] = {}
    for name, pkg in packages:
        site = str(pkg.meta["site_id"])
        if site in seen:
            raise InputDataError(f"{name}: site_id {site!r} also in {seen[site]}")
        seen[site] = name


def _site_grid(pkg: SitePackage, outcome: str, role: str) -> tuple[dict[int, Any], int | None, int]:
    """Published rows (interval -> row), the first withheld interval (None if the table
    is complete) and the last interval listed."""
    g = pkg.tables["km_grid"]
    g = g[(g["outcome"] == outcome) & (g["arm_role"] == role)].sort_values("interval")
    records: list[Any] = list(g.itertuples())
    rows = {int(r.interval): r for r in records}
    withheld = [int(r.interval) for r in records if isinstance(r.suppressed, str) and r.suppressed]
    last = int(g["interval"].max()) if len(g) else 0
    return rows, (withheld[0] if withheld else None), last


def pooled_km(packages: Sequence[SitePackage]) -> pd.DataFrame:
    """Pooled interval-grouped KM per outcome and arm (one row per interval)."""
    interval_days = int(packages[0].meta["interval_days"])
    keys = sorted(
        {
            (str(o), str(r), str(a))
            for p in packages
            for o, r, a in p.tables["km_grid"][["outcome", "arm_role", "arm"]].itertuples(
                index=False
            )
        }
    )
    z = float(stats.norm.ppf(0.975))
    out = []
    for outcome, role, arm in keys:
        sites = [(p.meta["site_id"], *_site_grid(p, outcome, role)) for p in packages]
        kmax = max(last for _, _, _, last in sites)
        surv, var_log = 1.0, 0.0
        reason: str | None = None
        for k in range(1, kmax + 1):
            n = d = c = 0.0
            n_ok = d_ok = True
            blocked = []
            for site, rows, kstar, last in sites:
                if kstar is None and k > last:  # complete table: nobody left at risk
                    continue
                row = rows.get(k)
                if row is None or (kstar is not None and k >= kstar):
                    if row is not None and not pd.isna(row.n_risk):
                        n += float(row.n_risk)
                    else:
                        n_ok = False
                    d_ok = False
                    blocked.append(str(site))
                    continue
                n += float(row.n_risk)
                d += float(row.n_event)
                c += float(row.n_censor)
            if not d_ok and reason is None:
                reason = (
                    f"not estimable from interval {k} on: counts withheld (small cells) at "
                    f"site(s) {', '.join(blocked)}"
                )
            estimable = reason is None
            if estimable and n > 0:
                surv *= 1.0 - d / n
                var_log = var_log + (d / (n * (n - d)) if n > d else math.inf)
            row_out: dict[str, Any] = {
                "outcome": outcome,
                "arm_role": role,
                "arm": arm,
                "interval": k,
                "start": (k - 1) * interval_days,
                "time": k * interval_days,
                "n_risk": n if n_ok else None,
                "n_event": d if estimable else None,
                "n_censor": c if estimable else None,
                "surv": surv if estimable else None,
                "std_err": None,
                "lower": None,
                "upper": None,
                "reason": reason,
            }
            if estimable and surv > 0 and math.isfinite(var_log):
                se_log = math.sqrt(var_log)
                row_out["std_err"] = surv * se_log
                row_out["lower"] = math.exp(math.log(surv) - z * se_log)
                row_out["upper"] = min(1.0, math.exp(math.log(surv) + z * se_log))
            out.append(row_out)
            if estimable and n_ok and n == 0:
                break
    cols = ["outcome", "arm_role", "arm", "interval", "start", "time", "n_risk", "n_event",
            "n_censor", "surv", "std_err", "lower", "upper", "reason"]  # fmt: skip
    frame = pd.DataFrame(out, columns=cols)
    for col in ("n_risk", "n_event", "n_censor"):
        frame[col] = pd.array([None if pd.isna(v) else int(v) for v in frame[col]], dtype="Int64")
    return frame


def _site_logrank(pkg: SitePackage, outcome: str) -> LogRankResult | str:
    t = pkg.tables["logrank"]
    t = t[t["outcome"] == outcome].sort_values("arm_role")
    site = pkg.meta["site_id"]
    if len(t) < 2:
        return f"site {site}: no log-rank for {outcome}"
    if t[["n", "observed", "expected", "variance"]].isna().any().any():
        return f"site {site}: counts withheld (small cells)"
    v = t["variance"].to_numpy(dtype=float)
    groups = [str(g) for g in t["arm_role"]]
    if len(groups) != 2:
        return f"site {site}: log-rank pooling needs two arms, got {groups}"
    var = np.array([[v[0], -v[0]], [-v[1], v[1]]])
    obs = t["observed"].to_numpy(dtype=float)
    exp = t["expected"].to_numpy(dtype=float)
    return LogRankResult(
        groups=groups,
        n=t["n"].to_numpy(dtype=float),
        observed=obs,
        expected=exp,
        variance=var,
        chi_square=None,
        df=1,
        p_value=None,
        rho=0.0,
        per_stratum=pd.DataFrame(
            {
                "stratum": site,
                "group": groups,
                "n": t["n"].to_numpy(dtype=float),
                "observed": obs,
                "expected": exp,
                "o_minus_e": obs - exp,
                "variance": v,
            }
        ),  # fmt: skip
    )


def pooled_logrank(packages: Sequence[SitePackage]) -> dict[str, Any]:
    """Site-stratified log-rank per outcome from the summed O - E - V."""
    outcomes = sorted({str(o) for p in packages for o in p.tables["logrank"]["outcome"]})
    out: dict[str, Any] = {}
    for outcome in outcomes:
        parts = [_site_logrank(p, outcome) for p in packages]
        problems = [x for x in parts if isinstance(x, str)]
        if problems:
            out[outcome] = {"chi_square": None, "df": None, "p_value": None,
                            "reason": "not estimable: " + "; ".join(problems)}  # fmt: skip
            continue
        res = pool_logrank([x for x in parts if isinstance(x, LogRankResult)])
        out[outcome] = {
            "chi_square": res.chi_square,
            "df": res.df,
            "p_value": res.p_value,
            "groups": list(res.groups),
            "n": res.n.tolist(),
            "observed": res.observed.tolist(),
            "expected": res.expected.tolist(),
            "o_minus_e": res.o_minus_e.tolist(),
            "variance": res.variance.tolist(),
            "reason": res.reason,
        }
    return out


def pooled_hazard_ratios(packages: Sequence[SitePackage]) -> tuple[dict[str, Any], pd.DataFrame]:
    """FE and DL meta-analysis of each Cox analysis's log HR across the sites that have it."""
    analyses = sorted({str(a) for p in packages for a in p.tables["hazard_ratios"]["analysis"]})
    out: dict[str, Any] = {}
    rows = []
    for analysis in analyses:
        labels, y, se, kinds, missing = [], [], [], [], []
        for p in packages:
            h = p.tables["hazard_ratios"]
            h = h[h["analysis"] == analysis]
            site = str(p.meta["site_id"])
            if h.empty:
                missing.append(site)
                continue
            r = h.iloc[0]
            robust = r["robust_se"]
            use_robust = robust is not None and not pd.isna(robust)
            labels.append(site)
            y.append(float(r["coef"]))
            se.append(float(robust) if use_robust else float(r["se"]))
            kinds.append("robust" if use_robust else "model")
        entry: dict[str, Any] = {"sites": labels, "sites_without": missing,
                                 "se_used": dict(zip(labels, kinds, strict=True))}  # fmt: skip
        for method in ("FE", "DL"):
            try:
                res = meta_analysis(y, se, method=method, labels=labels)
            except CohortEtlError as exc:
                entry[method] = {"reason": str(exc)}
                continue
            entry[method] = res.to_dict()
            rows.append({"analysis": analysis, **{k: v for k, v in res.to_dict().items()
                                                  if k != "weights"}})  # fmt: skip
        out[analysis] = entry
    return out, pd.DataFrame(rows)


def pooled_binary(packages: Sequence[SitePackage]) -> dict[str, Any]:
    keys = sorted(
        {(str(o), str(r)) for p in packages
         for o, r in p.tables["binary"][["outcome", "arm_role"]].itertuples(index=False)}
    )  # fmt: skip
    out: dict[str, Any] = {}
    for outcome, role in keys:
        events = n = 0
        withheld = []
        for p in packages:
            b = p.tables["binary"]
            b = b[(b["outcome"] == outcome) & (b["arm_role"] == role)]
            if b.empty:
                continue
            r = b.iloc[0]
            if pd.isna(r["events"]) or pd.isna(r["n"]):
                withheld.append(str(p.meta["site_id"]))
                continue
            events += int(r["events"])
            n += int(r["n"])
        entry: dict[str, Any] = (
            {"events": None, "n": None, "risk": None,
             "reason": f"not estimable: counts withheld at site(s) {', '.join(withheld)}"}
            if withheld
            else {"events": events, "n": n, "risk": events / n if n else None, "reason": None}
        )  # fmt: skip
        out.setdefault(outcome, {})[role] = entry
    return out


def pool_packages(paths: Sequence[Path], out_dir: Path) -> dict[str, Any]:
    """Read the packages, check they belong together, pool and write pooled.json,
    pooled_km.csv and pooled_hazard_ratios.csv into ``out_dir``."""
    loaded = [(str(p), read_package(Path(p))) for p in paths]
    check_compatible(loaded)
    loaded.sort(key=lambda x: str(x[1].meta["site_id"]))
    pkgs = [p for _, p in loaded]
    first = pkgs[0].meta
    km = pooled_km(pkgs)
    hrs, hr_table = pooled_hazard_ratios(pkgs)
    result = {
        "schema_version": POOLED_SCHEMA_VERSION,
        "study": first["study"],
        "title": first.get("title"),
        "study_spec_sha256": first["study_spec_sha256"],
        "interval_days": first["interval_days"],
        "cohort_etl_version": __version__,
        "sites": [
            {
                "site_id": p.meta["site_id"],
                "min_cell": p.meta["min_cell"],
                "source_manifest_sha256": p.meta.get("source_manifest_sha256"),
            }
            for p in pkgs
        ],  # fmt: skip
        "logrank_stratified_by_site": pooled_logrank(pkgs),
        "hazard_ratios": hrs,
        "binary": pooled_binary(pkgs),
        "km_not_estimable": sorted(
            {
                f"{o}/{r}: {why}"
                for o, r, why in zip(km["outcome"], km["arm_role"], km["reason"], strict=True)
                if why
            }
        ),
    }
    result = json_safe(result, RESULT_DIGITS)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "pooled.json").write_text(
        json.dumps(result, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8"
    )
    for name, frame in (("pooled_km", km), ("pooled_hazard_ratios", hr_table)):
        (out_dir / f"{name}.csv").write_bytes(
            frame.to_csv(
                index=False, float_format=RESULT_FLOAT_FORMAT, lineterminator="\n"
            ).encode()
        )
    return result
