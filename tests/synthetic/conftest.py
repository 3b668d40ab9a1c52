"""Fixtures for the synthetic-CDM tests: small CDMs generated once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import duckdb_profile_at

from cohort_etl.config import NamedProfile
from cohort_etl.synthetic.generator import GenerateResult, generate
from cohort_etl.synthetic.params import SynthParams

#: A small but complete parameter set: every patient category is present.
SMALL = {
    "persons": 3_000,
    "n_core": 80,
    "n_auto_hsct": 4,
    "n_t_all": 4,
    "n_aml": 3,
    "n_cll": 3,
    "n_dlbcl": 6,
    "n_burkitt": 2,
    "n_no_rr": 4,
    "n_all_no_cart": 30,
    "n_outside_op_all": 5,
    "n_after_death_all": 4,
    "n_duplicate_all": 5,
    "n_outside_op_background": 30,
    "n_after_death_background": 10,
    "n_duplicate_background": 40,
}


@dataclass
class Generated:
    profile: NamedProfile
    result: GenerateResult
    csv_dir: Path


def small_params(seed: int = 11, **overrides: int) -> SynthParams:
    return SynthParams(seed=seed, **{**SMALL, **overrides})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def small_cdm(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """Seed 11, 3,000 background persons, a small ALL subset, plus a CSV export."""
    root = tmp_path_factory.mktemp("small_cdm")
    profile = duckdb_profile_at(root / "cdm.duckdb", "small")
    csv_dir = root / "csv"
    result = generate(small_params(), profile, csv_dir=csv_dir)
    return Generated(profile, result, csv_dir)
