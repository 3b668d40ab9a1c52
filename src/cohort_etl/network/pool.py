"""Coordinator: verify the round's packages, sum them securely, publish.

1. Every package is checked against the network file (:func:`verify_packages`): signed by
   the registered key of its site, the round's settings, the same study spec, concept
   sets and vector layout as the others, a clean code tree (unless allowed), a min cell
   not below the network's, no duplicate run (same source manifest), and the whole
   roster present. Each refusal names the package, the site and the field.
2. The masked vectors are summed: the masks cancel, the coordinator learns only sums
   over all sites (:mod:`cohort_etl.network.secagg`).
3. The published tier (:mod:`cohort_etl.network.publish`) and the hazard ratios
   (:mod:`cohort_etl.network.profile`): fixed effect from the summed profiles, Bayesian
   random effects from the summed marginals, and as a secondary display fixed-effect /
   DerSimonian-Laird pooling of the sites' own (log HR, SE).
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
from cohort_etl.network import secagg
from cohort_etl.network.keys import Network, verify
from cohort_etl.network.meta import meta_analysis
from cohort_etl.network.package import SitePackage, anchors_json, read_package
from cohort_etl.network.profile import (
    TAU_GRID,
    bayesian_random_effects,
    combine_profile,
    mu_grid,
    pooled_profile_estimate,
    profile_grid,
)
from cohort_etl.network.publish import (
    pooled_binary,
    pooled_km,
    pooled_logrank,
    pooled_table1,
    suppress_attrition,
)
from cohort_etl.outcomes.summary import RESULT_DIGITS, RESULT_FLOAT_FORMAT, json_safe

POOLED_SCHEMA_VERSION = 2
SAME_ACROSS_SITES = (
    "title",
    "arms",
    "layout_sha256",
    "analysis_labels",
    "pass",
    "attrition_rules",
    "table1_kinds",
)
SAME_PROVENANCE = ("study_spec_sha256", "concept_sets_sha256")


def _refuse(pkg: SitePackage, field: str, why: str) -> InputDataError:
    return InputDataError(f"{pkg.path}: site {pkg.site_id!r}: field {field}: {why}")


def verify_packages(
    loaded: Sequence[tuple[SitePackage, bytes]], net: Network, allow_dirty: bool = False
) -> list[SitePackage]:
    """All checks of step 1 (module docstring); returns the packages sorted by site."""
    if not loaded:
        raise InputDataError("pool: no packages given")
    settings = net.settings()
    for pkg, body in loaded:
        verify(net, pkg.site_id, body, pkg.signature, pkg.path)
    for pkg, _ in loaded:
        for field, want in settings.items():
            if pkg.meta.get(field) != want:
                raise _refuse(pkg, field, f"{pkg.meta.get(field)!r} but the network round has "
                                          f"{want!r}")  # fmt: skip
        mc = pkg.meta.get("min_cell")
        if not isinstance(mc, int) or mc < net.min_cell:
            raise _refuse(pkg, "min_cell", f"{mc!r} is below the network minimum {net.min_cell}")
        prov = pkg.meta.get("provenance", {})
        if prov.get("code_dirty") is not False and not (allow_dirty or net.allow_dirty):
            raise _refuse(pkg, "provenance.code_dirty", f"the run was made from a modified code "
                          f"tree (revision {prov.get('code_revision')!r}); pass --allow-dirty "
                          "to accept")  # fmt: skip
    first = loaded[0][0]
    for pkg, _ in loaded[1:]:
        for field in SAME_ACROSS_SITES:
            if pkg.meta.get(field) != first.meta.get(field):
                raise _refuse(pkg, field, f"{pkg.meta.get(field)!r} differs from site "
                              f"{first.site_id!r} ({first.meta.get(field)!r})")  # fmt: skip
        p0, p1 = first.meta.get("provenance", {}), pkg.meta.get("provenance", {})
        for field in SAME_PROVENANCE:
            if p1.get(field) != p0.get(field):
                detail = ""
                if field == "concept_sets_sha256":
                    a, b = p0.get("concept_sets", {}), p1.get("concept_sets", {})
                    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                    detail = f" (concept set(s) {diff})"
                raise _refuse(pkg, f"provenance.{field}", f"{p1.get(field)!r} differs from site "
                              f"{first.site_id!r} ({p0.get(field)!r}){detail}")  # fmt: skip
    seen_site: dict[str, str] = {}
    seen_manifest: dict[str, str] = {}
    for pkg, _ in loaded:
        if pkg.site_id in seen_site:
            raise _refuse(pkg, "site_id", f"also in {seen_site[pkg.site_id]}")
        seen_site[pkg.site_id] = pkg.path
        mh = str(pkg.meta.get("provenance", {}).get("source_manifest_sha256"))
        if mh in seen_manifest:
            raise _refuse(pkg, "provenance.source_manifest_sha256",
                          f"same run as site {seen_manifest[mh]!r} (duplicate package)")  # fmt: skip
        seen_manifest[mh] = pkg.site_id
    missing = sorted(set(net.sites) - set(seen_site))
    if missing:
        raise InputDataError(f"pool: no package from roster site(s) {missing} of round "
                             f"{net.round_id!r}: the masks do not cancel without them")  # fmt: skip
    return sorted((p for p, _ in loaded), key=lambda p: p.site_id)


def aggregate(pkgs: Sequence[SitePackage]) -> dict[str, np.ndarray]:
    """Sum of the masked vectors, decoded per block."""
    total = secagg.aggregate([p.masked for p in pkgs])
    out: dict[str, np.ndarray] = {}
    pos = 0
    layout = pkgs[0].layout()
    if sum(c.length for c in layout) != len(total):
        raise InputDataError(f"{pkgs[0].path}: layout does not match masked.bin length")
    for comp in layout:
        out[comp.key] = secagg.decode(total[pos : pos + comp.length], comp.kind)
        pos += comp.length
    return out


def pooled_hazard_ratios(
    sums: dict[str, np.ndarray],
    pkgs: Sequence[SitePackage],
    points: int,
    anchors_out: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Every hazard ratio with a profile; ``anchors_out`` receives the pooled nuisance per
    grid point of every model with other terms (the anchors of a next pass)."""
    grid = profile_grid(points)
    out: dict[str, Any] = {}
    for key in sorted(k for k in sums if k.startswith("profile|")):
        analysis = key.split("|", 1)[1]
        block = sums[key].reshape(grid.shape[0], -1)
        q = int(round(math.sqrt(block.shape[1] - 3))) - 1  # width (q + 1)^2 + 3
        nuisance: list[np.ndarray] = []
        vals, grads = combine_profile(block, q, nuisance)
        if q and anchors_out is not None:
            anchors_out[analysis] = np.vstack(nuisance)
        prof = pooled_profile_estimate(grid, vals, grads).to_dict()
        marginal = sums[f"marginal|{analysis}"].reshape(len(TAU_GRID), mu_grid().shape[0])
        re = bayesian_random_effects(marginal)
        label = pkgs[0].meta.get("analysis_labels", {}).get(analysis, analysis)
        entry: dict[str, Any] = {"label": label, "other_terms": q, "profile_fixed_effect": prof,
                                 "profile_random_effects": re}  # fmt: skip
        out[analysis] = {**entry, **_site_rows(pkgs, analysis)}
    return out


