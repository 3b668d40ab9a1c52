"""A site's :class:`~cohort_etl.network.site.SiteData` from a finished study folder
(``output/<profile>/<study>/`` of ``cohort-etl run``), at the site.

Patient-level inputs are used here in memory and never leave the site: the survival
records of each arm are rebuilt from the run's per-time KM tables (checked against the
run's own log-rank), the Cox analyses that need covariates or matched pairs use
``matched_data.csv`` (matched sets) and ``analysis_dataset.csv`` (multivariable models,
filtered as the engine does) and are checked against the run's own coefficients; an
analysis that does not reproduce is listed in ``not_exported`` instead. The run's results
are read as the engine's typed :class:`~cohort_etl.engine.results.StudyResults` through
:func:`read_run`, the one place that knows their fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohort_etl.engine.results import StudyResults, TimeToEventResult
from cohort_etl.errors import CohortEtlError, InputDataError, NotEstimable, SpecError
from cohort_etl.network.keys import Network
from cohort_etl.network.package import StudyInfo, provenance_from_manifest
from cohort_etl.network.site import SINGLE, CoxAnalysis, SiteData, Table1Cell
from cohort_etl.outcomes.cox import CoxPH
from cohort_etl.outcomes.logrank import logrank_test
from cohort_etl.specfile import file_hash

REFIT_RTOL = 1e-6


@dataclass
class RunView:
    """What the network needs from a run's results (adapter over results.json)."""

    study: str
    title: str
    arms: dict[str, str]  # role -> label
    data_cutoff: str | None
    outcome_types: dict[str, str]
    logrank: dict[str, dict[str, Any]] = field(default_factory=dict)
    matched_cox: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    binary: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    cox_models: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> cov -> coef
    n_arms: dict[str, dict[str, int]] = field(default_factory=dict)  # phase -> role -> n
    sensitivity: dict[str, float | None] = field(default_factory=dict)  # key -> coef
    comparisons: list[str] = field(default_factory=list)
    target_trial_hr: float | None = None  # the run's target-trial hazard ratio


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


def read_run(results: StudyResults, spec: Any) -> RunView:
    """The adapter: the run's typed results (engine schema 2) -> :class:`RunView`."""
    if spec.arms:
        arms = {"treated": spec.arms.label(spec.arms.treated),
                "control": spec.arms.label(spec.arms.control)}  # fmt: skip
    else:
        arms = {SINGLE: SINGLE}
    by_label = {label: role for role, label in arms.items()}
    view = RunView(study=spec.name, title=spec.title, arms=arms,
                   data_cutoff=results.data_cutoff,
                   outcome_types={o.name: o.type for o in spec.outcomes})  # fmt: skip
    for name, res in results.outcomes.items():
        if isinstance(res, TimeToEventResult):
            lr = res.logrank
            if lr is not None and lr.groups and lr.observed is not None:
                view.logrank[name] = {"groups": lr.groups, "observed": lr.observed,
                                      "expected": lr.expected}  # fmt: skip
            view.matched_cox[name] = {
                key: {"coef": float(hr.coef)}
                for key, hr in (("cox", res.cox), ("cox_stratified_sets", res.cox_stratified_sets))
                if hr is not None and hr.estimable and hr.coef is not None
            }
        elif res.per_arm is not None:
            view.binary[name] = {
                by_label[label]: (a.events, a.n) for label, a in res.per_arm.items()
            }
        elif res.overall is not None:
            view.binary[name] = {SINGLE: (res.overall.events, res.overall.n)}
    for name, m in results.cox_models.items():
        view.cox_models[name] = {c.covariate: float(c.coef) for c in m.coefficients
                                 if c.coef is not None}  # fmt: skip
    if results.matching is not None:
        for phase, counts in (("before", results.matching.n_before),
                              ("after", results.matching.n_after)):  # fmt: skip
            if counts is not None:
                view.n_arms[phase] = {"treated": counts.treated, "control": counts.control}
    view.sensitivity = {
        k: float(r.cox.coef) if r.cox is not None and r.cox.estimable and r.cox.coef is not None
        else None
        for k, r in results.sensitivity.items()
    }  # fmt: skip
    view.comparisons = sorted(results.comparisons)
    if results.target_trial is not None:
        view.target_trial_hr = results.target_trial.hr
    return view


