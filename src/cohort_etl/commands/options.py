"""Options shared by several subcommands."""

from __future__ import annotations

import click

profile_option = click.option(
    "--profile",
    "profile_name",
    default=None,
    metavar="NAME",
    help="Connection profile from profiles.yml (default: $COHORT_ETL_PROFILE or the file's default).",
)