def _site_rows(pkgs: Sequence[SitePackage], analysis: str) -> dict[str, Any]:
    """The sites' own estimates of ``analysis`` (clear) and their Wald FE / DL pooling."""
    per_site, labels, ys, ses = {}, [], [], []
    for p in pkgs:
        est = p.meta.get("site_estimates", {}).get(analysis)
        if est is None:
            continue
        per_site[p.site_id] = est
        if est.get("coef") is not None and est.get("se") is not None:
            labels.append(p.site_id)
            ys.append(float(est["coef"]))
            ses.append(float(est["se"]))
    out: dict[str, Any] = {"sites": per_site,
                           "sites_without_wald": sorted(set(per_site) - set(labels))}  # fmt: skip
    for method in ("FE", "DL"):
        try:
            out[f"wald_{method}"] = meta_analysis(ys, ses, method=method,
                                                  labels=labels).to_dict()  # fmt: skip
        except CohortEtlError as exc:
            out[f"wald_{method}"] = {"reason": str(exc)}
    return out


TARGET_TRIAL = "target_trial"
TT_QUESTION = (
    "Target-trial emulation by clone-censor-weighting: it compares the strategies of the "
    "emulated trial (the exposure within the grace period vs never) and answers the "
    "clinical question; the hazard_ratios section compares the study's arms as the "
    "published design defines them, and the sensitivity analyses"
)
TT_WEIGHTS = (
    "each site's own inverse-probability-of-censoring weights (censoring models fitted on "
    "the site's persons only, with the spec's options), treated as known"
)