def analysed_rows(dataset: pd.DataFrame, spec: Any, cutoff: pd.Timestamp | None) -> pd.DataFrame:
    """The compared rows the engine analyses (``cox_models``, sensitivity analyses), from
    ``analysis_dataset.csv``: the engine's own selection
    (:func:`cohort_etl.engine.study.study_rows`), so the two cannot drift."""
    from cohort_etl.engine.study import study_rows

    return study_rows(spec, dataset, cutoff).compared


def _names(spec: Any, columns: list[str]) -> str:
    return ", ".join(str(spec.labels.get(c, c)) for c in columns)


def sensitivity_label(s: Any, o: Any, spec: Any) -> str:
    """A readable label of a sensitivity analysis (the pooled report's heading)."""
    out = o.label or o.name
    exposure = spec.labels.get(s.exposure_date, s.exposure_date) if s.exposure_date else None
    if s.kind == "unmatched":
        text = f"{out}: unmatched cohort, treated vs control"
    elif s.kind == "naive_ever_treated":
        text = f"{out}: ever vs never {exposure} (naive, immortal time not removed)"
    elif s.kind == "landmark":
        text = (f"{out}: landmark day {s.landmark_day}, {exposure} on or before day "
                f"{s.landmark_day} vs not")  # fmt: skip
        if s.event_free_date:
            free = spec.labels.get(s.event_free_date, s.event_free_date)
            text += f", among those free of {free} at day {s.landmark_day}"
    else:
        text = f"{out}: {exposure} as a time-varying exposure (start, stop]"
    if s.adjust_for:
        text += f"; adjusted for {_names(spec, list(s.adjust_for))}"
    return text


def sensitivity_analysis(
    s: Any,
    o: Any,
    compared: pd.DataFrame,
    cutoff: pd.Timestamp | None,
    label: str = "",
    levels: dict[str, list[str]] | None = None,
) -> CoxAnalysis:
    """Sensitivity analysis ``s`` as a pooled hazard ratio of its exposure (the first
    term), on the rows and design of the engine's own
    :func:`cohort_etl.engine.study.sensitivity_data`; categorical adjustment terms with
    the network's ``levels`` (the same columns at every site, also where a site lacks a
    level; the exposure's coefficient does not depend on the reference level)."""
    from cohort_etl.engine.study import sensitivity_data

    sd = sensitivity_data(s, o, compared, cutoff, levels)
    cols = [str(c) for c in sd.X.columns]
    data = pd.DataFrame(sd.X.to_numpy(dtype=float), columns=cols).assign(
        time=sd.time, event=sd.event
    )
    if sd.entry is not None:
        data = data.assign(entry=sd.entry, cluster=sd.cluster)
    return CoxAnalysis(f"sensitivity:{s.key}", o.name, data, cols, cols[0], label)


def target_trial_label(tt: Any) -> str:
    return (f"Target trial: {tt.label_within} vs {tt.label_never} (grace period "
            f"{tt.grace_days} days; clone-censor-weighting)")  # fmt: skip


