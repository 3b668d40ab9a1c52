"""Study outputs: a rerun after a spec change leaves exactly the files of the new run;
duplicate study names are refused with both files; the run ends with a summary line per
study."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import duckdb_profile_at

from cohort_etl.synthetic.generator import generate
from cohort_etl.synthetic.params import SynthParams

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "cohort_etl.cli"]


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("outputs")
    path = root / "omop.duckdb"
    generate(SynthParams(seed=12, persons=400, n_core=40), duckdb_profile_at(path, "t"))
    profiles = root / "profiles.yml"
    profiles.write_text(f"default: t\nprofiles:\n  t:\n    type: duckdb\n    path: {path}\n")
    return {
        **os.environ,
        "COHORT_ETL_PROFILES": str(profiles),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "-q", *argv], env=env, capture_output=True, text=True, timeout=900, check=False
    )


def without_relapse_outcome(text: str) -> str:
    """The HSCT study spec without its 'relapse' outcome (its KM files go away)."""
    lines = text.splitlines()
    start = lines.index("  - name: relapse")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("  - name:"))
    return "\n".join(lines[:start] + lines[end:]) + "\n"


def test_rerun_after_a_spec_change_leaves_exactly_the_new_files(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = cli(env, "run", "--no-demo", "--study", "hsct_after_cart", "--out", str(out))
    assert first.returncode == 0, first.stderr[-2000:]
    # the summary line of the study
    assert any(
        line.startswith("hsct_after_cart: ") and "patients in the index cohort (" in line
        for line in first.stdout.splitlines()
    ), first.stdout
    before = files(out / "hsct_after_cart")
    assert any("relapse" in f for f in before)
    specs = tmp_path / "specs"
    specs.mkdir()
    text = (ROOT / "studies" / "hsct_after_cart.yaml").read_text()
    (specs / "hsct_after_cart.yaml").write_text(without_relapse_outcome(text))
    args = ["run", "--no-demo", "--skip-build", "--specs", str(specs)]
    rerun = cli(env, *args, "--out", str(out))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    fresh = cli(env, *args, "--out", str(tmp_path / "fresh"))
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    after = files(out / "hsct_after_cart")
    assert after == files(tmp_path / "fresh" / "hsct_after_cart")
    assert not any("relapse" in f for f in after)
    assert sorted(p.name for p in out.iterdir()) == ["hsct_after_cart", "run_timings.json"]


def test_duplicate_study_names_are_refused_naming_both_files(
    env: dict[str, str], tmp_path: Path
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(ROOT / "studies" / "hsct_after_cart.yaml", specs / "a.yaml")
    shutil.copy(ROOT / "studies" / "hsct_after_cart.yaml", specs / "b.yaml")
    proc = cli(
        env, "run", "--no-demo", "--skip-build", "--specs", str(specs), "--out", str(tmp_path / "o")
    )
    assert proc.returncode == 6
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        f"error: study name 'hsct_after_cart' is used by two specs: {specs / 'a.yaml'} and "
        f"{specs / 'b.yaml'} (their outputs would overwrite each other); rename one"
    )
    assert not (tmp_path / "o").exists()
