"""Site side: the aggregates a site contributes to one network round.

:class:`SiteData` is what a site knows about its study (patient-level survival records
and Cox design matrices, kept in memory at the site only, plus its count tables).
:func:`contribution` reduces it to a list of named vector blocks on the network's fixed
grids; the package carries them only masked (:mod:`cohort_etl.network.secagg`), so the
coordinator sees their sum over the roster and nothing per site:

- ``km|<outcome>|<role>|n_risk`` / ``n_event`` / ``n_censor``: risk table on the fine
  grid (interval k = ((k-1) D, k D], interval 1 = [0, D]) up to the horizon;
- ``logrank|<outcome>|observed`` (control, treated) and ``logrank|<outcome>|ev``
  (E control, E treated, V): the site's log-rank at its exact event times;
- ``binary|<outcome>|<role>``: (events, n);
- ``attrition``: persons remaining after each rule;
- ``table1|<variable>|<role>|<phase>``: (n, count per level) for binary / categorical
  variables, (n, sum, sum of squares) for continuous ones;
- ``profile|<analysis>``: Cox profile log-likelihood values then derivatives on the
  profile grid; ``marginal|<analysis>``: the random-effects marginal on the (mu, tau)
  grid (:mod:`cohort_etl.network.profile`);
- ``wprofile|<analysis>``: for a weighted analysis (the target-trial emulation: clone
  rows with the site's own inverse-probability-of-censoring weights) the profile of its
  weighted log partial likelihood (no random-effects marginal: a weighted
  pseudo-likelihood's curvature is not the information); in a refinement pass also
  ``sandwich|<analysis>``: (U, A, B) at the pooled log HR of the previous pass (the
  anchor), the pieces of the person-clustered robust variance
  (:func:`~cohort_etl.network.profile.sandwich_pieces`).

Besides, each site states in the clear its own effect estimates (log HR and SE of its
Cox fit, the maximum and CI of its own profile): numbers of the site's own study report
used for the per-site rows of the forest plot and the secondary (log HR, SE) pooling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cohort_etl.errors import CohortEtlError, InputDataError
from cohort_etl.network.keys import Network
from cohort_etl.network.profile import (
    cox_profile,
    marginal_grid,
    pooled_profile_estimate,
    profile_grid,
    sandwich_pieces,
)
from cohort_etl.network.secagg import Component
from cohort_etl.outcomes.cox import CoxPH
from cohort_etl.outcomes.logrank import logrank_test

ROLES = ("control", "treated")
SINGLE = "all"
PHASES = ("before", "after")
T1_KINDS = ("continuous", "binary", "categorical")


@dataclass
class CoxAnalysis:
    """One hazard ratio to pool: coefficient ``term`` of a Cox model on ``data``
    (columns ``time``, ``event``, the covariates, optionally ``stratum``; for
    counting-process (start, stop] rows ``entry`` (start) and ``cluster`` (person, for
    the site's own robust SE); for a weighted model ``weight`` (> 0, treated as known)
    and ``cluster``). ``label`` is what the pooled report shows."""

    key: str
    outcome: str
    data: pd.DataFrame
    covariates: list[str]
    term: str
    label: str = ""


@dataclass
class Table1Cell:
    """Aggregates of one Table 1 variable in one arm and phase."""

    kind: str
    values: list[float]  # (n, count per level) or (n, sum, sum of squares)


@dataclass
class SiteData:
    arms: dict[str, str]  # role -> label
    survival: dict[str, pd.DataFrame] = field(default_factory=dict)  # time, event, arm_role
    cox: list[CoxAnalysis] = field(default_factory=list)
    binary: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    attrition: list[tuple[str, int]] = field(default_factory=list)  # (rule, remaining)
    table1: dict[tuple[str, str, str], Table1Cell] = field(default_factory=dict)
    table1_kinds: dict[str, str] = field(default_factory=dict)
    not_exported: list[dict[str, str]] = field(default_factory=list)

    def roles(self) -> list[str]:
        return sorted(self.arms)


def table1_from_persons(
    persons: pd.DataFrame, kinds: Mapping[str, str], levels: Mapping[str, list[str]]
) -> dict[tuple[str, str, str], Table1Cell]:
    """Table 1 aggregates from person rows with ``arm_role`` and ``matched`` (bool):
    'before' is every row, 'after' the matched rows."""
    out: dict[tuple[str, str, str], Table1Cell] = {}
    for var, kind in kinds.items():
        for role, part in persons.groupby("arm_role"):
            for phase in PHASES:
                rows = part if phase == "before" else part[part["matched"].astype(bool)]
                x = rows[var].dropna()
                out[(var, str(role), phase)] = _t1_cell(var, kind, x, levels.get(var))
    return out


def _t1_cell(var: str, kind: str, x: pd.Series, levels: list[str] | None) -> Table1Cell:
    if kind == "continuous":
        v = x.to_numpy(dtype=float)
        return Table1Cell(kind, [float(v.size), float(v.sum()), float((v * v).sum())])
    if kind == "binary":
        return Table1Cell(kind, [float(x.size), float((x.astype(float) == 1).sum())])
    if levels is None:
        raise InputDataError(f"table1: no levels for categorical variable {var!r} in the network")
    seen = set(x.astype(str))
    unknown = sorted(seen - set(levels))
    if unknown:
        raise InputDataError(
            f"table1: variable {var!r} has level(s) {unknown} not listed in the network's "
            f"table1_levels {levels}"
        )
    s = x.astype(str)
    return Table1Cell(kind, [float(x.size), *[float((s == lv).sum()) for lv in levels]])


def n_intervals(net: Network) -> int:
    return math.ceil(net.horizon_days / net.interval_days)


def fine_risk_table(time: Any, event: Any, interval_days: int, k: int) -> np.ndarray:
    """(3, k) array: n at risk at the start of, events in and censored in each interval;
    persons beyond the horizon count as at risk only."""
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float) > 0
    g = np.maximum(1, np.ceil(t / interval_days)).astype(np.int64)
    idx = np.arange(1, k + 1)
    counts_e = np.bincount(np.minimum(g[e], k + 1), minlength=k + 2)
    counts_c = np.bincount(np.minimum(g[~e], k + 1), minlength=k + 2)
    n_risk = np.array([(g >= j).sum() for j in idx])
    return np.vstack([n_risk, counts_e[1 : k + 1], counts_c[1 : k + 1]])


@dataclass
class _Design:
    time: np.ndarray
    event: np.ndarray
    x: np.ndarray
    strata: Any
    j: int
    entry: np.ndarray | None
    cluster: Any
    weight: np.ndarray | None = None


def _design(a: CoxAnalysis) -> _Design:
    d = a.data
    missing = [c for c in ("time", "event", *a.covariates) if c not in d.columns]
    if missing:
        raise InputDataError(f"analysis {a.key}: missing column(s) {missing}")

    def col(name: str) -> Any:
        return d[name].to_numpy() if name in d.columns else None

    entry, weight = col("entry"), col("weight")
    if weight is not None and len(a.covariates) != 1:
        raise InputDataError(f"analysis {a.key}: a weighted analysis has one term, got "
                             f"{a.covariates}")  # fmt: skip
    return _Design(d["time"].to_numpy(dtype=float), d["event"].to_numpy(dtype=float),
                   d[a.covariates].to_numpy(dtype=float), col("stratum"),
                   a.covariates.index(a.term), None if entry is None else entry.astype(float),
                   col("cluster"), None if weight is None else weight.astype(float))  # fmt: skip


def weighted(a: CoxAnalysis) -> bool:
    """A weighted analysis (a ``weight`` column): pooled with a robust variance."""
    return "weight" in a.data.columns


def site_estimate(a: CoxAnalysis, points: int) -> dict[str, Any]:
    """The site's own estimate (clear): Wald log HR and SE of its Cox fit (robust SE
    for clustered counting-process rows and weighted models, as the run reports), and
    the maximum / LR interval of its own profile (a weighted analysis: the maximum only,
    the LR interval of a weighted pseudo-likelihood is not valid)."""
    d = _design(a)
    out: dict[str, Any] = {"coef": None, "se": None, "reason": None}
    if d.weight is not None:
        out["se_kind"] = "person-clustered robust (weights treated as known)"
    xj, ev = d.x[:, d.j], d.event > 0
    if not len(d.time):
        out["reason"] = "no rows at the site: not estimable"
    elif np.isin(xj, (0.0, 1.0)).all() and not (ev[xj == 1].any() and ev[xj == 0].any()):
        # a two-level term with no event at one level: the maximum is at infinity
        out["reason"] = "no events in one arm: not estimable at the site"
    else:
        try:
            fit = CoxPH().fit(d.time, d.event, d.x, strata=d.strata, entry=d.entry,
                              cluster=d.cluster, weights=d.weight).result_  # fmt: skip
            se_all = fit.robust_se if fit.robust_se is not None else fit.se
            coef, se = float(fit.coef[d.j]), float(se_all[d.j])
            if math.isfinite(coef) and math.isfinite(se) and se > 0 and abs(coef) < 20:
                out["coef"], out["se"] = coef, se
            else:
                out["reason"] = "Cox fit did not converge (e.g. no events in one arm)"
        except (CohortEtlError, np.linalg.LinAlgError) as exc:
            out["reason"] = f"Cox fit not estimable: {exc}"
    grid = profile_grid(points)
    block = cox_profile(d.time, d.event, d.x, d.strata, d.j, points, d.entry,
                        weights=d.weight)  # fmt: skip
    vals, grads = block[:, 0], block[:, 1]
    prof = pooled_profile_estimate(grid, vals, grads).to_dict()
    out["profile"] = {k: prof[k] for k in ("estimate", "lower", "upper", "reason")}
    if d.weight is not None:
        out["profile"].update(lower=None, upper=None)
    return out


def contribution(
    site: SiteData, net: Network, anchors: Mapping[str, np.ndarray] | None = None
) -> tuple[list[Component], list[np.ndarray]]:
    """The site's vector blocks on the network grids (see module docstring). With
    ``anchors`` (a refinement pass: the pooled nuisance of the previous pass per analysis
    and grid point) the profile blocks of models with other terms are expanded there; the
    random-effects marginal stays on the site's own profile."""
    comps: list[Component] = []
    vals: list[np.ndarray] = []

    def add(key: str, kind: str, v: Any) -> None:
        arr = np.asarray(v, dtype=float).ravel()
        comps.append(Component(key, kind, int(arr.size)))
        vals.append(arr)

    k = n_intervals(net)
    for outcome in sorted(site.survival):
        rec = site.survival[outcome]
        unknown = sorted(set(rec["arm_role"]) - set(site.arms))
        if unknown:
            raise InputDataError(f"outcome {outcome}: arm role(s) {unknown} not in {site.arms}")
        for role in site.roles():
            part = rec[rec["arm_role"] == role]
            table = fine_risk_table(part["time"], part["event"], net.interval_days, k)
            for r, name in enumerate(("n_risk", "n_event", "n_censor")):
                add(f"km|{outcome}|{role}|{name}", "int", table[r])
        if set(ROLES) <= set(site.arms):
            obs, ev = _logrank_blocks(rec)
            add(f"logrank|{outcome}|observed", "int", obs)
            add(f"logrank|{outcome}|ev", "fixed", ev)
    for outcome in sorted(site.binary):
        for role in site.roles():
            events, n = site.binary[outcome].get(role, (0, 0))
            add(f"binary|{outcome}|{role}", "int", [events, n])
    if site.attrition:
        add("attrition", "int", [n for _, n in site.attrition])
    for var in sorted(site.table1_kinds):
        kind = site.table1_kinds[var]
        width = {"continuous": 3, "binary": 2}.get(kind, 1 + len(net.table1_levels.get(var, [])))
        for role in site.roles():
            for phase in PHASES:
                cell = site.table1.get((var, role, phase))
                v = cell.values if cell is not None else [0.0] * width
                if len(v) != width:
                    raise InputDataError(f"table1: {var} {role} {phase}: {len(v)} values, "
                                         f"expected {width}")  # fmt: skip
                add(f"table1|{var}|{role}|{phase}", "fixed" if kind == "continuous" else "int", v)
    for a in sorted(site.cox, key=lambda a: a.key):
        d = _design(a)
        if d.weight is not None:
            block = cox_profile(d.time, d.event, d.x, d.strata, d.j, net.profile_points,
                                d.entry, weights=d.weight)  # fmt: skip
            add(f"wprofile|{a.key}", "fixed", block[:, :2])
            anchor = None if anchors is None else anchors.get(a.key)
            if anchor is not None:
                beta = float(np.ravel(anchor)[0])
                add(f"sandwich|{a.key}", "fixed", sandwich_pieces(
                    d.time, d.event, d.x, beta, d.entry, d.weight, d.cluster, d.strata))  # fmt: skip
            continue
        block = cox_profile(d.time, d.event, d.x, d.strata, d.j, net.profile_points, d.entry)
        anchor = None if anchors is None or d.x.shape[1] < 2 else anchors.get(a.key)
        if anchor is not None:
            anchored = cox_profile(d.time, d.event, d.x, d.strata, d.j, net.profile_points,
                                   d.entry, np.asarray(anchor, dtype=float))  # fmt: skip
            add(f"profile|{a.key}", "fixed", anchored)
        else:
            add(f"profile|{a.key}", "fixed", block)
        add(f"marginal|{a.key}", "fixed", marginal_grid(block, net.profile_points))
    return comps, vals


def _logrank_blocks(rec: pd.DataFrame) -> tuple[list[int], list[float]]:
    """(O control, O treated) and (E control, E treated, V) of the site's log-rank; with
    one arm present or no events, E = O and V = 0 (the arm contributes nothing)."""
    obs = [int(rec[rec["arm_role"] == r]["event"].sum()) for r in ROLES]
    if sum(obs) == 0 or rec["arm_role"].nunique() < 2:
        return obs, [float(obs[0]), float(obs[1]), 0.0]
    res = logrank_test(rec["time"], rec["event"], (rec["arm_role"] == "treated").astype(int))
    pos = {str(g): i for i, g in enumerate(res.groups)}
    c, t = pos["0"], pos["1"]
    return obs, [float(res.expected[c]), float(res.expected[t]), float(res.variance[t, t])]
