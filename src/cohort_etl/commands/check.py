"""``cohort-etl check``: the data-quality stage on its own (``build`` and ``run`` run it
first as well)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cohort_etl.commands.options import accept_vocabulary_option, profile_option
from cohort_etl.config import get_profile


@click.command("check")
@profile_option
@accept_vocabulary_option
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the findings and cleaning counts to this JSON file.",
)
def check(
    profile_name: str | None, accept_incomplete_vocabulary: bool, json_path: Path | None
) -> None:
    """Check the CDM the cohorts read: tables, columns and types, keys, required fields,
    dates (end before start, after death, outside observation), vocabulary, concept-set
    domains. Exit 5 if any error; warnings are listed and the exit is 0."""
    from cohort_etl.quality import run_checks

    profile = get_profile(profile_name)
    report = run_checks(profile, accept_incomplete_vocabulary=accept_incomplete_vocabulary)
    for finding in report.findings:
        click.echo(str(finding))
    for rule in report.cleaning:
        if rule.rows:
            click.echo(
                f"cleaning rule {rule.rule}: {rule.table}: {rule.rows:,} row(s) {rule.action}"
            )
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    report.raise_for_errors()
    click.echo(
        f"ok: {profile.name}:{report.schema}: {len(report.warnings)} warning(s), no errors "
        f"({len(report.checks_run)} check groups)"
    )