def pooled_weighted(
    sums: dict[str, np.ndarray],
    pkgs: Sequence[SitePackage],
    points: int,
    anchors_out: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Every weighted hazard ratio (the target trial): the fixed-effect log HR of the
    union's site-stratified weighted Cox model from the summed weighted profiles (pass 1)
    or, in a refinement pass, one Newton step from the anchor with the summed score and
    information; the person-clustered robust SE ``sqrt(B) / A`` from the summed sandwich
    pieces at the anchor (refinement pass only; docs/network.md). ``anchors_out``
    receives the pooled log HR (the anchor of the next pass)."""
    grid = profile_grid(points)
    at_all = pkgs[0].meta.get("pass", {}).get("robust_at", {}) or {}
    number = int(pkgs[0].meta.get("pass", {}).get("number", 1))
    crit = float(stats.norm.ppf(0.975))
    out: dict[str, Any] = {}
    for key in sorted(k for k in sums if k.startswith("wprofile|")):
        analysis = key.split("|", 1)[1]
        block = sums[key].reshape(grid.shape[0], 2)
        prof = pooled_profile_estimate(grid, block[:, 0], block[:, 1])
        est, se = prof.estimate, None
        method = "maximum of the summed weighted log partial likelihood profiles"
        reason = prof.reason if est is None else None
        at, pieces = at_all.get(analysis), sums.get(f"sandwich|{analysis}")
        if at is not None and pieces is not None:
            u, a, b = (float(x) for x in pieces)
            if a > 0 and b >= 0:
                est = float(at) + u / a
                se = math.sqrt(b) / a
                method = ("one Newton step from the anchor (the pooled log HR of the previous "
                          "pass) with the summed score and information")  # fmt: skip
            else:
                reason = "summed information not positive at the anchor"
        elif est is not None:
            reason = ("robust CI needs the refinement pass: send anchors.json to the sites "
                      "(export --anchors) and pool again; the likelihood-ratio interval of a "
                      "weighted pseudo-likelihood is not valid and is not published")  # fmt: skip
        if est is not None and anchors_out is not None:
            anchors_out[analysis] = np.array([est])
        lower = upper = None
        if est is not None and se is not None:
            lower, upper = est - crit * se, est + crit * se

        def ex(v: float | None) -> float | None:
            return None if v is None else math.exp(v)

        entry: dict[str, Any] = {
            "analysis": analysis,
            "label": pkgs[0].meta.get("analysis_labels", {}).get(analysis, analysis),
            "question": TT_QUESTION if analysis == TARGET_TRIAL else None,
            "model": "coxph(Surv(start, stop, event) ~ arm + strata(site), weights = w, "
            "cluster = id, ties = 'efron') on the union's clone rows",
            "weights": TT_WEIGHTS,
            "pass": number,
            "estimate": est, "se": se, "lower": lower, "upper": upper,
            "hr": ex(est), "hr_lower": ex(lower), "hr_upper": ex(upper),
            "point_method": method,
            "ci_method": None if se is None else "Wald with the person-clustered robust "
            "(sandwich) variance B / A^2, A and B summed over sites at the anchor",
            "anchor": at,
            "profile_maximum": prof.estimate,
            "reason": reason,
        }  # fmt: skip
        out[analysis] = {**entry, **_site_rows(pkgs, analysis)}
    return out


def _tt_rows(weighted: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for analysis, e in weighted.items():
        rows.append({"analysis": analysis, "label": e["label"],
                     "method": "weighted profile FE, robust CI (target trial)",
                     "estimate": e["estimate"], "lower": e["lower"], "upper": e["upper"],
                     "hr": e["hr"]})  # fmt: skip
        for m in ("FE", "DL"):
            w = e[f"wald_{m}"]
            rows.append({"analysis": analysis, "label": e["label"], "method": f"Wald {m}",
                         "estimate": w.get("estimate"), "lower": w.get("lower"),
                         "upper": w.get("upper"), "hr": w.get("hr")})  # fmt: skip
    return rows


def _hr_table(hrs: dict[str, Any], weighted: dict[str, Any] | None = None) -> pd.DataFrame:
    rows = _tt_rows(weighted or {})
    for analysis, e in hrs.items():
        pf, re = e["profile_fixed_effect"], e["profile_random_effects"]
        lab = e.get("label", analysis)
        rows.append({"analysis": analysis, "label": lab, "method": "profile FE", "estimate": pf["estimate"],
                     "lower": pf["lower"], "upper": pf["upper"], "hr": pf["hr"]})  # fmt: skip
        rows.append({"analysis": analysis, "label": lab, "method": "profile RE (Bayesian)", "estimate": re["mu"],
                     "lower": re["mu_lower"], "upper": re["mu_upper"], "hr": re["hr"]})  # fmt: skip
        for m in ("FE", "DL"):
            w = e[f"wald_{m}"]
            rows.append({"analysis": analysis, "label": lab, "method": f"Wald {m}", "estimate": w.get("estimate"),
                         "lower": w.get("lower"), "upper": w.get("upper"), "hr": w.get("hr")})  # fmt: skip
    return pd.DataFrame(
        rows, columns=["analysis", "label", "method", "estimate", "lower", "upper", "hr"]
    )


def provenance_table(pkgs: Sequence[SitePackage]) -> pd.DataFrame:
    rows = []
    for p in pkgs:
        prov = p.meta.get("provenance", {})
        rows.append({"site_id": p.site_id, "min_cell": p.meta.get("min_cell"),
                     **{k: prov.get(k) for k in ("study_spec_sha256", "concept_sets_sha256",
                                                 "code_revision", "code_dirty",
                                                 "cohort_etl_version", "dbt_version",
                                                 "duckdb_version", "vocabulary_version",
                                                 "source_manifest_sha256")}})  # fmt: skip
    return pd.DataFrame(rows)


def pool_network(
    pkgs: Sequence[SitePackage], net: Network, anchors_out: dict[str, np.ndarray] | None = None
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Pool verified packages: pooled.json content and the published tables
    (``anchors_out``: see :func:`pooled_hazard_ratios`)."""
    sums = aggregate(pkgs)
    first = pkgs[0].meta
    arms = first["arms"]
    roles = sorted(arms)
    mc = max(net.min_cell, *(int(p.meta["min_cell"]) for p in pkgs))
    km, km_info = pooled_km(sums, arms, net.interval_days, mc, net.data_cutoff)
    tables: dict[str, pd.DataFrame] = {"pooled_km": km}
    rules = first.get("attrition_rules", [])
    if rules and "attrition" in sums:
        remaining = [int(x) for x in sums["attrition"]]
        att = pd.DataFrame({"rule_number": range(len(rules)), "rule": rules,
                            "persons_remaining": remaining,
                            "persons_removed": [0] + [a - b for a, b in
                                                      zip(remaining, remaining[1:], strict=False)]})  # fmt: skip
        tables["pooled_attrition"] = suppress_attrition(att, mc)
    kinds = first.get("table1_kinds", {})
    if kinds:
        t1, smd = pooled_table1(sums, kinds, net.table1_levels, roles, mc)
        tables["pooled_table1"], tables["pooled_smd"] = t1, smd
    hrs = pooled_hazard_ratios(sums, pkgs, net.profile_points, anchors_out)
    weighted = pooled_weighted(sums, pkgs, net.profile_points, anchors_out)
    tables["pooled_hazard_ratios"] = _hr_table(hrs, weighted)
    tables["provenance"] = provenance_table(pkgs)
    result = {
        "schema_version": POOLED_SCHEMA_VERSION,
        "study": net.study,
        "title": first.get("title"),
        "round_id": net.round_id,
        "sites": [p.site_id for p in pkgs],
        "min_cell": mc,
        "interval_days": net.interval_days,
        "horizon_days": net.horizon_days,
        "cohort_etl_version": __version__,
        "arms": arms,
        "km": km_info,
        "logrank_stratified_by_site": pooled_logrank(sums, mc),
        "binary": pooled_binary(sums, mc),
        "target_trial": weighted.get(TARGET_TRIAL),
        "hazard_ratios": hrs,
        "pass": first.get("pass", {"number": 1, "anchors_sha256": None}),
        "not_exported": {p.site_id: p.meta.get("not_exported", []) for p in pkgs},
    }
    return json_safe(result, RESULT_DIGITS), tables


def pool_packages(
    paths: Sequence[Path], net: Network, out_dir: Path, allow_dirty: bool = False
) -> dict[str, Any]:
    """Read, verify, pool and write pooled.json, the CSVs and report.html."""
    from cohort_etl.network.report import write_report

    loaded = [read_package(Path(p)) for p in paths]
    pkgs = verify_packages(loaded, net, allow_dirty)
    anchors: dict[str, np.ndarray] = {}
    result, tables = pool_network(pkgs, net, anchors)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if anchors:  # the anchors of the next pass (models with other terms, target trial)
        number = int(result["pass"]["number"]) + 1
        (out_dir / "anchors.json").write_bytes(anchors_json(net.round_id, number, anchors))
    (out_dir / "pooled.json").write_text(
        json.dumps(result, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8"
    )
    for name, frame in tables.items():
        (out_dir / f"{name}.csv").write_bytes(
            frame.to_csv(
                index=False, float_format=RESULT_FLOAT_FORMAT, lineterminator="\n"
            ).encode()  # fmt: skip
        )
    write_report(result, tables, out_dir / "report.html")
    return result
