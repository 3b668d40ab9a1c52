"""The one ``cohort-etl`` command. The Makefile calls it; each stage has a subcommand.

Subcommands live in ``cohort_etl.commands.<name>`` and are imported only when used, so
``cohort-etl --help`` is fast and one stage's heavy imports never slow another.
Every user-facing failure is a :class:`cohort_etl.errors.CohortEtlError`: printed as one
line ``error: ...`` on stderr with the error's exit code, never a traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from cohort_etl import __version__
from cohort_etl.errors import CohortEtlError

#: command name -> (module under cohort_etl.commands, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "synth": ("synth", "synth", "Generate a synthetic OMOP CDM v5.4 with known ground truth."),
    "load": ("load", "load", "Load a folder of OMOP CDM CSV files into the profile's database."),
    "concept-sets": ("concept_sets", "concept_sets", "Validate, resolve and diff concept sets."),
    "check": ("check", "check", "Data-quality checks of the CDM (also run by build and run)."),
    "cohorts": ("cohorts", "cohorts", "Export the cohorts as Circe (ATLAS) cohort definitions."),
    "build": ("build", "build", "Run the dbt models: CDM -> cohorts -> analysis marts."),
    "analyze": ("analyze", "analyze", "Run an analysis spec on any analysis dataset."),
    "run": ("run", "run", "End to end: build, analyse each study, write reports."),
    "export": ("network", "export", "Write a site's aggregate-only package of one study."),
    "pool": ("network", "pool", "Pool site packages of one study (federated coordinator)."),
    "network": ("network", "network", "Network site keys and round file (keygen, init, register)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"cohort_etl.commands.{module}"), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cohort-etl")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Debug lines of cohort-etl itself (other libraries stay at warnings).",
)
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.option(
    "--profile",
    "profile_name",
    default=None,
    metavar="NAME",
    help="Connection profile for the subcommand (as its own --profile, which wins).",
)
@click.pass_context
def main(ctx: click.Context, verbose: bool, quiet: bool, profile_name: str | None) -> None:
    """cohort-etl: OMOP CDM -> ALL CAR-T treatment-line cohorts -> matched outcomes."""
    from cohort_etl.progress import configure_output

    # a live display (bars, dbt's per-model lines) on a terminal, plain lines otherwise
    configure_output(verbose=verbose, quiet=quiet)
    logging.getLogger("cohort_etl.cli").debug(
        "cohort-etl %s (python %s): %s",
        __version__,
        sys.version.split()[0],
        ctx.invoked_subcommand,
    )
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    ctx.obj["quiet"] = quiet
    ctx.obj["profile"] = profile_name


def run_cli(argv: list[str] | None = None) -> Any:
    """Entry point: turns domain errors into one-line messages and exit codes."""
    try:
        return main.main(args=argv, standalone_mode=False)
    except CohortEtlError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    run_cli()
