"""Options shared by several subcommands."""

from __future__ import annotations

import click


def _profile_or_global(
    ctx: click.Context, _param: click.Parameter, value: str | None
) -> str | None:
    """The subcommand's ``--profile``, else the one given before the subcommand
    (``cohort-etl --profile NAME build``)."""
    if value is not None:
        return value
    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    found = obj.get("profile")
    return found if isinstance(found, str) else None


profile_option = click.option(
    "--profile",
    "profile_name",
    default=None,
    metavar="NAME",
    callback=_profile_or_global,
    help="Connection profile from profiles.yml (default: $COHORT_ETL_PROFILE or the file's default).",
)

accept_vocabulary_option = click.option(
    "--accept-incomplete-vocabulary",
    "accept_incomplete_vocabulary",
    is_flag=True,
    help="Proceed when concept_ancestor or concept_relationship is empty (descendants / "
    "mapped source codes are then not found; the report states it).",
)
