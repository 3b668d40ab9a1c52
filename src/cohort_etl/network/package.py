"""Site package: the aggregate-only results a site shares with a federated network.

A package is built from one finished study folder (``output/<profile>/<study>/`` as
written by ``cohort-etl run``) and holds no person-level row: ``analysis_dataset.csv``
is never read or copied. Its files (docs/network.md)::

    package.json       schema_version, site, study, spec hash, versions, min_cell,
                       interval_days, hash of the source manifest, sha256 of each CSV
    attrition.csv      cohort attrition (rules with a small removal merged)
    table1.csv         baseline means and SMDs before / after matching
    km_grid.csv        per outcome and arm: at risk, events, censored per interval
    logrank.csv        per outcome and arm: n, observed, expected, variance (O - E - V)
    hazard_ratios.csv  per Cox analysis: coef, se, robust_se, n, events
    binary.csv         per binary outcome and arm: events, n

Small-cell suppression: every count in (0, min_cell) is replaced by null, and so are the
cells from which it could be recovered by subtraction inside the same table (see
:func:`suppress_grid`, :func:`suppress_attrition`, :func:`suppress_table1`). The column
``suppressed`` of each row lists the columns nulled there.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohort_etl import __version__
from cohort_etl.errors import InputDataError, SpecError
from cohort_etl.outcomes.logrank import logrank_test
from cohort_etl.specfile import file_hash

SCHEMA_VERSION = 1
KIND = "cohort-etl site package"
DEFAULT_MIN_CELL = 5
DEFAULT_INTERVAL_DAYS = 30
TABLES = ("attrition", "table1", "km_grid", "logrank", "hazard_ratios", "binary")
ROLES = ("treated", "control")
SINGLE = "all"

COLUMNS: dict[str, list[str]] = {
    "attrition": ["rule_number", "rule", "persons_remaining", "persons_removed", "suppressed"],
    "table1": [
        "covariate",
        "variable",
        "level",
        "kind",
        "mean_treated_before",
        "mean_control_before",
        "smd_before",
        "mean_treated_after",
        "mean_control_after",
        "smd_after",
        "suppressed",
    ],  # fmt: skip
    "km_grid": [
        "outcome",
        "arm_role",
        "arm",
        "interval",
        "start",
        "time",
        "n_risk",
        "n_event",
        "n_censor",
        "suppressed",
    ],  # fmt: skip
    "logrank": [
        "outcome",
        "arm_role",
        "arm",
        "n",
        "observed",
        "expected",
        "variance",
        "suppressed",
    ],  # fmt: skip
    "hazard_ratios": [
        "analysis",
        "outcome",
        "coef",
        "se",
        "robust_se",
        "n",
        "events",
        "suppressed",
    ],  # fmt: skip
    "binary": ["outcome", "arm_role", "arm", "events", "n", "suppressed"],
}
INT_COLUMNS = {
    "rule_number", "persons_remaining", "persons_removed", "interval", "start", "time",
    "n_risk", "n_event", "n_censor", "n", "events",
}  # fmt: skip


@dataclass
class SitePackage:
    """A package in memory: ``meta`` (package.json without file hashes) and its tables."""

    meta: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyInfo:
    """What a package needs to know about the study besides its data."""

    study: str
    title: str
    spec_sha256: str
    arms: dict[str, str]  # role ("treated" / "control", or "all") -> label
    min_cell_count: int = DEFAULT_MIN_CELL
    data_cutoff: str | None = None


def small(x: Any, min_cell: int) -> bool:
    """True for a count in (0, min_cell): the cells the rule suppresses."""
    return x is not None and not (isinstance(x, float) and math.isnan(x)) and 0 < x < min_cell


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- KM risk table on a coarse grid ------------------------------------------------------
def km_grid(time: np.ndarray, event: np.ndarray, interval_days: int) -> pd.DataFrame:
    """Interval-grouped risk table of one arm.

    Interval 1 is ``[0, D]`` and interval ``k >= 2`` is ``((k - 1) D, k D]``: a time
    ``t`` is grouped to ``max(1, ceil(t / D)) D``. ``n_risk`` counts persons with grouped
    time ``>= k D`` (at risk at the start of the interval), ``n_event`` / ``n_censor``
    those whose event / censoring falls in the interval. The KM product over these
    intervals is ``survfit`` on the grouped times (censorings tied with events at risk).
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float)
    k = np.maximum(1, np.ceil(t / interval_days)).astype(np.int64)
    kmax = int(k.max()) if k.size else 0
    rows = []
    for j in range(1, kmax + 1):
        rows.append(
            {
                "interval": j,
                "start": (j - 1) * interval_days,
                "time": j * interval_days,
                "n_risk": int((k >= j).sum()),
                "n_event": int(((k == j) & (e > 0)).sum()),
                "n_censor": int(((k == j) & (e == 0)).sum()),
            }
        )
    return pd.DataFrame(rows, columns=["interval", "start", "time", "n_risk", "n_event",
                                       "n_censor"])  # fmt: skip


