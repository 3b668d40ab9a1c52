"""Synthetic multi-site networks for the network tests (helpers imported by the tests).

Each site's persons have an arm (HR 0.6 for treated), age / female / race, a matched
flag (Table 1 before / after matching) and an exponential survival time with uniform
censoring (integer days). Sites build their packages in separate processes
(:func:`export_in_processes`): each process sees only its own data and key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohort_etl.network.keys import Network, generate_key, read_key, register, write_key
from cohort_etl.network.package import StudyInfo, build_package, write_package
from cohort_etl.network.site import CoxAnalysis, SiteData, table1_from_persons

STUDY = "synthetic_study"
INFO = StudyInfo(study=STUDY, title="Synthetic two-arm study",
                 arms={"treated": "Treated", "control": "Control"}, data_cutoff="2025-06-30")  # fmt: skip
RACES = ["asian", "black", "white"]
KINDS = {"age": "continuous", "female": "binary", "race": "categorical"}
RULES = ["persons in the CDM", "diagnosis", "treatment after diagnosis", "age >= 18"]


@dataclass(frozen=True)
class SiteSpec:
    site_id: str
    n: int
    base: float
    seed: int
    matched_share: float = 0.8
    race_p: tuple[float, float, float] = (0.1, 0.2, 0.7)


SITES = (SiteSpec("site_a", 300, 0.0015, 11), SiteSpec("site_b", 480, 0.0025, 12),
         SiteSpec("site_c", 200, 0.001, 13))  # fmt: skip


def persons(spec: SiteSpec) -> pd.DataFrame:
    rng = np.random.default_rng(spec.seed)
    n = spec.n
    treated = rng.integers(0, 2, n)
    age = np.round(rng.normal(50, 12, n), 1)
    female = rng.integers(0, 2, n)
    race = rng.choice(RACES, size=n, p=list(spec.race_p))
    rate = spec.base * np.exp(np.log(0.6) * treated + 0.02 * (age - 50) + 0.2 * female)
    t_event = rng.exponential(1 / rate)
    t_cens = rng.uniform(180, 1500, n)
    return pd.DataFrame(
        {
            "person_id": np.arange(n) + 100_000 * spec.seed,
            "site": spec.site_id,
            "arm_role": np.where(treated == 1, "treated", "control"),
            "treated": treated,
            "matched": rng.random(n) < spec.matched_share,
            "age": age,
            "female": female,
            "race": race,
            "time": np.ceil(np.minimum(t_event, t_cens)),
            "event": (t_event <= t_cens).astype(int),
        }
    )


def attrition(spec: SiteSpec) -> list[tuple[str, int]]:
    rng = np.random.default_rng(spec.seed + 1000)
    removed = [0, int(rng.integers(500, 2000)), int(rng.integers(0, 40)),
               int(rng.integers(0, 9))]  # fmt: skip
    remaining = spec.n + int(np.sum(removed))
    out = []
    for rule, r in zip(RULES, removed, strict=True):
        remaining -= r
        out.append((rule, remaining))
    return out


def site_data(spec: SiteSpec) -> SiteData:
    return site_data_from_persons(persons(spec), attrition(spec))


def site_data_from_persons(
    d: pd.DataFrame, rules: list[tuple[str, int]] | None = None, multivariable: bool = True
) -> SiteData:
    """A site's data: survival, Cox analyses and the binary outcome on the matched rows,
    the multivariable Cox on all rows, Table 1 before / after matching."""
    m = d[d["matched"]]
    analyses = [CoxAnalysis("outcome:os:matched", "os", m[["time", "event", "treated"]],
                            ["treated"], "treated")]  # fmt: skip
    if multivariable:
        analyses += [CoxAnalysis(f"cox_model:os_mv:{term}", "os",
                                 d[["time", "event", "treated", "age", "female"]],
                                 ["treated", "age", "female"], term)
                     for term in ("treated", "age")]  # fmt: skip
    return SiteData(
        arms=dict(INFO.arms),
        survival={"os": m[["time", "event", "arm_role"]]},
        cox=analyses,
        binary={
            "any_event": {str(r): (int(g["event"].sum()), len(g)) for r, g in m.groupby("arm_role")}
        },  # fmt: skip
        attrition=list(rules or []),
        table1=table1_from_persons(d, KINDS, {"race": RACES}),
        table1_kinds=dict(KINDS),
    )


def union(specs: Sequence[SiteSpec] = SITES) -> pd.DataFrame:
    return pd.concat([persons(s) for s in specs], ignore_index=True)


def provenance(site_id: str, **over: Any) -> dict[str, Any]:
    prov = {
        "study_spec_sha256": "0123456789abcdef",
        "concept_sets": {"a.json": "11", "b.json": "22"},
        "concept_sets_sha256": hashlib.sha256(b"a.json\t11\nb.json\t22\n").hexdigest(),
        "code_revision": "abc123",
        "code_dirty": False,
        "cohort_etl_version": "0.1.0",
        "dbt_version": "core 1.11, adapter 1.11",
        "duckdb_version": "1.1",
        "vocabulary_version": "synthetic v1",
        "source_manifest_sha256": hashlib.sha256(site_id.encode()).hexdigest(),
    }
    prov.update(over)
    return prov


def make_network(root: Path, specs: Sequence[SiteSpec] = SITES, **settings: Any) -> Network:
    """Keys for every site (files under root/keys) and the registered network file."""
    net = Network(round_id="round-1", study=STUDY, table1_levels={"race": RACES}, **settings)
    for s in specs:
        key = generate_key(s.site_id)
        _, pub = write_key(key, root / "keys")
        register(net, pub)
    net.write(root / "network.json")
    return net


def _export(args: tuple[SiteSpec, str, str, str, dict[str, Any], int | None]) -> str:
    """One site's process: its own data, its own key file, the network file."""
    from cohort_etl.network.keys import read_network

    spec, key_path, net_path, out, prov_over, min_cell = args
    net = read_network(Path(net_path))
    key = read_key(Path(key_path))
    pkg = build_package(site_data(spec), INFO, spec.site_id, key, net,
                        provenance(spec.site_id, **prov_over), min_cell=min_cell)  # fmt: skip
    return str(write_package(pkg, key, Path(out)))


