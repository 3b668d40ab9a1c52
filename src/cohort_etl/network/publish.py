"""Published tier: what the network releases from the summed site vectors.

Every count the network publishes is 0 or >= the network's minimum cell count ``N``,
checked across all published tables:

- **Pooled KM** per outcome and arm on the fine grid, published for the intervals whose
  pooled number at risk is >= N, and no further than the ``data_cutoff`` quantile (0.9,
  CohortMethod's default) of the pooled grouped follow-up times of the outcome (both
  arms). Columns: time, n_risk, surv, Greenwood SE, log-type 95% CI. Events and censored
  per interval are not published (the step of the curve with n at risk gives the events
  of an interval, as in every published KM curve; see docs/network.md).
- **Attrition** (summed per rule): a rule removing a small number is merged with the
  next (:func:`suppress_attrition`); rows from a small remaining count on are withheld.
- **Table 1** (pooled counts / means / SMDs): see :func:`pooled_table1`.
- **Log-rank**: observed and expected per arm and the total events are withheld
  together when an arm's observed count, or its persons without the event (n - O, with
  n published by the KM), is small (E_t + E_c = O_t + O_c).
- **Binary outcomes**: events withheld when events or non-events are small.

Cross-table audit (:func:`linear_audit`): a withheld count is *recoverable* when its
indicator over the finest cells is a linear combination of the published counts' rows
(rank test); secondary suppression removes published counts until no small count is
recoverable. The tests check the published files independently with linear-programming
bounds (docs/network.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cohort_etl.errors import InputDataError

KM_COLUMNS = ["outcome", "arm_role", "arm", "interval", "time", "n_risk", "surv", "std_err",
              "lower", "upper"]  # fmt: skip
ATTRITION_COLUMNS = ["rule_number", "rule", "persons_remaining", "persons_removed", "suppressed"]
T1_COLUMNS = ["variable", "level", "kind", "arm_role", "phase", "n", "count", "mean", "sd",
              "suppressed"]  # fmt: skip


def small(x: Any, min_cell: int) -> bool:
    """True for a count in (0, min_cell)."""
    return x is not None and not (isinstance(x, float) and math.isnan(x)) and 0 < x < min_cell


# -- KM ------------------------------------------------------------------------------------
def km_cutoff_interval(totals: np.ndarray, n_total: int, data_cutoff: float | None) -> int:
    """Last interval within the ``data_cutoff`` quantile of the grouped follow-up times:
    the smallest k with (persons whose grouped time <= k D) >= data_cutoff * n
    (the type-1 quantile); ``len(totals)`` without a cutoff. ``totals[k-1]`` is the
    number at risk at the start of interval k over both arms."""
    k_max = totals.shape[0]
    if data_cutoff is None or n_total == 0:
        return k_max
    at_risk_next = np.append(totals[1:], 0) if k_max else totals
    done = n_total - at_risk_next  # persons with grouped time <= k D (horizon: still at risk)
    hit = np.flatnonzero(done >= data_cutoff * n_total - 1e-9)
    return int(hit[0]) + 1 if hit.size else k_max


def pooled_km(
    sums: Mapping[str, np.ndarray],
    arms: Mapping[str, str],
    interval_days: int,
    min_cell: int,
    data_cutoff: float | None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Published pooled KM (see module docstring) and, per outcome, where and why it ends."""
    z = float(stats.norm.ppf(0.975))
    outcomes = sorted({k.split("|")[1] for k in sums if k.startswith("km|")})
    rows: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    for outcome in outcomes:
        roles = sorted(r for r in arms if f"km|{outcome}|{r}|n_risk" in sums)
        totals = np.sum([sums[f"km|{outcome}|{r}|n_risk"] for r in roles], axis=0)
        n_total = int(totals[0]) if totals.size else 0
        k_cut = km_cutoff_interval(totals, n_total, data_cutoff)
        info[outcome] = {"data_cutoff": data_cutoff,
                         "cutoff_time": k_cut * interval_days, "arms": {}}  # fmt: skip
        for role in roles:
            n = sums[f"km|{outcome}|{role}|n_risk"].astype(float)
            d = sums[f"km|{outcome}|{role}|n_event"].astype(float)
            surv, var_log = 1.0, 0.0
            last = 0
            reason = f"data cutoff ({data_cutoff} quantile of follow-up)"
            for k in range(1, k_cut + 1):
                nk, dk = float(n[k - 1]), float(d[k - 1])
                if nk < max(min_cell, 1):
                    reason = (f"pooled n at risk {'0' if nk == 0 else 'below the min cell'} "
                              f"from interval {k}")  # fmt: skip
                    break
                surv *= 1.0 - dk / nk
                var_log += dk / (nk * (nk - dk)) if nk > dk else math.inf
                row: dict[str, Any] = {"outcome": outcome, "arm_role": role, "arm": arms[role],
                                       "interval": k, "time": k * interval_days,
                                       "n_risk": int(nk), "surv": surv, "std_err": None,
                                       "lower": None, "upper": None}  # fmt: skip
                if surv > 0 and math.isfinite(var_log):
                    se_log = math.sqrt(var_log)
                    row["std_err"] = surv * se_log
                    row["lower"] = math.exp(math.log(surv) - z * se_log)
                    row["upper"] = min(1.0, math.exp(math.log(surv) + z * se_log))
                rows.append(row)
                last = k
            info[outcome]["arms"][role] = {"last_interval": last,
                                           "last_time": last * interval_days,
                                           "ends_because": reason}  # fmt: skip
    return pd.DataFrame(rows, columns=KM_COLUMNS), info


