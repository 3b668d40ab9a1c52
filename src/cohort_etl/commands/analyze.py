"""``cohort-etl analyze``: the file door of the study engine.

Runs a study spec (the same YAML ``cohort-etl run`` reads; :mod:`cohort_etl.studies.spec`)
on any one-row-per-person dataset (CSV or Parquet) and writes what ``run`` writes for a
study: ``results.json`` (docs/results.schema.json), ``tables/``, ``figures/``,
``matched_data.csv``, ``report.html`` and ``manifest.json``.
"""

from __future__ import annotations

from pathlib import Path

import click

from cohort_etl import __version__


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
    help="Study spec (YAML; see cohort_etl.studies.spec); its mart and cohort are not used.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder (created): results.json, tables/, figures/, report.html, ...",
)
def analyze(data_path: Path, spec_path: Path, out_dir: Path) -> None:
    """Match and compare outcomes on any analysis dataset as a study spec says."""
    from cohort_etl.engine import Study, read_dataset
    from cohort_etl.engine.data import file_sha256
    from cohort_etl.engine.results import Provenance
    from cohort_etl.report.study import write_outputs
    from cohort_etl.specfile import file_hash
    from cohort_etl.studies.spec import load_spec

    spec = load_spec(spec_path)
    data = read_dataset(data_path)
    sha = file_sha256(data_path)
    provenance = Provenance(door="analyze", source=str(data_path), sha256=sha)
    result = Study(spec, source=str(data_path)).run(data, provenance=provenance)
    manifest = {
        "package_version": __version__,
        "study_spec": str(spec_path),
        "study_spec_sha256": file_hash(spec_path),
        "data": str(data_path),
        "data_sha256": sha,
        "matching_seed": spec.matching.seed,
    }
    write_outputs(spec, result, out_dir, manifest)
    n_flags = len(result.results.not_estimable)
    click.echo(
        f"study {spec.name!r}: results in {out_dir}"
        + (f" ({n_flags} item(s) not estimable, see results.json)" if n_flags else ""),
        err=True,
    )
