"""``cohort-etl run``: the main job, end to end."""

from __future__ import annotations

from pathlib import Path

import click

from cohort_etl.commands.options import accept_vocabulary_option, profile_option
from cohort_etl.config import get_profile


@click.command("run")
@profile_option
@click.option(
    "--study",
    "studies",
    multiple=True,
    metavar="NAME",
    help="Run only this study (repeatable); default every studies/*.yaml.",
)
@click.option(
    "--out",
    "out_root",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default output/<profile>/).",
)
@click.option(
    "--specs",
    "studies_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder of study specs (default studies/).",
)
@click.option("--skip-build", is_flag=True, help="Use the existing marts; do not run dbt.")
@click.option(
    "--no-demo",
    is_flag=True,
    help="Fail instead of generating the demo CDM when the profile has none.",
)
@accept_vocabulary_option
@click.pass_context
def run(
    ctx: click.Context,
    profile_name: str | None,
    studies: tuple[str, ...],
    out_root: Path | None,
    studies_dir: Path | None,
    skip_build: bool,
    no_demo: bool,
    accept_incomplete_vocabulary: bool,
) -> None:
    """Build the cohorts (dbt), analyse each study and write results and reports.

    On the embedded default profile with no CDM yet, a synthetic demo CDM is generated
    first. Outputs: output/<profile>/<study>/{results.json, tables/, figures/,
    analysis_dataset.csv, matched_data.csv, report.html, manifest.json}.
    """
    from cohort_etl.pipeline import run_pipeline

    profile = get_profile(profile_name)
    quiet = bool(ctx.obj and ctx.obj.get("quiet"))
    summary = run_pipeline(
        profile,
        studies=list(studies) or None,
        out_root=out_root,
        build=not skip_build,
        allow_demo=not no_demo,
        quiet=quiet,
        studies_dir=studies_dir,
        accept_incomplete_vocabulary=accept_incomplete_vocabulary,
    )
    for name, paths in summary.outputs.items():
        click.echo(f"{name}: {paths['report']}")
    for line in summary_lines(summary):
        click.echo(line)


def summary_lines(summary: object) -> list[str]:
    """The run's last lines: per study the persons in its cohort and per arm, and every
    empty cohort of the build (``EMPTY COHORT: ...``)."""
    from cohort_etl.pipeline import RunSummary

    assert isinstance(summary, RunSummary)
    lines = [w for w in summary.build_warnings if w.startswith("EMPTY COHORT:")]
    for name, res in summary.results.items():
        cohort = res.cohort
        if cohort is None:
            lines.append(f"{name}: no cohort counts")
            continue
        arms = cohort.arms_before_matching or {}
        per_arm = ", ".join(f"{arm} {n}" for arm, n in arms.items())
        matched = ""
        if res.matching is not None and res.matching.n_after is not None:
            after = res.matching.n_after
            matched = f"; after matching {after.treated} and {after.control}"
        lines.append(
            f"{name}: {cohort.n_after_cutoff} patients in the index cohort"
            + (f" ({per_arm})" if per_arm else "")
            + matched
        )
        if cohort.n_after_cutoff == 0:
            lines.append(f"EMPTY COHORT: {name} has 0 persons to analyse")
    return lines
