"""``cohort-etl synth``: generate the synthetic OMOP CDM with known ground truth."""

from __future__ import annotations

from pathlib import Path

import click

from cohort_etl.commands.options import profile_option
from cohort_etl.config import get_profile
from cohort_etl.errors import ConfigError
from cohort_etl.synthetic.params import MAX_PERSONS, SynthParams

_DEFAULTS = SynthParams()


@click.command("synth")
@profile_option
@click.option(
    "--seed", type=int, default=_DEFAULTS.seed, show_default=True, help="Master random seed."
)
@click.option(
    "--persons",
    type=int,
    default=_DEFAULTS.persons,
    show_default=True,
    help="Background population size (the ALL/CAR-T subset comes on top).",
)
@click.option(
    "--cart-patients",
    "n_core",
    type=int,
    default=_DEFAULTS.n_core,
    show_default=True,
    help="CAR-T-treated relapsed/refractory B-ALL patients (study A index population).",
)
@click.option(
    "--hsct-hr",
    type=float,
    default=_DEFAULTS.hsct_hr_os,
    show_default=True,
    help="True hazard ratio of death after allogeneic HSCT.",
)
@click.option("--replace", is_flag=True, help="Overwrite non-empty target schemas.")
@click.option(
    "--if-missing",
    is_flag=True,
    help="Do nothing (exit 0) when the profile's CDM schema already holds tables.",
)
@click.option(
    "--csv-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write one OMOP CSV file per CDM table into this folder.",
)
def synth(
    profile_name: str | None,
    seed: int,
    persons: int,
    n_core: int,
    hsct_hr: float,
    replace: bool,
    if_missing: bool,
    csv_dir: Path | None,
) -> None:
    """Generate a synthetic OMOP CDM v5.4 with known ground truth.

    Writes the CDM tables to the profile's cdm_schema and the truth (one row per ALL/CAR-T
    patient, plus the generating parameters) to its truth_schema, in one transaction.
    """
    from cohort_etl.synthetic.generator import cdm_has_tables, generate

    if persons < 0:
        raise ConfigError(f"--persons must be >= 0, got {persons}")
    if persons > MAX_PERSONS:
        raise ConfigError(f"--persons {persons} is absurd (maximum {MAX_PERSONS:,})")
    if n_core < 0 or n_core > 1_000_000:
        raise ConfigError(f"--cart-patients must be between 0 and 1,000,000, got {n_core}")
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    if replace and if_missing:
        raise ConfigError("--replace and --if-missing contradict each other; pass one")
    profile = get_profile(profile_name)
    if if_missing and cdm_has_tables(profile):
        click.echo(
            f"profile {profile.name}: schema {profile.settings.cdm_schema} already holds a CDM; "
            "nothing to do (--if-missing)",
            err=True,
        )
        return
    params = SynthParams(seed=seed, persons=persons, n_core=n_core, hsct_hr_os=hsct_hr).validate()
    result = generate(params, profile, replace=replace, csv_dir=csv_dir)
    click.echo(
        f"synthetic CDM: {result.row_counts.get('person', 0):,} persons, "
        f"{result.event_rows:,} clinical event rows in {result.seconds:.1f} s "
        f"-> {profile.name}:{result.cdm_schema} (truth: {result.truth_schema})"
    )
