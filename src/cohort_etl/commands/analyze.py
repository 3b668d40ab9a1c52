"""``cohort-etl analyze``: run an analysis spec on any analysis dataset (CSV or Parquet).

The engine is :mod:`cohort_etl.analysis`; this module only reads the files and writes
``results.json`` (docs/results_schema.md), ``matched_data.csv`` and ``balance.csv``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click

from cohort_etl.analysis import read_dataset, run_analysis
from cohort_etl.analysis_spec import load_analysis_spec


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@click.command("analyze")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Analysis dataset, one row per person (.csv or .parquet).",
)
@click.option(
    "--spec",
    "spec_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Analysis spec (YAML; see cohort_etl.analysis_spec).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder (created): results.json, balance.csv, matched_data.csv.",
)
def analyze(data_path: Path, spec_path: Path, out_dir: Path) -> None:
    """Match and compare outcomes on any analysis dataset as an analysis spec says."""
    spec = load_analysis_spec(spec_path)
    data = read_dataset(data_path)
    results, matched, balance = run_analysis(spec, data, source=str(data_path))
    results["data"] = {"file": str(data_path), "sha256": _sha256(data_path)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, allow_nan=False))
    if matched is not None:
        matched.to_csv(out_dir / "matched_data.csv", index=False)
    if balance is not None:
        balance.to_csv(out_dir / "balance.csv", index=False)
    n_flags = len(results["not_estimable"])
    click.echo(
        f"analysis {spec.name!r}: results in {out_dir}"
        + (f" ({n_flags} item(s) not estimable, see results.json)" if n_flags else ""),
        err=True,
    )