def target_trial_analysis(
    tt: Any, rows: pd.DataFrame, label: str = ""
) -> tuple[CoxAnalysis, float | None]:
    """The target-trial emulation as a weighted hazard ratio, with the engine's own
    functions (:func:`cohort_etl.designs.section.run_section`): the eligible persons of
    ``rows`` (the compared rows of ``study_rows``), the clones, the site's own censoring
    models and weights (the spec's options), and the clone rows with weight > 0 as
    counting-process rows (``entry``, ``time``, ``event``, ``arm`` 1 = within grace,
    ``weight``, ``cluster`` = person). Also returns the engine's point log HR on them
    (None where not estimable, e.g. no event in one strategy: the site still sends its
    profile, monotone in the log HR, which the sum over sites absorbs)."""
    from cohort_etl.designs.section import clone_data, eligible
    from cohort_etl.designs.target_trial import TargetTrial

    data, _ = eligible(tt, rows)
    clones = clone_data(tt, data)
    columns = ["entry", "time", "event", "arm", "weight", "cluster"]
    if clones.n < 2:
        # no emulation at the site (fewer than 2 eligible persons): its stratum of the
        # network's site-stratified weighted Cox holds at most one person, whose
        # contribution to the partial likelihood, its score and the sandwich is zero
        empty = pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
        return CoxAnalysis("target_trial", "target_trial", empty, ["arm"], "arm", label), None
    emulation = TargetTrial(clones, tt.options())
    log_hr: float | None
    try:  # as run_target_trial: the censoring models fitted once, the Cox on their weights
        point, coefs = emulation.estimate()
        log_hr = point.log_hr
    except NotEstimable:
        coefs, log_hr = emulation.model_coefficients(np.ones(clones.n)), None
    frame = emulation.rows.frame(ids=clones.person)
    frame["weight"] = emulation.weights(coefs=coefs)
    frame = frame[frame["weight"] > 0].reset_index(drop=True)
    out = pd.DataFrame({"entry": frame["start"].to_numpy(float),
                        "time": frame["stop"].to_numpy(float),
                        "event": frame["event"].to_numpy(float),
                        "arm": frame["arm"].to_numpy(float),
                        "weight": frame["weight"].to_numpy(float),
                        "cluster": frame["id"].to_numpy()})  # fmt: skip
    return CoxAnalysis("target_trial", "target_trial", out, ["arm"], "arm", label), log_hr


def _add_target_trial(
    site: SiteData, spec: Any, view: RunView, dataset: pd.DataFrame | None
) -> None:
    """Export the target-trial estimate if the site's refit of the emulation reproduces
    the run's hazard ratio (rtol 1e-6); where neither the run nor the refit could
    estimate it (e.g. no event in one strategy) the site still sends its profile, as a
    sensitivity analysis does."""
    if spec.target_trial is None:
        return
    if dataset is None:
        site.not_exported.append({"section": "target_trial", "reason": "no analysis dataset"})
        return
    try:
        a, log_hr = target_trial_analysis(spec.target_trial, dataset,
                                          target_trial_label(spec.target_trial))  # fmt: skip
    except CohortEtlError as exc:
        site.not_exported.append({"section": "target_trial", "reason": f"not rebuilt: {exc}"})
        return
    want = view.target_trial_hr
    if (want is None) != (log_hr is None) or (
        want is not None
        and log_hr is not None
        and not np.isclose(log_hr, np.log(want), rtol=REFIT_RTOL, atol=1e-9)
    ):
        site.not_exported.append({"section": "target_trial",
                                  "reason": "does not reproduce the run's hazard ratio"})  # fmt: skip
        return
    site.cox.append(a)