def export_in_processes(
    root: Path,
    specs: Sequence[SiteSpec] = SITES,
    prov_over: dict[str, dict[str, Any]] | None = None,
    min_cell: dict[str, int] | None = None,
    workers: int = 2,
) -> list[Path]:
    jobs = [(s, str(root / "keys" / f"{s.site_id}.key.json"), str(root / "network.json"),
             str(root / "packages" / s.site_id), (prov_over or {}).get(s.site_id, {}),
             (min_cell or {}).get(s.site_id)) for s in specs]  # fmt: skip
    with ProcessPoolExecutor(max_workers=workers) as ex:
        return [Path(p) for p in ex.map(_export, jobs)]


# -- sensitivity analyses: date-based persons run through the engine's own row selection --
CUTOFF = "2025-06-30"
ADJUST = ["age", "female", "race"]
SENSITIVITY_SPEC: dict[str, Any] = {
    "name": STUDY,
    "title": INFO.title,
    "arms": {"column": "arm", "treated": "treated", "control": "control"},
    "outcomes": [{"name": "os", "type": "time_to_event", "label": "OS", "start": "index_date",
                  "event_date": "death_date", "censor_date": "end_of_followup_date"}],
    "sensitivity": [
        {"kind": "unmatched", "outcome": "os"},
        {"kind": "unmatched", "outcome": "os", "adjust_for": ADJUST},
        {"kind": "naive_ever_treated", "outcome": "os", "exposure_date": "hsct_date"},
        {"kind": "landmark", "outcome": "os", "landmark_day": 100, "exposure_date": "hsct_date"},
        {"kind": "landmark", "outcome": "os", "landmark_day": 100, "exposure_date": "hsct_date",
         "adjust_for": ADJUST},
        {"kind": "landmark", "outcome": "os", "landmark_day": 100, "exposure_date": "hsct_date",
         "event_free_date": "relapse_date"},
        {"kind": "time_varying", "outcome": "os", "exposure_date": "hsct_date"},
        {"kind": "time_varying", "outcome": "os", "exposure_date": "hsct_date",
         "adjust_for": ADJUST},
    ],
    "complete_window_days": 180,
    "data_cutoff": CUTOFF,
}  # fmt: skip