def suppress_grid(grid: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """Tail suppression of one arm's grid: rows before the first interval ``k*`` with a
    count in (0, min_cell) are published whole; at ``k*`` only ``n_risk`` is kept (when it
    is not itself small) and no row follows.

    Within the table every interval satisfies ``n_risk[k] = n_event[k] + n_censor[k] +
    n_risk[k + 1]``; with everything after ``k*`` withheld, the one equation that still
    holds a published number (at ``k*``) has at least three unknowns, so no withheld count
    can be recovered by subtraction. The pooled KM needs every interval up to ``t``, so
    withholding the tail loses nothing that a per-cell rule would keep estimable. Hiding
    the rows after ``k*`` also hides the length of the longest follow-up.
    """
    out = grid.astype(object).copy()
    out["suppressed"] = ""
    cells = ["n_risk", "n_event", "n_censor"]
    bad = [
        i for i in range(len(grid)) if any(small(float(grid[c].iloc[i]), min_cell) for c in cells)
    ]
    if not bad:
        return out
    kstar = bad[0]
    out = out.iloc[: kstar + 1].copy()
    row = out.index[kstar]
    nulled = ["n_event", "n_censor"]
    if small(float(grid.iloc[kstar]["n_risk"]), min_cell):
        nulled.insert(0, "n_risk")
    for c in nulled:
        out.at[row, c] = None
    out.at[row, "suppressed"] = ";".join(nulled) + ";after"
    return out


# -- attrition --------------------------------------------------------------------------
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
        raise InputDataError(f"attrition.csv: missing column(s) {sorted(missing)}")
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
        return pd.DataFrame(columns=COLUMNS["attrition"])
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
            # all rules together remove a small number: withhold it and the first count
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
    return pd.DataFrame(merged, columns=COLUMNS["attrition"])


# -- Table 1 ----------------------------------------------------------------------------
def suppress_table1(
    balance: pd.DataFrame, n_arms: Mapping[str, Mapping[str, int]], min_cell: int
) -> pd.DataFrame:
    """Table 1 means and SMDs; proportions of binary and categorical covariates are
    counts in disguise (``count = mean * n``).

    For each variable, arm and phase (before / after matching) the partition of the arm
    into the variable's levels (and the rest, ``n`` minus the listed levels) is checked:
    if any part is a count in (0, min_cell), every level's mean of that variable in that
    arm and phase is withheld, and so is the SMD of each such level (the SMD and the other
    arm's mean would give the mean back). Continuous covariates are not counts and are
    published.
    """
    cols = [c for c in COLUMNS["table1"] if c != "suppressed"]
    missing = set(cols) - set(balance.columns)
    if missing:
        raise InputDataError(f"table1_balance.csv: missing column(s) {sorted(missing)}")
    out = balance[cols].astype(object).copy()
    out["suppressed"] = ""
    out = out.where(pd.notna(out), None)
    nulled: dict[int, set[str]] = {i: set() for i in out.index}
    for phase in ("before", "after"):
        for role in ROLES:
            n = n_arms.get(phase, {}).get(role)
            if n is None:
                continue
            col = f"mean_{role}_{phase}"
            for _, part in out[out["kind"].isin(["binary", "level"])].groupby(
                "variable", sort=True
            ):
                vals = [float(v) for v in part[col] if v is not None]
                counts = [round(v * n) for v in vals]
                rest = n - sum(counts)
                if any(small(c, min_cell) for c in [*counts, rest]):
                    for i in part.index:
                        nulled[i] |= {col, f"smd_{phase}"}
    for i, cs in nulled.items():
        order = [c for c in cols if c in cs]
        for c in order:
            out.at[i, c] = None
        out.at[i, "suppressed"] = ";".join(order)
    return out.reset_index(drop=True)


# -- rows of the small tables -------------------------------------------------------------
def _null_small(row: dict[str, Any], cells: list[str], min_cell: int) -> dict[str, Any]:
    nulled = [c for c in cells if small(row.get(c), min_cell)]
    for c in nulled:
        row[c] = None
    row["suppressed"] = ";".join(nulled)
    return row


def logrank_rows(
    outcome: str, records: pd.DataFrame, arms: Mapping[str, str], min_cell: int
) -> list[dict[str, Any]]:
    """O, E and V per arm (exact event times, one site = one stratum); observed event
    counts and arm sizes in (0, min_cell) are withheld."""
    lr = logrank_test(records["time"], records["event"], records["arm_role"])
    rows = []
    for j, role in enumerate(lr.groups):
        row = {
            "outcome": outcome,
            "arm_role": role,
            "arm": arms[role],
            "n": int(lr.n[j]),
            "observed": float(lr.observed[j]),
            "expected": float(lr.expected[j]),
            "variance": float(lr.variance[j, j]),
        }
        rows.append(_null_small(row, ["n", "observed"], min_cell))
    return rows


def binary_rows(
    outcome: str, per_arm: Mapping[str, tuple[int, int]], arms: Mapping[str, str], min_cell: int
) -> list[dict[str, Any]]:
    """Events and n per arm; events are withheld when events or non-events (n - events)
    are small, n (and events) when n is small."""
    rows = []
    for role in sorted(per_arm):
        events, n = per_arm[role]
        row: dict[str, Any] = {"outcome": outcome, "arm_role": role, "arm": arms[role],
                               "events": int(events), "n": int(n)}  # fmt: skip
        nulled = []
        if small(n, min_cell):
            nulled = ["events", "n"]
        elif small(events, min_cell) or small(n - events, min_cell):
            nulled = ["events"]
        for c in nulled:
            row[c] = None
        row["suppressed"] = ";".join(nulled)
        rows.append(row)
    return rows


def hazard_row(
    analysis: str, outcome: str, cox: Mapping[str, Any], min_cell: int
) -> dict[str, Any] | None:
    """One Cox analysis (coef on the log scale, model and robust SE); None when the fit
    was not estimable."""
    coef, se = cox.get("coef"), cox.get("se")
    if not cox.get("estimable", True) or coef is None or se is None:
        return None
    if not (math.isfinite(coef) and math.isfinite(se) and se > 0):
        return None
    row = {
        "analysis": analysis,
        "outcome": outcome,
        "coef": float(coef),
        "se": float(se),
        "robust_se": None if cox.get("robust_se") is None else float(cox["robust_se"]),
        "n": None if cox.get("n") is None else int(cox["n"]),
        "events": None if cox.get("events") is None else int(cox["events"]),
    }
    return _null_small(row, ["n", "events"], min_cell)


# -- assembling a package -----------------------------------------------------------------
def _check_params(min_cell: int, interval_days: int) -> None:
    if min_cell < 0:
        raise InputDataError(f"min_cell: must be >= 0, got {min_cell}")
    if interval_days < 1:
        raise InputDataError(f"interval_days: must be >= 1, got {interval_days}")


def _frame(name: str, rows: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    frame = frame.reindex(columns=COLUMNS[name])
    for c in frame.columns:
        if c in INT_COLUMNS:
            frame[c] = pd.array([None if v is None or pd.isna(v) else int(v) for v in frame[c]],
                                dtype="Int64")  # fmt: skip
    return frame.reset_index(drop=True)


def build_package(
    info: StudyInfo,
    site_id: str,
    *,
    survival: Mapping[str, pd.DataFrame],
    binary: Mapping[str, Mapping[str, tuple[int, int]]] | None = None,
    hazards: list[tuple[str, str, Mapping[str, Any]]] | None = None,
    attrition: pd.DataFrame | None = None,
    balance: pd.DataFrame | None = None,
    n_arms: Mapping[str, Mapping[str, int]] | None = None,
    min_cell: int | None = None,
    interval_days: int = DEFAULT_INTERVAL_DAYS,
    source_manifest_sha256: str | None = None,
    source_version: str | None = None,
    not_exported: list[dict[str, str]] | None = None,
) -> SitePackage:
    """Assemble a package from site-internal inputs (which it does not keep).

    Parameters
    ----------
    survival
        Outcome name -> frame with ``time``, ``event`` (0/1) and ``arm_role`` per person;
        reduced here to the interval grid and O - E - V, never stored.
    binary
        Outcome name -> role -> (events, n).
    hazards
        (analysis key, outcome, cox dict with coef, se, robust_se, n, events).
    attrition, balance, n_arms
        The study's attrition table, Table 1 (``table1_balance.csv``) and arm sizes
        (phase -> role -> n) for the proportions of Table 1.
    """
    if not site_id or not str(site_id).strip():
        raise InputDataError("site_id: must not be empty")
    mc = info.min_cell_count if min_cell is None else int(min_cell)
    _check_params(mc, interval_days)
    tables: dict[str, Any] = {}
    grids: list[pd.DataFrame] = []
    lr_rows: list[dict[str, Any]] = []
    for outcome in sorted(survival):
        rec = survival[outcome]
        unknown = sorted(set(rec["arm_role"]) - set(info.arms))
        if unknown:
            raise InputDataError(f"outcome {outcome}: arm role(s) {unknown} not in {info.arms}")
        for role in sorted(set(rec["arm_role"])):
            part = rec[rec["arm_role"] == role]
            g = suppress_grid(km_grid(part["time"].to_numpy(), part["event"].to_numpy(),
                                      interval_days), mc)  # fmt: skip
            g.insert(0, "outcome", outcome)
            g.insert(1, "arm_role", role)
            g.insert(2, "arm", info.arms[role])
            grids.append(g)
        if set(ROLES) <= set(rec["arm_role"]):
            lr_rows.extend(logrank_rows(outcome, rec, info.arms, mc))
    tables["km_grid"] = pd.concat(grids, ignore_index=True) if grids else []
    tables["logrank"] = lr_rows
    tables["binary"] = [
        row
        for o in sorted(binary or {})
        for row in binary_rows(o, (binary or {})[o], info.arms, mc)
    ]
    hr_rows = [hazard_row(a, o, cox, mc) for a, o, cox in hazards or []]
    tables["hazard_ratios"] = sorted(
        (r for r in hr_rows if r is not None), key=lambda r: str(r["analysis"])
    )
    tables["attrition"] = (
        suppress_attrition(attrition, mc) if attrition is not None and len(attrition) else []
    )
    tables["table1"] = (
        suppress_table1(balance, n_arms or {}, mc) if balance is not None and len(balance) else []
    )
    frames = {name: _frame(name, tables[name]) for name in TABLES}
    meta = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "site_id": str(site_id),
        "study": info.study,
        "title": info.title,
        "study_spec_sha256": info.spec_sha256,
        "data_cutoff": info.data_cutoff,
        "arms": dict(sorted(info.arms.items())),
        "cohort_etl_version": __version__,
        "source_cohort_etl_version": source_version,
        "source_manifest_sha256": source_manifest_sha256,
        "min_cell": mc,
        "interval_days": int(interval_days),
        "cells_suppressed": {
            name: int(frames[name]["suppressed"].fillna("").astype(str).str.len().gt(0).sum())
            for name in TABLES
        },
        "not_exported": list(not_exported or []),
    }
    return SitePackage(meta=meta, tables=frames)


# -- from a study output folder -------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputDataError(f"{path}: not found (is this a `cohort-etl run` study folder?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputDataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputDataError(f"{path}: expected a JSON object")
    return data


def records_from_km_table(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """The (time, event) multiset of one arm from its per-time survival table (one row per
    distinct time with ``n_event`` and ``n_censor``); kept in memory only."""
    for col in ("time", "n_risk", "n_event", "n_censor"):
        if col not in table.columns:
            raise InputDataError(f"{source}: missing column {col!r}")
    t = table["time"].to_numpy(dtype=float)
    d = table["n_event"].to_numpy(dtype=np.int64)
    c = table["n_censor"].to_numpy(dtype=np.int64)
    risk = table["n_risk"].to_numpy(dtype=np.int64)
    expected_risk = (d + c)[::-1].cumsum()[::-1]
    if not np.array_equal(risk, expected_risk):
        raise InputDataError(f"{source}: n_risk does not equal events + censored from that time on")
    times = np.concatenate([np.repeat(t, d), np.repeat(t, c)])
    events = np.concatenate([np.ones(d.sum()), np.zeros(c.sum())])
    return pd.DataFrame({"time": times, "event": events})


def study_info_from_folder(study_dir: Path) -> tuple[StudyInfo, dict[str, Any], dict[str, Any]]:
    """StudyInfo, results.json and manifest.json of a study folder; the spec (for the arm
    roles and outcome types) is read from the path the manifest names and must still have
    the hash the run recorded."""
    from cohort_etl.studies.spec import load_spec

    results = _read_json(study_dir / "results.json")
    manifest = _read_json(study_dir / "manifest.json")
    if results.get("error"):
        raise InputDataError(f"{study_dir}: the study did not run ({results['error']})")
    spec_path = manifest.get("study_spec")
    spec_hash = manifest.get("study_spec_sha256")
    if not spec_path or not spec_hash:
        raise InputDataError(f"{study_dir / 'manifest.json'}: no study_spec / study_spec_sha256")
    path = Path(spec_path)
    if not path.is_file():
        raise InputDataError(f"{study_dir / 'manifest.json'}: study spec {path} not found")
    if file_hash(path) != spec_hash:
        raise SpecError(f"{path}: changed since the run (hash differs from {spec_hash})")
    spec = load_spec(path)
    if spec.name != results.get("study"):
        raise InputDataError(f"{path}: spec {spec.name!r} but results of {results.get('study')!r}")
    arms = (
        {
            "treated": spec.arms.label(spec.arms.treated),
            "control": spec.arms.label(spec.arms.control),
        }
        if spec.arms
        else {SINGLE: SINGLE}
    )
    info = StudyInfo(
        study=spec.name,
        title=spec.title,
        spec_sha256=spec_hash,
        arms=arms,
        min_cell_count=int(results.get("min_cell_count", spec.min_cell_count)),
        data_cutoff=results.get("data_cutoff"),
    )
    return info, results, manifest


def package_from_study_dir(
    study_dir: Path,
    site_id: str,
    min_cell: int | None = None,
    interval_days: int = DEFAULT_INTERVAL_DAYS,
) -> SitePackage:
    """Build the package of one finished study folder (reads results.json, manifest.json
    and tables/*.csv; never analysis_dataset.csv)."""
    from cohort_etl.studies.spec import load_spec

    study_dir = Path(study_dir)
    info, results, manifest = study_info_from_folder(study_dir)
    spec = load_spec(Path(manifest["study_spec"]))
    tables = study_dir / "tables"
    by_label = {label: role for role, label in info.arms.items()}
    survival: dict[str, pd.DataFrame] = {}
    binary: dict[str, dict[str, tuple[int, int]]] = {}
    hazards: list[tuple[str, str, Mapping[str, Any]]] = []
    not_exported: list[dict[str, str]] = []
    outcomes = results.get("outcomes", {})
    for o in spec.outcomes:
        res = outcomes.get(o.name)
        if res is None:
            not_exported.append({"section": f"outcome:{o.name}", "reason": "not in results.json"})
            continue
        if res.get("type") == "time_to_event":
            path = tables / f"km_{o.name}.csv"
            if not path.is_file():
                not_exported.append({"section": f"outcome:{o.name}", "reason": f"no {path.name}"})
                continue
            km = pd.read_csv(path)
            parts = []
            for label, part in km.groupby("arm", sort=True):
                role = SINGLE if SINGLE in info.arms else by_label.get(str(label))
                if role is None:
                    raise InputDataError(f"{path}: arm {label!r} is not an arm of the spec")
                rec = records_from_km_table(part.sort_values("time"), f"{path} (arm {label})")
                parts.append(rec.assign(arm_role=role))
            survival[o.name] = pd.concat(parts, ignore_index=True)
            _check_logrank(res, survival[o.name], path)
            for key, name in (
                ("cox", "matched"),
                ("cox_robust_pairs", "matched_robust_pairs"),
                ("cox_stratified_pairs", "matched_stratified_pairs"),
            ):
                if key in res:
                    hazards.append((f"outcome:{o.name}:{name}", o.name, res[key]))
        elif res.get("type") == "binary":
            if "per_arm" in res:
                binary[o.name] = {
                    by_label[label]: (int(a["events"]), int(a["n"]))
                    for label, a in res["per_arm"].items()
                }
            elif "overall" in res:
                ov = res["overall"]
                binary[o.name] = {SINGLE: (int(ov["events"]), int(ov["n"]))}
    for key in sorted(results.get("sensitivity", {})):
        s = results["sensitivity"][key]
        if "cox" in s:
            hazards.append((f"sensitivity:{key}", str(s.get("outcome", "")), s["cox"]))
    for name in sorted(results.get("cox_models", {})):
        for row in results["cox_models"][name].get("coefficients", []):
            cox = {"coef": row.get("coef"), "se": row.get("se(coef)")}
            hazards.append((f"cox_model:{name}:{row.get('covariate')}", "", cox))
    for name in sorted(results.get("comparisons", {})):
        not_exported.append({"section": f"comparison:{name}", "reason": "comparisons are not "
                             "exported (schema version 1)"})  # fmt: skip
    attrition = _read_csv_opt(tables / "attrition.csv")
    balance = _read_csv_opt(tables / "table1_balance.csv")
    matching = results.get("matching", {})
    n_arms = {
        phase: {role: int(v) for role, v in matching[f"n_{phase}"].items()}
        for phase in ("before", "after")
        if isinstance(matching.get(f"n_{phase}"), dict)
    }
    manifest_bytes = (study_dir / "manifest.json").read_bytes()
    return build_package(
        info,
        site_id,
        survival=survival,
        binary=binary,
        hazards=hazards,
        attrition=attrition,
        balance=balance,
        n_arms=n_arms,
        min_cell=min_cell,
        interval_days=interval_days,
        source_manifest_sha256=_sha256_bytes(manifest_bytes),
        source_version=manifest.get("package_version"),
        not_exported=not_exported,
    )


def _read_csv_opt(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def _check_logrank(res: Mapping[str, Any], rec: pd.DataFrame, path: Path) -> None:
    """The records rebuilt from the KM table must give the run's own log-rank O and E."""
    lr = res.get("logrank")
    if not lr or not lr.get("groups"):
        return
    ours = logrank_test(rec["time"], rec["event"], (rec["arm_role"] == "treated").astype(int))
    theirs_o = np.asarray(lr["observed"], dtype=float)
    theirs_e = np.asarray(lr["expected"], dtype=float)
    if not (
        np.allclose(ours.observed, theirs_o, rtol=1e-8, atol=0)
        and np.allclose(ours.expected, theirs_e, rtol=1e-8, atol=0)
    ):
        raise InputDataError(f"{path}: does not reproduce the log-rank test of results.json")


# -- writing and reading --------------------------------------------------------------------
def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, float_format="%.12g", lineterminator="\n").encode("utf-8")


def write_package(pkg: SitePackage, out_dir: Path) -> Path:
    """Write package.json and the CSVs into ``out_dir`` (created; existing package files
    are replaced). Same package -> same bytes."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputDataError(f"{out_dir}: exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in TABLES:
        data = _csv_bytes(pkg.tables[name])
        (out_dir / f"{name}.csv").write_bytes(data)
        files[f"{name}.csv"] = _sha256_bytes(data)
    meta = {**pkg.meta, "files": files}
    (out_dir / "package.json").write_text(
        json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8"
    )
    return out_dir


def read_package(path: Path) -> SitePackage:
    """Read and verify a package folder (schema version, file hashes)."""
    path = Path(path)
    meta = _read_json(path / "package.json")
    if meta.get("kind") != KIND:
        raise InputDataError(f"{path}: not a cohort-etl site package (kind {meta.get('kind')!r})")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise InputDataError(
            f"{path}: package schema_version {meta.get('schema_version')!r}; this cohort-etl "
            f"reads version {SCHEMA_VERSION}"
        )
    tables = {}
    for name in TABLES:
        f = path / f"{name}.csv"
        if not f.is_file():
            raise InputDataError(f"{f}: missing from the package")
        data = f.read_bytes()
        if _sha256_bytes(data) != meta.get("files", {}).get(f"{name}.csv"):
            raise InputDataError(f"{f}: sha256 differs from package.json (file altered)")
        frame = pd.read_csv(f, keep_default_na=False, na_values=[""])
        tables[name] = _frame(name, frame)
    meta = {k: v for k, v in meta.items() if k != "files"}
    return SitePackage(meta=meta, tables=tables)
