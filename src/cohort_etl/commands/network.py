"""``cohort-etl export`` (a site's aggregate-only package) and ``cohort-etl pool`` (the
coordinator); the work is in :mod:`cohort_etl.network`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.option(
    "--study-dir",
    required=True,
    type=click.Path(path_type=Path),
    help="A finished study folder: output/<profile>/<study>/ of `cohort-etl run`.",
)
@click.option("--site-id", required=True, help="This site's identifier in the network.")
@click.option(
    "--min-cell",
    type=int,
    default=None,
    help="Minimum cell count; counts in (0, N) are withheld (default: the spec's "
    "min_cell_count, else 5).",
)
@click.option(
    "--interval-days",
    type=int,
    default=30,
    show_default=True,
    help="Width of the KM risk-table intervals.",
)
@click.option(
    "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Package folder."
)
def export(
    study_dir: Path, site_id: str, min_cell: int | None, interval_days: int, out_dir: Path
) -> None:
    """Write the aggregate-only site package of one study (no person-level rows)."""
    from cohort_etl.network.package import package_from_study_dir, write_package

    pkg = package_from_study_dir(study_dir, site_id, min_cell, interval_days)
    write_package(pkg, out_dir)
    n = sum(pkg.meta["cells_suppressed"].values())
    click.echo(
        f"package of {pkg.meta['study']} for site {site_id}: {out_dir} "
        f"(min cell {pkg.meta['min_cell']}; {n} row(s) with withheld cells)",
        err=True,
    )


@click.command("pool")
@click.argument("packages", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder."
)
def pool(packages: tuple[Path, ...], out_dir: Path) -> None:
    """Pool site packages of one study: KM, stratified log-rank, meta-analysed HRs."""
    from cohort_etl.network.pool import pool_packages

    result = pool_packages(list(packages), out_dir)
    click.echo(
        f"pooled {len(result['sites'])} site package(s) of {result['study']}: {out_dir}",
        err=True,
    )