def dated_persons(spec: SiteSpec) -> pd.DataFrame:
    """Persons with dates: index 2019-01 .. 2025-03 (some too late for the 180-day
    complete window), an exposure (transplant) at day 10-250 for 50% of the treated and
    15% of the controls when they are alive then, which lowers the hazard to 0.6 times;
    relapse dates for 30%; censoring uniform on 180-1500 days and at the cut-off."""
    rng = np.random.default_rng(spec.seed + 500)
    n = spec.n
    treated = rng.integers(0, 2, n)
    age = np.round(rng.normal(50, 12, n), 1)
    female = rng.integers(0, 2, n)
    race = rng.choice(RACES, size=n, p=list(spec.race_p))
    rate = spec.base * np.exp(0.3 * treated + 0.02 * (age - 50) + 0.2 * female)
    h = np.where(rng.random(n) < np.where(treated == 1, 0.5, 0.15), rng.uniform(10, 250, n),
                 np.nan)  # fmt: skip
    t0 = rng.exponential(1 / rate)
    after = np.isfinite(h) & (t0 > h)
    t_death = np.where(after, h + rng.exponential(1 / (0.6 * rate)), t0)
    h = np.where(np.isfinite(h) & (h < t_death), h, np.nan)
    t_cens = rng.uniform(180, 1500, n)
    relapse = np.where(rng.random(n) < 0.3, rng.uniform(20, 400, n), np.nan)
    index = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 2280, n), unit="D")

    def day(x: np.ndarray) -> pd.Series:
        return pd.Series(index + pd.to_timedelta(np.floor(x), unit="D")).where(np.isfinite(x))

    died = t_death <= t_cens
    return pd.DataFrame(
        {
            "person_id": np.arange(n) + 100_000 * spec.seed,
            "site": spec.site_id,
            "arm": np.where(treated == 1, "treated", "control"),
            "age": age,
            "female": female,
            "race": race,
            "index_date": index,
            "death_date": day(np.where(died, t_death, np.nan)),
            "end_of_followup_date": day(np.minimum(t_death, t_cens)),
            "hsct_date": day(h),
            "relapse_date": day(relapse),
        }
    )


def sensitivity_site_data(d: pd.DataFrame) -> SiteData:
    """A site's sensitivity analyses on the engine's own rows (study_rows, then
    sensitivity_data through the network's export), race with the network's levels."""
    from cohort_etl.engine.study import study_rows
    from cohort_etl.network.study_folder import sensitivity_analysis, sensitivity_label
    from cohort_etl.studies.spec import StudySpec

    spec = StudySpec.model_validate(SENSITIVITY_SPEC)
    cutoff = pd.Timestamp(CUTOFF)
    rows = study_rows(spec, d.drop(columns="site"), cutoff).compared
    o = spec.outcome("os")
    return SiteData(arms=dict(INFO.arms), cox=[
        sensitivity_analysis(s, o, rows, cutoff, sensitivity_label(s, o, spec), {"race": RACES})
        for s in spec.sensitivity
    ])  # fmt: skip


# -- target-trial emulation: the sensitivity study with a target_trial section ------------
TT_SECTION: dict[str, Any] = {
    "exposure_date": "hsct_date",
    "eligibility_end_date": "relapse_date",
    "event_date": "death_date",
    "censor_date": "end_of_followup_date",
    "grace_days": 120,
    "interval_days": 14,
    "covariates": ["age", "female"],
    "horizons_days": [365],
    "ci": "robust",
    "landmark_days": [],
}
TT_SPEC: dict[str, Any] = {**SENSITIVITY_SPEC, "sensitivity": [], "target_trial": TT_SECTION}


def target_trial_site_data(d: pd.DataFrame, **options: Any) -> tuple[SiteData, float | None]:
    """A site's target-trial analysis on the engine's own rows (study_rows, then the
    emulation's clones, censoring models and weights fitted on the site's persons only;
    ``options`` override the spec's target_trial section), and the site's engine log HR
    (None: not estimable at the site)."""
    from cohort_etl.engine.study import study_rows
    from cohort_etl.network.study_folder import target_trial_analysis, target_trial_label
    from cohort_etl.studies.spec import StudySpec

    spec = StudySpec.model_validate({**TT_SPEC, "target_trial": {**TT_SECTION, **options}})
    assert spec.target_trial is not None
    rows = study_rows(spec, d.drop(columns="site"), pd.Timestamp(CUTOFF)).compared
    a, log_hr = target_trial_analysis(spec.target_trial, rows,
                                      target_trial_label(spec.target_trial))  # fmt: skip
    return SiteData(arms=dict(INFO.arms), cox=[a]), log_hr
