"""``cohort-etl cohorts export --format circe --out DIR``."""

from __future__ import annotations

from pathlib import Path

import click

from cohort_etl.commands.options import profile_option
from cohort_etl.config import get_profile


@click.group("cohorts")
def cohorts() -> None:
    """The project's cohorts as definitions other tools read (OHDSI Circe / ATLAS)."""


@cohorts.command("export")
@profile_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["circe"]),
    required=True,
    help="circe: one Circe cohort expression JSON per cohort (ATLAS, CohortDiagnostics).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder to write <cohort>.json, <cohort>.md and cohorts.json into.",
)
@click.option(
    "--concept-sets",
    "concept_sets_folder",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Concept set folder (default: concept_sets/).",
)
def export(
    profile_name: str | None, fmt: str, out_dir: Path, concept_sets_folder: Path | None
) -> None:
    """Write every cohort of the project as a Circe cohort expression, its concept sets
    embedded with code items resolved against the profile's vocabulary; where a rule has
    no Circe equivalent the nearest one is exported and the difference stated (<cohort>.md,
    the inclusion rule's description, cohorts.json)."""
    from cohort_etl.circe.export import export_circe
    from cohort_etl.db import connected

    profile = get_profile(profile_name)
    with connected(profile, read_only=True) as db:
        exported = export_circe(
            db,
            out_dir,
            vocabulary_schema=profile.settings.cdm_schema,
            cohort_id_offset=profile.settings.cohort_id_offset,
            concept_sets_folder=concept_sets_folder,
        )
    for cohort in exported:
        differs = ", ".join(sorted(cohort.differences)) or "none"
        click.echo(
            f"{cohort.cohort_definition_id} {cohort.name}: {cohort.path} (differs: {differs})"
        )
    click.echo(f"{len(exported)} cohort(s) written to {out_dir} ({fmt})")