# -- attrition -------------------------------------------------------------------------------
def suppress_attrition(att: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """Attrition with the subtraction ``removed = remaining_before - remaining_after``
    closed off.

    1. A rule that removes a small number of persons is merged with the following rule(s)
       (labels joined with " + ") until the merged removal is 0 or >= min_cell; a small
       removal at the end is merged into the preceding row. If all rules together remove
       a small number, the first row's count is withheld as well.
    2. From the first row whose ``persons_remaining`` is small on, remaining and removed
       are withheld (each remaining equation then has two unknowns).
    """
    need = {"rule_number", "rule", "persons_remaining", "persons_removed"}
    missing = need - set(att.columns)
    if missing:
        raise InputDataError(f"attrition: missing column(s) {sorted(missing)}")
    records: list[Any] = att.sort_values("rule_number", kind="stable").to_dict("records")
    rows = [
        {
            "rule_number": int(r["rule_number"]),
            "rule": str(r["rule"]),
            "persons_remaining": int(r["persons_remaining"]),
            "persons_removed": int(r["persons_removed"]),
            "suppressed": "",
        }
        for r in records
    ]
    if not rows:
        return pd.DataFrame(columns=ATTRITION_COLUMNS)
    merged: list[dict[str, Any]] = [rows[0]]
    pending: dict[str, Any] | None = None
    for r in rows[1:]:
        if pending is not None:
            r = {
                **r,
                "rule": f"{pending['rule']} + {r['rule']}",
                "persons_removed": pending["persons_removed"] + r["persons_removed"],
            }
            pending = None
        if small(r["persons_removed"], min_cell):
            pending = r
        else:
            merged.append(r)
    if pending is not None:
        if len(merged) > 1:
            last = merged[-1]
            merged[-1] = {
                **pending,
                "rule": f"{last['rule']} + {pending['rule']}",
                "persons_removed": last["persons_removed"] + pending["persons_removed"],
            }
        else:
            merged[0]["persons_remaining"] = None
            merged[0]["suppressed"] = "persons_remaining"
            merged.append({**pending, "persons_removed": None, "suppressed": "persons_removed"})
    first_small = next(
        (i for i, r in enumerate(merged) if small(r["persons_remaining"], min_cell)), None
    )
    if first_small is not None:
        for r in merged[first_small:]:
            r["persons_remaining"] = None
            r["persons_removed"] = None
            r["suppressed"] = "persons_remaining;persons_removed"
    return pd.DataFrame(merged, columns=ATTRITION_COLUMNS)


# -- linear audit ------------------------------------------------------------------------------
@dataclass
class AuditRow:
    label: str
    vector: np.ndarray  # indicator over the fine cells
    value: float
    fixed: bool = False  # published elsewhere too: never chosen for secondary suppression


def _in_span(vec: np.ndarray, rows: Sequence[np.ndarray]) -> bool:
    if not rows:
        return not np.any(vec)
    a = np.vstack(rows)
    return bool(np.linalg.matrix_rank(np.vstack([a, vec])) == np.linalg.matrix_rank(a))


def linear_audit(
    published: list[AuditRow], sensitive: list[AuditRow], min_cell: int
) -> tuple[list[str], list[str]]:
    """Greedy secondary suppression: (labels of published rows to withhold, labels of
    small sensitive counts still recoverable afterwards — empty when the audit passes).

    A published row with a small value is withheld first (primary suppression). Then,
    while a small sensitive count is a linear combination of the published rows, the
    published row with the smallest value whose removal breaks that combination is
    withheld (rows marked ``fixed`` are never chosen).
    """
    withheld = [p.label for p in published if small(p.value, min_cell) and not p.fixed]
    live = [p for p in published if p.label not in withheld]
    targets = [s for s in sensitive if small(s.value, min_cell)]
    changed = True
    while changed:
        changed = False
        for s in targets:
            if not _in_span(s.vector, [p.vector for p in live]):
                continue
            candidates = sorted((p for p in live if not p.fixed), key=lambda p: (p.value, p.label))
            if not candidates:
                continue
            rest = [p.vector for p in live]
            breaking = [
                p for p in candidates
                if not _in_span(s.vector, [v for q, v in zip(live, rest, strict=True) if q is not p])
            ]  # fmt: skip
            victim = breaking[0] if breaking else candidates[0]
            withheld.append(victim.label)
            live = [p for p in live if p.label != victim.label]
            changed = True
    left = [s.label for s in targets if _in_span(s.vector, [p.vector for p in live])]
    return withheld, left


# -- Table 1 -------------------------------------------------------------------------------------
def pooled_table1(
    sums: Mapping[str, np.ndarray],
    kinds: Mapping[str, str],
    levels: Mapping[str, list[str]],
    roles: Sequence[str],
    min_cell: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pooled Table 1: one row per (variable, level, arm, phase) with n, count (binary /
    categorical), mean (proportion) and SD, plus the SMD per (variable, level, phase).

    Suppression per variable and arm: the finest cells are (level, matched / unmatched);
    published are each level's count before and after matching and the arm's n before
    and after. A count, complement (n - count) or unmatched count (before - after) in
    (0, N) must not be published nor be a linear combination of what is: primary
    suppression withholds the small published counts, :func:`linear_audit` the rest, and
    a variable whose counts are withheld in an arm and phase is withheld whole there
    (with its SMDs)."""
    rows: list[dict[str, Any]] = []
    withheld: set[tuple[str, str, str]] = set()  # (variable, role, phase)
    for var in sorted(kinds):
        kind = kinds[var]
        for role in roles:
            vals = {ph: sums[f"table1|{var}|{role}|{ph}"] for ph in ("before", "after")}
            if kind == "continuous":
                for ph, v in vals.items():
                    n, s1, s2 = float(v[0]), float(v[1]), float(v[2])
                    mean = s1 / n if n > 0 else None
                    sd = (math.sqrt(max(0.0, (s2 - n * mean * mean) / (n - 1)))
                          if mean is not None and n > 1 else None)  # fmt: skip
                    rows.append({"variable": var, "level": "", "kind": kind, "arm_role": role,
                                 "phase": ph, "n": int(round(n)), "count": None, "mean": mean,
                                 "sd": sd, "suppressed": ""})  # fmt: skip
                continue
            labels = ["1"] if kind == "binary" else list(levels.get(var, []))
            counts = {ph: [int(x) for x in vals[ph][1:]] for ph in vals}
            ns = {ph: int(vals[ph][0]) for ph in vals}
            cells = _t1_cells(labels, counts, ns, kind)
            to_hide, left = linear_audit(cells.published, cells.sensitive, min_cell)
            for ph in ("before", "after"):
                if left or any(lbl.startswith(f"{ph}:") for lbl in to_hide):
                    withheld.add((var, role, ph))
            for ph in ("before", "after"):
                n = ns[ph]
                n_hidden = small(n, min_cell)
                if n_hidden:
                    withheld.add((var, role, ph))
                hide = (var, role, ph) in withheld
                for lv, c in zip(labels, counts[ph], strict=True):
                    rows.append({"variable": var, "level": "" if kind == "binary" else lv,
                                 "kind": kind, "arm_role": role, "phase": ph,
                                 "n": None if n_hidden else n,
                                 "count": None if hide else c,
                                 "mean": None if hide or n == 0 else c / n, "sd": None,
                                 "suppressed": "count;mean" if hide else ""})  # fmt: skip
    frame = pd.DataFrame(rows, columns=T1_COLUMNS)
    smd = _smd_table(frame, withheld, roles)
    for col in ("n", "count"):
        frame[col] = pd.array([None if v is None or pd.isna(v) else int(v) for v in frame[col]],
                              dtype="Int64")  # fmt: skip
    return frame, smd


@dataclass
class _Cells:
    published: list[AuditRow]
    sensitive: list[AuditRow]


def _t1_cells(
    labels: list[str], counts: Mapping[str, list[int]], ns: Mapping[str, int], kind: str
) -> _Cells:
    """Fine cells of one variable in one arm: (level incl. the rest, matched / unmatched)."""
    levels = [*labels, "<rest>"]
    m = 2 * len(levels)  # index 2 i: matched, 2 i + 1: unmatched

    def vec(pairs: list[int]) -> np.ndarray:
        v = np.zeros(m)
        v[pairs] = 1
        return v

    rest = {ph: ns[ph] - sum(counts[ph]) for ph in counts}
    after = [*counts["after"], rest["after"]]
    before = [*counts["before"], rest["before"]]
    published = [AuditRow("before:n", vec(list(range(m))), ns["before"], fixed=True),
                 AuditRow("after:n", vec(list(range(0, m, 2))), ns["after"], fixed=True)]  # fmt: skip
    for i, lv in enumerate(labels):
        published.append(AuditRow(f"before:{lv}", vec([2 * i, 2 * i + 1]), before[i]))
        published.append(AuditRow(f"after:{lv}", vec([2 * i]), after[i]))
    sensitive = []
    for i, lv in enumerate(levels):
        sensitive.append(AuditRow(f"after:{lv}", vec([2 * i]), after[i]))
        sensitive.append(AuditRow(f"unmatched:{lv}", vec([2 * i + 1]), before[i] - after[i]))
        sensitive.append(AuditRow(f"before:{lv}", vec([2 * i, 2 * i + 1]), before[i]))
    del kind
    return _Cells(published, sensitive)


def _smd_table(
    frame: pd.DataFrame, withheld: set[tuple[str, str, str]], roles: Sequence[str]
) -> pd.DataFrame:
    out = []
    if set(roles) != {"control", "treated"}:
        return pd.DataFrame(columns=["variable", "level", "phase", "smd"])
    for (var, level, ph), part in frame.groupby(["variable", "level", "phase"], sort=True):
        by = {r["arm_role"]: r for r in part.to_dict("records")}
        t, c = by.get("treated"), by.get("control")
        smd = None
        hidden = (var, "treated", ph) in withheld or (var, "control", ph) in withheld
        if t and c and not hidden and t["mean"] is not None and c["mean"] is not None:
            if t["kind"] == "continuous":
                vt, vc = (t["sd"] or 0.0) ** 2, (c["sd"] or 0.0) ** 2
            else:
                vt, vc = t["mean"] * (1 - t["mean"]), c["mean"] * (1 - c["mean"])
            denom = math.sqrt((vt + vc) / 2)
            smd = (t["mean"] - c["mean"]) / denom if denom > 0 else 0.0
        out.append({"variable": var, "level": level, "phase": ph, "smd": smd})
    return pd.DataFrame(out, columns=["variable", "level", "phase", "smd"])


# -- log-rank and binary --------------------------------------------------------------------------
def pooled_logrank(sums: Mapping[str, np.ndarray], min_cell: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(k for k in sums if k.startswith("logrank|") and k.endswith("|observed")):
        outcome = key.split("|")[1]
        o = sums[key].astype(float)
        e_c, e_t, v = (float(x) for x in sums[f"logrank|{outcome}|ev"])
        chi = (o[1] - e_t) ** 2 / v if v > 0 else None
        entry: dict[str, Any] = {
            "groups": ["control", "treated"],
            "observed": [int(o[0]), int(o[1])],
            "expected": [e_c, e_t],
            "total_events": int(o.sum()),
            "variance": v,
            "chi_square": chi,
            "df": 1,
            "p_value": None if chi is None else float(stats.chi2.sf(chi, 1)),
            "suppressed": "",
        }
        n = [float(sums[f"km|{outcome}|{r}|n_risk"][0]) for r in ("control", "treated")
             if f"km|{outcome}|{r}|n_risk" in sums]  # fmt: skip
        censored = [a - b for a, b in zip(n, o, strict=False)] if len(n) == 2 else []
        if any(small(x, min_cell) for x in [*o, *censored]):
            entry.update(observed=None, expected=None, total_events=None,
                         suppressed="observed;expected;total_events")  # fmt: skip
        out[outcome] = entry
    return out


def pooled_binary(sums: Mapping[str, np.ndarray], min_cell: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(k for k in sums if k.startswith("binary|")):
        _, outcome, role = key.split("|")
        events, n = (int(x) for x in sums[key])
        hide_n = small(n, min_cell)
        hide = hide_n or small(events, min_cell) or small(n - events, min_cell)
        out.setdefault(outcome, {})[role] = {
            "events": None if hide else events,
            "n": None if hide_n else n,
            "risk": None if hide or n == 0 else events / n,
            "suppressed": "events;risk" + (";n" if hide_n else "") if hide else "",
        }
    return out
