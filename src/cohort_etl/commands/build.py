"""``cohort-etl build``: run the dbt project (CDM -> cohorts -> analysis marts)."""

from __future__ import annotations

import click

from cohort_etl.commands.options import accept_vocabulary_option, profile_option
from cohort_etl.config import get_profile
from cohort_etl.dbt_runner import DbtBuild


@click.command("build")
@profile_option
@click.option("--select", default=None, metavar="SELECTOR", help="dbt --select (default: all).")
@click.option("--threads", type=click.IntRange(1, 64), default=None, help="dbt threads.")
@click.option("--models-only", is_flag=True, help="Seeds and models without data/unit tests.")
@click.option(
    "--source-tests",
    is_flag=True,
    help="Also run dbt's data tests on the CDM sources (keys, person links); by default they "
    "are left out because the data-quality stage has just checked the same.",
)
@accept_vocabulary_option
def build(
    profile_name: str | None,
    select: str | None,
    threads: int | None,
    models_only: bool,
    source_tests: bool,
    accept_incomplete_vocabulary: bool,
) -> None:
    """Check the CDM, compile the concept sets, run dbt build; report counts and warnings."""
    profile = get_profile(profile_name)
    result = DbtBuild(
        profile,
        select=select,
        threads=threads,
        command="run" if models_only else "build",
        accept_incomplete_vocabulary=accept_incomplete_vocabulary,
        source_tests=source_tests,
    ).run()
    for warning in result.warnings:
        # the data-quality stage logged its own findings as it ran
        if not warning.startswith("data quality: "):
            click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"built {result.count('model')} models, {result.count('test')} data tests, "
        f"{result.count('unit_test')} unit tests into {profile.settings.results_schema} "
        f"({result.wall_seconds:.1f} s; models {result.model_execution_seconds:.1f} s)"
    )
