"""``cohort-etl concept-sets validate | add | resolve | diff | export``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cohort_etl.commands.options import profile_option
from cohort_etl.concept_sets.models import load_expression
from cohort_etl.concept_sets.register import register, register_new
from cohort_etl.concept_sets.registry import (
    ConceptSet,
    RegistryEntry,
    default_folder,
    load_concept_sets,
)
from cohort_etl.concept_sets.resolve import diff as diff_sets
from cohort_etl.concept_sets.resolve import resolve as resolve_sets
from cohort_etl.concept_sets.validate import schema_issues, vocabulary_issues
from cohort_etl.config import get_profile
from cohort_etl.db import connected
from cohort_etl.errors import InputDataError, SpecError

folder_option = click.option(
    "--folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Concept set folder (default: concept_sets/).",
)


@click.group("concept-sets")
def concept_sets() -> None:
    """Validate, resolve and diff the ATLAS/Circe concept sets in concept_sets/."""


def _check_vocabulary(db: object, schema: str) -> None:
    from cohort_etl.db import Database

    assert isinstance(db, Database)
    if not db.schema_exists(schema) or "concept" not in db.tables(schema):
        raise InputDataError(f"vocabulary table {schema}.concept is missing")
    if not db.scalar(f"select count(*) from {db.schema_ref(schema)}.concept"):
        raise InputDataError(f"vocabulary table {schema}.concept is empty")


@concept_sets.command("validate")
@profile_option
@folder_option
@click.option("--offline", is_flag=True, help="Schema checks only; do not open the database.")
@click.option(
    "--no-register",
    is_flag=True,
    help="Do not give new (unregistered) files a draft registry row; report them as errors.",
)
def validate(
    profile_name: str | None, folder: Path | None, offline: bool, no_register: bool
) -> None:
    """Check every concept set file (schema, with file and JSON path) and, unless
    --offline, that the connected vocabulary has every concept named.

    A new ATLAS export in the folder is first given a draft registry row (printed; see
    `concept-sets add`) unless --no-register."""
    added = 0
    if not no_register:
        drafted, refused = register_new(folder)
        for row in drafted:
            click.echo(str(row))
        added = len(drafted)
        if refused:
            for message in refused:
                click.echo(f"error: {message}")
            raise SpecError(f"{len(refused)} concept set file(s) not registered; see above")
    issues = schema_issues(folder)
    if not issues and not offline:
        profile = get_profile(profile_name)
        schema = profile.settings.cdm_schema
        with connected(profile) as db:
            _check_vocabulary(db, schema)
            issues = vocabulary_issues(db, load_concept_sets(folder), schema)
    for issue in issues:
        click.echo(str(issue))
    errors = [i for i in issues if i.level == "error"]
    n = len(load_concept_sets(folder)) if not errors else 0
    if errors:
        raise SpecError(f"{len(errors)} concept set error(s); see above")
    drafts = [s.name for s in load_concept_sets(folder) if s.entry.status == "draft"]
    click.echo(
        f"ok: {n} concept sets valid ({len(issues)} warning(s))"
        + (f"; {added} draft registry row(s) added to registry.csv" if added else "")
    )
    if drafts:
        click.echo(
            f"note: {len(drafts)} draft set(s) not yet reviewed (registry.csv status draft): "
            + ", ".join(drafts)
        )


@concept_sets.command("add")
@folder_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def add(folder: Path | None, file: Path) -> None:
    """Register an ATLAS concept set export with a draft registry.csv row.

    FILE is copied into the concept set folder if it is not there (as a plain file name:
    letters, digits, _ . -). The row (printed) takes
    the export's name (else the file name), the domain its items declare and status draft;
    a reviewer sets status to accepted. Adding a registered file again changes nothing."""
    import shutil

    from cohort_etl.concept_sets.register import safe_file_name
    from cohort_etl.concept_sets.registry import is_file_name

    folder = folder or default_folder()
    inside = file.resolve().parent == folder.resolve()
    # a file from elsewhere is copied under a name the registry accepts
    target = folder / (
        file.name if inside or is_file_name(file.name) else safe_file_name(file.name)
    )
    copied = False
    if file.resolve() != target.resolve():
        if target.exists() and target.read_bytes() != file.read_bytes():
            raise SpecError(
                f"{target}: a different file of that name is already in the concept set "
                "folder; rename one"
            )
        if not target.exists():
            load_expression(file)  # refuse a file that is not a concept set before copying
            shutil.copyfile(file, target)
            copied = True
            click.echo(f"copied {file} to {target}")
    try:
        row = register(target, folder)
    except SpecError:
        if copied:
            target.unlink()  # do not leave a copy the registry refuses
        raise
    click.echo(str(row))


@concept_sets.command("resolve")
@profile_option
@folder_option
@click.option("--set", "names", multiple=True, metavar="NAME", help="Only this set (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def resolve(
    profile_name: str | None, folder: Path | None, names: tuple[str, ...], as_json: bool
) -> None:
    """Resolved concepts per set with record / person counts in the CDM, and orphan source
    codes (in the CDM, mapping into a set's concepts, but not in the set)."""
    sets = load_concept_sets(folder, list(names) or None)
    profile = get_profile(profile_name)
    schema = profile.settings.cdm_schema
    with connected(profile) as db:
        _check_vocabulary(db, schema)
        result = resolve_sets(db, sets, schema)
    if as_json:
        payload = {
            s.name: {
                "concepts": result.concepts[result.concepts["concept_set_name"] == s.name]
                .drop(columns="concept_set_name")
                .to_dict(orient="records"),
                "orphans": result.orphans[result.orphans["concept_set_name"] == s.name]
                .drop(columns="concept_set_name")
                .to_dict(orient="records"),
                "persons": len(result.persons.get(s.name, [])),
            }
            for s in sets
        }
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    for s in sets:
        rows = result.concepts[result.concepts["concept_set_name"] == s.name]
        click.echo(
            f"== {s.name}: {len(rows)} concepts, {len(result.persons.get(s.name, []))} persons"
        )
        for row in rows.itertuples():
            click.echo(
                f"  {row.concept_id:>12} {row.vocabulary_id:<9} {str(row.concept_code):<16} "
                f"{row.match_column:<8} records={row.record_count:<8} persons={row.person_count:<7} "
                f"{row.concept_name}"
            )
        orphans = result.orphans[result.orphans["concept_set_name"] == s.name]
        for row in orphans.itertuples():
            click.echo(
                f"  orphan {row.source_concept_id} {row.vocabulary_id} {row.concept_code} "
                f"-> {row.maps_to_concept_id}: records={row.record_count} persons={row.person_count} "
                f"({row.concept_name})"
            )


def _single_set(path: Path, name: str) -> ConceptSet:
    expression = load_expression(path)
    entry = RegistryEntry(
        id=name,
        name=name,
        file=path.name,
        status="draft",
        description=str(path),
        owner="",
        created="1970-01-01",  # type: ignore[arg-type]
        modified="1970-01-01",  # type: ignore[arg-type]
    )
    return ConceptSet(entry=entry, path=path, expression=expression)


@concept_sets.command("diff")
@profile_option
@click.argument("old", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def diff(profile_name: str | None, old: Path, new: Path, as_json: bool) -> None:
    """Concepts and persons gained / lost going from OLD.json to NEW.json."""
    old_set, new_set = _single_set(old, "old_version"), _single_set(new, "new_version")
    profile = get_profile(profile_name)
    schema = profile.settings.cdm_schema
    with connected(profile) as db:
        _check_vocabulary(db, schema)
        result = resolve_sets(db, [old_set, new_set], schema)
    changes = diff_sets(result, result, "old_version", "new_version")
    if as_json:
        click.echo(json.dumps(changes.__dict__, indent=2))
        return
    click.echo(f"concepts gained ({len(changes.concepts_gained)}): {changes.concepts_gained}")
    click.echo(f"concepts lost ({len(changes.concepts_lost)}): {changes.concepts_lost}")
    click.echo(f"persons gained: {len(changes.persons_gained)}")
    click.echo(f"persons lost: {len(changes.persons_lost)}")


@concept_sets.command("export")
@profile_option
@folder_option
@click.option(
    "--resolved",
    is_flag=True,
    help="Write code items (code_items.csv) as concept items with the site's concept ids.",
)
@click.option("--set", "names", multiple=True, metavar="NAME", help="Only this set (repeatable).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default output/<profile>/concept_sets/).",
)
def export(
    profile_name: str | None,
    folder: Path | None,
    resolved: bool,
    names: tuple[str, ...],
    out_dir: Path | None,
) -> None:
    """One ATLAS concept set export per set ({"name", "description", "expression"}).

    With --resolved, each code item of code_items.csv is looked up by vocabulary and code
    in the connected vocabulary and written as a concept item, so ATLAS and other OHDSI
    tools see the full set (docs/concept_sets.md); codes the vocabulary lacks are named in
    the file's description and left out."""
    from cohort_etl.concept_sets.export import lookup_codes, write_exports
    from cohort_etl.config import project_root

    sets = load_concept_sets(folder, list(names) or None)
    profile = get_profile(profile_name)
    out_dir = out_dir or project_root() / "output" / profile.name / "concept_sets"
    lookup = None
    vocabulary = None
    if resolved:
        schema = profile.settings.cdm_schema
        with connected(profile) as db:
            _check_vocabulary(db, schema)
            codes = [c for s in sets for c in s.code_items]
            lookup = lookup_codes(db, f"{db.schema_ref(schema)}.concept", codes)
            if "vocabulary" in db.tables(schema):
                vocabulary = db.scalar(
                    f"select vocabulary_version from {db.table_ref(schema, 'vocabulary')} "
                    f"where vocabulary_id = {db.param}",
                    ["None"],
                )
    written = write_exports(sets, out_dir, lookup, str(vocabulary) if vocabulary else None)
    for item in written:
        extra = ""
        if item.code_items_resolved or item.code_items_unresolved:
            extra = (
                f" ({len(item.code_items_resolved)} code item(s) resolved"
                + (
                    f", not in the vocabulary: {', '.join(item.code_items_unresolved)}"
                    if item.code_items_unresolved
                    else ""
                )
                + ")"
            )
        click.echo(f"{item.path}: {item.items} item(s){extra}")
    click.echo(f"ok: {len(written)} concept set(s) written to {out_dir}")


__all__ = ["concept_sets"]
