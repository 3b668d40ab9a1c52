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

accept_vocabulary_option = click.option(
    "--accept-incomplete-vocabulary",
    "accept_incomplete_vocabulary",
    is_flag=True,
    help="Proceed when concept_ancestor or concept_relationship is empty (descendants / "
    "mapped source codes are then not found; the report states it).",
)
