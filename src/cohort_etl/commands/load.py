"""``cohort-etl load``: load a folder of OMOP CDM CSV files into the profile's database."""

from __future__ import annotations

from pathlib import Path

import click

from cohort_etl.commands.options import profile_option
from cohort_etl.config import get_profile


@click.command("load")
@profile_option
@click.option(
    "--from",
    "folder",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of OMOP CDM CSV files (person.csv or PERSON.csv, comma or tab, .csv.gz ok); "
    "on a spark profile also Parquet (person.parquet or a person/ folder), registered in place.",
)
@click.option("--replace", is_flag=True, help="Overwrite a non-empty CDM schema.")
def load(profile_name: str | None, folder: Path, replace: bool) -> None:
    """Load OMOP CDM v5.4 CSV files, validated against the CDM spec, in one transaction.

    On a spark profile the folder's tables are registered as the Spark CDM database instead.
    """
    from cohort_etl.config import SparkProfile
    from cohort_etl.loader import load_csv_folder

    profile = get_profile(profile_name)
    if isinstance(profile.settings, SparkProfile):
        from cohort_etl.spark.loader import register_cdm_folder

        registered = register_cdm_folder(folder, profile, replace=replace)
        click.echo(
            f"registered {len(registered.locations)} tables from {folder} "
            f"-> {profile.name}:{registered.schema}"
        )
        return
    result = load_csv_folder(folder, profile, replace=replace)
    total = sum(result.row_counts.values())
    click.echo(
        f"loaded {len(result.row_counts)} tables ({total:,} rows) from {folder} "
        f"-> {profile.name}:{result.schema}"
    )
    if result.removed:
        click.echo(f"removed the synthetic demo's schemas: {', '.join(result.removed)}")
