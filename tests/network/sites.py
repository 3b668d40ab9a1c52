"""Synthetic multi-site survival data and package builders for the network tests (helpers,
imported by the tests; not a conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cohort_etl.network.package import StudyInfo, build_package, write_package

INFO = StudyInfo(
    study="synthetic_study",
    title="Synthetic two-arm study",
    spec_sha256="0123456789abcdef",
    arms={"treated": "Treated", "control": "Control"},
    min_cell_count=5,
    data_cutoff="2025-06-30",
)
SITES = {"site_a": (300, 0.0015, 11), "site_b": (480, 0.0025, 12), "site_c": (200, 0.001, 13)}


def site_data(site: str) -> pd.DataFrame:
    """Person-level data of one site: integer days, HR 0.6 for treated, site baseline."""
    n, base, seed = SITES[site]
    rng = np.random.default_rng(seed)
    treated = rng.integers(0, 2, n)
    t_event = rng.exponential(1 / (base * np.where(treated == 1, 0.6, 1.0)))
    t_cens = rng.uniform(180, 1500, n)
    time = np.ceil(np.minimum(t_event, t_cens))
    return pd.DataFrame(
        {
            "person_id": np.arange(n) + 10_000 * (seed - 10),
            "site": site,
            "time": time,
            "event": (t_event <= t_cens).astype(int),
            "arm_role": np.where(treated == 1, "treated", "control"),
        }
    )


def all_sites() -> pd.DataFrame:
    return pd.concat([site_data(s) for s in SITES], ignore_index=True)


def write_site_packages(
    root: Path, min_cell: int = 5, interval_days: int = 90, info: StudyInfo = INFO
) -> list[Path]:
    paths = []
    for site in SITES:
        d = site_data(site)
        pkg = build_package(
            info,
            site,
            survival={"os": d[["time", "event", "arm_role"]]},
            binary={
                "any_event": {r: (int(g["event"].sum()), len(g)) for r, g in d.groupby("arm_role")}
            },  # fmt: skip
            min_cell=min_cell,
            interval_days=interval_days,
        )
        paths.append(write_package(pkg, root / site))
    return paths