def records_from_km_table(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """The (time, event) multiset of one arm from its per-time KM table."""
    for col in ("time", "n_risk", "n_event", "n_censor"):
        if col not in table.columns:
            raise InputDataError(f"{source}: missing column {col!r}")
    t = table["time"].to_numpy(dtype=float)
    d = table["n_event"].to_numpy(dtype=np.int64)
    c = table["n_censor"].to_numpy(dtype=np.int64)
    if not np.array_equal(table["n_risk"].to_numpy(dtype=np.int64), (d + c)[::-1].cumsum()[::-1]):
        raise InputDataError(f"{source}: n_risk does not equal events + censored from that time on")
    return pd.DataFrame({"time": np.concatenate([np.repeat(t, d), np.repeat(t, c)]),
                         "event": np.concatenate([np.ones(d.sum()), np.zeros(c.sum())])})  # fmt: skip


def _check_logrank(lr: dict[str, Any] | None, rec: pd.DataFrame, source: Path) -> None:
    if not lr or not lr.get("groups") or rec["arm_role"].nunique() < 2:
        return
    ours = logrank_test(rec["time"], rec["event"], (rec["arm_role"] == "treated").astype(int))
    if not (np.allclose(ours.observed, lr["observed"], rtol=1e-8, atol=0)
            and np.allclose(ours.expected, lr["expected"], rtol=1e-8, atol=0)):  # fmt: skip
        raise InputDataError(f"{source}: does not reproduce the log-rank test of results.json")


def _refits(
    data: pd.DataFrame,
    covariates: list[str],
    want: dict[str, float],
    terms: list[str] | None = None,
) -> bool:
    """Does a Cox fit of ``data`` give the run's coefficients ``want`` for ``terms`` (all
    covariates unless given)?"""
    x = data[covariates].to_numpy(dtype=float)

    def col(name: str) -> Any:
        return data[name].to_numpy() if name in data.columns else None

    try:
        fit = CoxPH().fit(data["time"].to_numpy(float), data["event"].to_numpy(float), x,
                          strata=col("stratum"), entry=col("entry")).result_  # fmt: skip
    except CohortEtlError:
        return False
    got = dict(zip(covariates, fit.coef, strict=True))
    return all(c in want and np.isclose(got[c], want[c], rtol=REFIT_RTOL, atol=1e-9)
               for c in (covariates if terms is None else terms))  # fmt: skip


def _table1(
    balance: pd.DataFrame, view: RunView, net: Network, not_exported: list[dict[str, str]]
) -> tuple[dict[tuple[str, str, str], Table1Cell], dict[str, str]]:
    """Site Table 1 aggregates from the run's table1_balance.csv: proportions x n are
    the counts; a continuous variable's sum is mean x n and its sum of squares comes from
    the variances implied by the SMD and the variance ratio (sample variances)."""
    cells: dict[tuple[str, str, str], Table1Cell] = {}
    kinds: dict[str, str] = {}
    for var, part in balance.groupby("variable", sort=True):
        var = str(var)
        kind = str(part["kind"].iloc[0])
        ok = True
        for phase in ("before", "after"):
            ns = view.n_arms.get(phase, {})
            if kind == "continuous":
                r = part.iloc[0]
                mt, mc = float(r[f"mean_treated_{phase}"]), float(r[f"mean_control_{phase}"])
                smd, ratio = r.get(f"smd_{phase}"), r.get(f"var_ratio_{phase}")
                if smd is None or pd.isna(smd) or smd == 0 or ratio is None or pd.isna(ratio):
                    ok = False
                    break
                pooled_var = ((mt - mc) / float(smd)) ** 2
                vc = 2 * pooled_var / (1 + float(ratio))
                for role, mean, var_ in (("treated", mt, float(ratio) * vc), ("control", mc, vc)):
                    n = ns[role]
                    cells[(var, role, phase)] = Table1Cell(
                        "continuous", [n, mean * n, (n - 1) * var_ + n * mean * mean]
                    )
            else:
                levels = ["1"] if kind == "binary" else [str(x) for x in part["level"]]
                if kind != "binary":
                    listed = net.table1_levels.get(var)
                    if listed is None or sorted(set(levels) - set(listed)):
                        raise InputDataError(
                            f"table1: variable {var!r} has levels {levels}; the network file "
                            f"lists {listed} (table1_levels)")  # fmt: skip
                    levels = list(listed)
                names = ["1"] if kind == "binary" else [str(x) for x in part["level"]]
                by_level = dict(zip(names, part.itertuples(), strict=True))
                for role in ("treated", "control"):
                    n = ns[role]
                    counts = [round(float(getattr(by_level[lv], f"mean_{role}_{phase}")) * n)
                              if lv in by_level else 0 for lv in levels]  # fmt: skip
                    cells[(var, role, phase)] = Table1Cell(
                        "binary" if kind == "binary" else "categorical", [n, *counts]
                    )
        if ok:
            kinds[var] = "binary" if kind == "binary" else (
                "continuous" if kind == "continuous" else "categorical")  # fmt: skip
        else:
            for phase in ("before", "after"):
                for role in ("treated", "control"):
                    cells.pop((var, role, phase), None)
            not_exported.append({"section": f"table1:{var}", "reason": "variance not "
                                 "recoverable from SMD and variance ratio"})  # fmt: skip
    return cells, kinds


def _add_sensitivity(
    site: SiteData,
    s: Any,
    spec: Any,
    view: RunView,
    dataset: pd.DataFrame | None,
    cutoff: pd.Timestamp | None,
    net: Network,
) -> None:
    """Export sensitivity analysis ``s`` if its rows can be rebuilt; checked against the
    run's coefficient where the run has one. A site whose own fit was not estimable
    (e.g. an empty landmark group, no events) still sends its profile: flat in the
    exposure, it adds nothing to the pooled exposure effect but keeps the layout equal
    across sites."""
    from cohort_etl.studies.spec import TimeToEvent

    section = f"sensitivity:{s.key}"
    o = spec.outcome(s.outcome)
    if dataset is None or not isinstance(o, TimeToEvent):
        site.not_exported.append({"section": section, "reason": "no analysis dataset or "
                                  "not a time-to-event outcome"})  # fmt: skip
        return
    levels = {c: list(net.table1_levels[c]) for c in s.adjust_for if c in net.table1_levels}
    try:
        own = sensitivity_analysis(s, o, dataset, cutoff)  # the engine's design, as run
        a = sensitivity_analysis(s, o, dataset, cutoff, sensitivity_label(s, o, spec), levels)
    except CohortEtlError as exc:
        site.not_exported.append({"section": section, "reason": f"rows not rebuilt: {exc}"})
        return
    want = view.sensitivity.get(s.key)
    if want is not None and not _refits(own.data, own.covariates, {own.term: want}, [own.term]):
        site.not_exported.append({"section": section,
                                  "reason": "does not reproduce the run's Cox"})  # fmt: skip
        return
    site.cox.append(a)


def site_from_study_dir(
    study_dir: Path, net: Network
) -> tuple[SiteData, StudyInfo, dict[str, Any], list[str]]:
    """SiteData, study info, provenance and attrition rule names of a study folder."""
    from cohort_etl.engine.study import cox_model_data
    from cohort_etl.engine.times import time_to_event
    from cohort_etl.studies.spec import TimeToEvent, load_spec

    study_dir = Path(study_dir)
    if not (study_dir / "results.json").is_file():
        raise InputDataError(
            f"{study_dir / 'results.json'}: not found (is this a `cohort-etl run` study folder?)"
        )
    results = StudyResults.read(study_dir / "results.json")
    manifest = _read_json(study_dir / "manifest.json")
    if results.error:
        raise InputDataError(f"{study_dir}: the study did not run ({results.error})")
    spec_path, spec_hash = manifest.get("study_spec"), manifest.get("study_spec_sha256")
    if not spec_path or not spec_hash:
        raise InputDataError(f"{study_dir / 'manifest.json'}: no study_spec / study_spec_sha256")
    path = Path(spec_path)
    if not path.is_file():
        raise InputDataError(f"{study_dir / 'manifest.json'}: study spec {path} not found")
    if file_hash(path) != spec_hash:
        raise SpecError(f"{path}: changed since the run (hash differs from {spec_hash})")
    spec = load_spec(path)
    view = read_run(results, spec)
    by_label = {label: role for role, label in view.arms.items()}
    tables = study_dir / "tables"
    site = SiteData(arms=dict(view.arms), binary=dict(view.binary))
    cutoff = pd.Timestamp(view.data_cutoff) if view.data_cutoff else None
    matched_path, all_path = study_dir / "matched_data.csv", study_dir / "analysis_dataset.csv"
    matched = pd.read_csv(matched_path) if matched_path.is_file() else None
    dataset = analysed_rows(pd.read_csv(all_path), spec, cutoff) if all_path.is_file() else None
    for o in spec.outcomes:
        if view.outcome_types.get(o.name) != "time_to_event":
            continue
        km_path = tables / f"km_{o.name}.csv"
        if not km_path.is_file():
            site.not_exported.append(
                {"section": f"outcome:{o.name}", "reason": f"no {km_path.name}"}
            )
            continue
        km = pd.read_csv(km_path)
        parts = []
        for label, part in km.groupby("arm", sort=True):
            role = SINGLE if SINGLE in view.arms else by_label.get(str(label))
            if role is None:
                raise InputDataError(f"{km_path}: arm {label!r} is not an arm of the spec")
            rec = records_from_km_table(part.sort_values("time"), f"{km_path} (arm {label})")
            parts.append(rec.assign(arm_role=role))
        rec = pd.concat(parts, ignore_index=True)
        _check_logrank(view.logrank.get(o.name), rec, km_path)
        site.survival[o.name] = rec
        fits = view.matched_cox.get(o.name, {})
        if "cox" in fits and SINGLE not in view.arms:
            data = rec.assign(treated=(rec["arm_role"] == "treated").astype(float))
            if _refits(data, ["treated"], {"treated": float(fits["cox"]["coef"])}):
                site.cox.append(CoxAnalysis(f"outcome:{o.name}:matched", o.name, data,
                                            ["treated"], "treated",
                                            f"{o.label or o.name}: matched cohort, "
                                            f"{view.arms['treated']} vs "
                                            f"{view.arms['control']}"))  # fmt: skip
            else:
                site.not_exported.append({"section": f"outcome:{o.name}:matched",
                                          "reason": "does not reproduce the run's Cox"})  # fmt: skip
        if "cox_stratified_sets" in fits and matched is not None and spec.arms:
            assert isinstance(o, TimeToEvent)
            times = time_to_event(matched, o, cutoff)
            treated = (matched[spec.arms.column].astype(str) == spec.arms.treated).astype(int)
            data = pd.DataFrame({"time": times.time, "event": times.event,
                                 "stratum": matched.get("set_id"), "treated": treated})  # fmt: skip
            want = {"treated": float(fits["cox_stratified_sets"]["coef"])}
            if data.notna().all().all() and _refits(data, ["treated"], want):
                site.cox.append(CoxAnalysis(f"outcome:{o.name}:matched_stratified_sets",
                                            o.name, data, ["treated"], "treated",
                                            f"{o.label or o.name}: matched cohort, "
                                            "stratified on matched sets"))  # fmt: skip
            else:
                site.not_exported.append({"section": f"outcome:{o.name}:stratified_sets",
                                          "reason": "does not reproduce the run's Cox"})  # fmt: skip
    for m in spec.cox_models:
        want = view.cox_models.get(m.name, {})
        o = spec.outcome(m.outcome)
        if dataset is None or not isinstance(o, TimeToEvent) or not want:
            site.not_exported.append({"section": f"cox_model:{m.name}", "reason": "no "
                                      "analysis dataset or result"})  # fmt: skip
            continue
        cm = cox_model_data(m, o, dataset, cutoff)  # the engine's design (references, scales)
        cols = [str(c) for c in cm.design.columns]
        data = pd.DataFrame(cm.design.matrix, columns=cols).assign(time=cm.time, event=cm.event)
        if _refits(data, cols, want):
            site.cox.extend(CoxAnalysis(f"cox_model:{m.name}:{c}", m.outcome, data, cols, c,
                                        f"{m.label or m.name}: {c}")
                            for c in cols)  # fmt: skip
        else:
            site.not_exported.append({"section": f"cox_model:{m.name}",
                                      "reason": "does not reproduce the run's Cox"})  # fmt: skip
    for s in spec.sensitivity:
        _add_sensitivity(site, s, spec, view, dataset, cutoff, net)
    _add_target_trial(site, spec, view, dataset)
    for name in view.comparisons:
        site.not_exported.append({"section": f"comparison:{name}", "reason": "no hazard "
                                  "ratio (medians / proportions and a log-rank or chi-square "
                                  "test across levels; not pooled)"})  # fmt: skip
    att_path = tables / "attrition.csv"
    rules: list[str] = []
    if att_path.is_file():
        att = pd.read_csv(att_path).sort_values("rule_number")
        rules = [str(r) for r in att["rule"]]
        site.attrition = list(zip(rules, (int(x) for x in att["persons_remaining"]), strict=True))
    bal_path = tables / "table1_balance.csv"
    if bal_path.is_file() and view.n_arms.get("before") and view.n_arms.get("after"):
        site.table1, site.table1_kinds = _table1(pd.read_csv(bal_path), view, net,
                                                 site.not_exported)  # fmt: skip
    info = StudyInfo(study=view.study, title=view.title, arms=view.arms,
                     data_cutoff=view.data_cutoff)  # fmt: skip
    prov = provenance_from_manifest(manifest, (study_dir / "manifest.json").read_bytes())
    return site, info, prov, rules
