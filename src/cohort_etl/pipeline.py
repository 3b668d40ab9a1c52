"""The pipeline behind ``cohort-etl run``, end to end for a profile: make sure a CDM
exists, build the marts with dbt, run each study spec on the mart it names with the
engine (:class:`cohort_etl.engine.Study`), and write results, figures, report and a run
manifest (:mod:`cohort_etl.report.study`)."""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from cohort_etl import __version__
from cohort_etl.atomic import moved, replaced_folder
from cohort_etl.config import NamedProfile, project_root
from cohort_etl.db import connected
from cohort_etl.diagnostics.spec import control_column
from cohort_etl.engine import Study
from cohort_etl.engine.concept_set_columns import EVENTS_MODEL, add_columns, events_sql, set_names
from cohort_etl.engine.results import ConceptSetSource, DataQuality, Provenance, StudyResults
from cohort_etl.errors import BuildError, CohortEtlError, ConfigError, InputDataError, SpecError
from cohort_etl.progress import Progress
from cohort_etl.quality.findings import QualityReport
from cohort_etl.report.study import write_failure, write_outputs
from cohort_etl.specfile import file_hash
from cohort_etl.studies.spec import StudySpec, discover, load_spec

log = logging.getLogger(__name__)

#: Seed and size of the embedded demo CDM generated when no CDM is configured.
DEMO_SEED = 42


@dataclass
class RunSummary:
    outputs: dict[str, dict[str, Path]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    results: dict[str, StudyResults] = field(default_factory=dict)
    quality: QualityReport | None = None
    build_warnings: list[str] = field(default_factory=list)


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=project_root(),
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project_root(),
            capture_output=True,
            text=True,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def concept_set_hashes(folder: Path | None = None) -> dict[str, str]:
    folder = folder or project_root() / "concept_sets"
    return {p.name: file_hash(p) for p in sorted(folder.glob("*.json"))}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def select_specs(studies_dir: Path, names: list[str] | None) -> list[tuple[Path, StudySpec]]:
    paths = discover(studies_dir)
    if not paths:
        raise SpecError(f"{studies_dir}: no study specs (*.yaml)")
    specs = [(p, load_spec(p)) for p in paths]
    seen: dict[str, Path] = {}
    for path, spec in specs:
        if spec.name in seen:
            raise SpecError(
                f"study name {spec.name!r} is used by two specs: {seen[spec.name]} and {path} "
                "(their outputs would overwrite each other); rename one"
            )
        seen[spec.name] = path
    if names:
        known = {s.name for _, s in specs}
        unknown = sorted(set(names) - known)
        if unknown:
            raise SpecError(
                f"unknown study {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        specs = [(p, s) for p, s in specs if s.name in names]
    return specs


def ensure_cdm(profile: NamedProfile, allow_demo: bool) -> dict[str, Any]:
    """Generate the demo CDM when the profile has none; refuse otherwise."""
    from cohort_etl.synthetic.generator import cdm_has_tables, generate
    from cohort_etl.synthetic.params import SynthParams

    if cdm_has_tables(profile):
        return {"generated": False}
    if not allow_demo or profile.dialect != "duckdb":
        raise ConfigError(
            f"profile {profile.name!r}: CDM schema {profile.settings.cdm_schema!r} has no tables; "
            "load your CDM (cohort-etl load) or generate one (cohort-etl synth); the demo CDM "
            "is generated automatically only into an embedded DuckDB profile"
        )
    params = SynthParams(seed=DEMO_SEED)
    generate(params, profile)
    return {"generated": True, "seed": DEMO_SEED, "persons": params.persons}


def read_mart(profile: NamedProfile, mart: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    schema = profile.settings.results_schema
    with connected(profile) as db:
        if mart not in db.tables(schema):
            raise BuildError(
                f"analysis mart {schema}.{mart} does not exist; run the dbt build first"
            )
        data = db.query_df(f"select * from {db.table_ref(schema, mart)} order by person_id")
        attrition = None
        if "cohort_attrition" in db.tables(schema):
            attrition = db.query_df(
                f"select cohort_definition_name, rule_number, rule_name, persons_remaining, "
                f"persons_removed from {db.table_ref(schema, 'cohort_attrition')} "
                "order by cohort_definition_name, rule_number"
            )
        vocab = None
        try:
            vocab = db.scalar(
                f"select vocabulary_version from "
                f"{db.table_ref(profile.settings.cdm_schema, 'vocabulary')} "
                "where vocabulary_id = 'None'"
            )
        except Exception:  # noqa: BLE001 - a CDM without the 'None' row is still usable
            vocab = None
    data.attrs["vocabulary_version"] = vocab
    return data, attrition


#: dbt mart of the control outcomes (first occurrence after the index date)
CONTROL_MART = "analysis_control_outcomes"


def add_control_outcomes(
    profile: NamedProfile, spec: StudySpec, data: pd.DataFrame
) -> pd.DataFrame:
    """Add one date column ``control__<name>`` per control outcome the spec's diagnostics
    list (NaT without an occurrence), read from the mart ``analysis_control_outcomes``."""
    if spec.diagnostics is None or not spec.diagnostics.control_names():
        return data
    names = spec.diagnostics.control_names()
    schema = profile.settings.results_schema
    with connected(profile) as db:
        if CONTROL_MART not in db.tables(schema):
            raise BuildError(
                f"control-outcome mart {schema}.{CONTROL_MART} does not exist; run the dbt "
                "build first"
            )
        marks = ", ".join([db.param] * len(names))
        rows = db.query_df(
            f"select concept_set_name, person_id, first_date from "
            f"{db.table_ref(schema, CONTROL_MART)} where mart = {db.param} "
            f"and concept_set_name in ({marks})",
            [spec.mart, *names],
        )
    out = data.copy()
    for name in names:
        col = control_column(name)
        if col in out.columns:
            raise InputDataError(f"mart {spec.mart}: column {col!r} clashes with a control outcome")
        part = rows[rows["concept_set_name"] == name]
        first = dict(zip(part["person_id"], pd.to_datetime(part["first_date"]), strict=True))
        out[col] = pd.to_datetime(pd.Series([first.get(p) for p in out["person_id"]],
                                            index=out.index, dtype="object"))  # fmt: skip
    out.attrs = dict(data.attrs)
    return out


def add_concept_set_columns(
    profile: NamedProfile, spec: StudySpec, data: pd.DataFrame, folder: Path | None = None
) -> tuple[pd.DataFrame, list[ConceptSetSource] | None]:
    """Add the spec's concept-set covariates and outcome dates to the mart's rows
    (:mod:`cohort_etl.engine.concept_set_columns`), and the registry rows of those sets."""
    from cohort_etl.concept_sets.registry import load_registry

    names = set_names(spec)
    if not names:
        return data, None
    folder = folder or project_root() / "concept_sets"
    entries = {e.name: e for e in load_registry(folder)}
    unknown = [n for n in names if n not in entries]
    if unknown:
        raise SpecError(
            f"study {spec.name!r}: concept set(s) {', '.join(unknown)} not in "
            f"{folder / 'registry.csv'}; a new ATLAS export dropped into {folder} is "
            "registered by `cohort-etl concept-sets validate` (or `concept-sets add FILE`)"
        )
    schema = profile.settings.results_schema
    with connected(profile) as db:
        tables = db.tables(schema)
        for needed in (EVENTS_MODEL, "concept_set_items"):
            if needed not in tables:
                raise BuildError(f"{schema}.{needed} does not exist; run the dbt build first")
        marks = ", ".join([db.param] * len(names))
        built = set(
            db.query_df(
                f"select distinct concept_set_name from "
                f"{db.table_ref(schema, 'concept_set_items')} where concept_set_name in ({marks})",
                names,
            )["concept_set_name"]
        )
        stale = [n for n in names if n not in built]
        if stale:
            raise BuildError(
                f"study {spec.name!r}: concept set(s) {', '.join(stale)} are registered but "
                "not in the last build; rebuild (cohort-etl run without --skip-build)"
            )
        records = db.query_df(
            events_sql(
                db.table_ref(schema, EVENTS_MODEL),
                db.table_ref(schema, str(spec.mart)),
                len(names),
                db.param,
            ),
            names,
        )
    sources = [
        ConceptSetSource(
            name=n,
            file=entries[n].file,
            status=entries[n].status,  # type: ignore[arg-type]
            domain=entries[n].domain,
            sha256=file_hash(folder / entries[n].file),
        )
        for n in names
    ]
    drafts = [s.name for s in sources if s.status == "draft"]
    if drafts:
        log.warning(
            "study %s uses draft (not reviewed) concept set(s): %s", spec.name, ", ".join(drafts)
        )
    return add_columns(spec, data, records), sources


def study_attrition(spec: StudySpec, attrition: pd.DataFrame | None) -> pd.DataFrame | None:
    """The attrition rows of the cohort the spec names (``cohort:``), looked up by name."""
    if attrition is None or spec.cohort is None:
        return None
    part = attrition[attrition["cohort_definition_name"] == spec.cohort]
    if part.empty:
        known = sorted(attrition["cohort_definition_name"].dropna().unique())
        raise SpecError(
            f"study {spec.name!r}: cohort {spec.cohort!r} has no attrition rows; "
            f"cohorts with attrition: {', '.join(map(str, known))}"
        )
    return part.rename(columns={"rule_name": "rule"})[
        ["rule_number", "rule", "persons_remaining", "persons_removed"]
    ].reset_index(drop=True)


def run_pipeline(
    profile: NamedProfile,
    *,
    studies: list[str] | None = None,
    out_root: Path | None = None,
    build: bool = True,
    allow_demo: bool = True,
    quiet: bool = False,
    studies_dir: Path | None = None,
    accept_incomplete_vocabulary: bool = False,
) -> RunSummary:
    studies_dir = studies_dir or project_root() / "studies"
    specs = select_specs(studies_dir, studies)
    out_root = out_root or project_root() / "output" / profile.name
    progress = Progress(total=2 + len(specs), quiet=quiet)
    summary = RunSummary()
    with progress.stage("cdm", f"profile {profile.name}"):
        cdm_info = ensure_cdm(profile, allow_demo)
    with progress.stage("dbt build"):
        if build:
            from cohort_etl.dbt_runner import build as dbt_build

            built = dbt_build(profile, accept_incomplete_vocabulary=accept_incomplete_vocabulary)
            summary.quality = built.quality
            summary.build_warnings = list(built.warnings)
        else:
            from cohort_etl.dbt_runner import check_cdm

            summary.quality = check_cdm(profile, accept_incomplete_vocabulary)
    failures: dict[str, CohortEtlError] = {}
    for path, spec in specs:
        manifest_base = {
            "package_version": __version__,
            "git_revision": git_revision(),
            "profile": profile.name,
            "dialect": profile.dialect,
            "study_spec": str(path),
            "study_spec_sha256": file_hash(path),
        }
        try:
            with progress.stage(f"study {spec.name}"):
                summary.outputs[spec.name], summary.results[spec.name] = _run_study(
                    profile,
                    path,
                    spec,
                    out_root,
                    cdm_info,
                    progress,
                    manifest_base,
                    summary.quality,
                )
        except (SpecError, InputDataError, BuildError) as exc:
            # one study's bad spec or data must not hide the others' results: its folder
            # gets a report saying why it is empty, and the run still fails at the end
            failures[spec.name] = exc
            final = out_root / spec.name
            with replaced_folder(final) as tmp:
                write_failure(spec, str(exc), tmp, manifest_base)
    summary.timings = dict(progress.timings)
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / "run_timings.json").write_text(json.dumps(summary.timings, indent=2) + "\n")
    if failures:
        first = next(iter(failures.values()))
        detail = "; ".join(f"{name}: {exc}" for name, exc in failures.items())
        error = type(first)(f"{len(failures)} of {len(specs)} studies failed: {detail}")
        raise error
    return summary


def _run_study(
    profile: NamedProfile,
    path: Path,
    spec: StudySpec,
    out_root: Path,
    cdm_info: dict[str, Any],
    progress: Progress,
    manifest_base: dict[str, Any],
    quality: QualityReport | None = None,
) -> tuple[dict[str, Path], StudyResults]:
    if spec.mart is None:
        raise SpecError(f"{path}: study {spec.name!r} names no mart (mart: ...) for cohort-etl run")
    data, attrition = read_mart(profile, spec.mart)
    data = add_control_outcomes(profile, spec, data)
    data, concept_sets = add_concept_set_columns(profile, spec, data)
    provenance = Provenance(
        door="run",
        source=f"mart {spec.mart}",
        data_quality=DataQuality.from_report(quality) if quality is not None else None,
        concept_sets=concept_sets,
    )
    result = Study(spec, source=f"mart {spec.mart}").run(
        data, study_attrition(spec, attrition), provenance
    )
    manifest = {
        "dbt_core_version": _version("dbt-core"),
        "dbt_adapter_version": _version(f"dbt-{profile.dialect}"),
        "duckdb_version": _version("duckdb"),
        **manifest_base,
        "concept_sets_sha256": concept_set_hashes(),
        "vocabulary_version": data.attrs.get("vocabulary_version"),
        "matching_seed": spec.matching.seed,
        "demo_cdm": cdm_info,
        "data_cutoff": spec.data_cutoff.isoformat() if spec.data_cutoff else None,
        "timings_seconds": dict(progress.timings),
    }
    # the study's folder is replaced as a whole: nothing of an earlier run survives, and a
    # run killed mid-write leaves the previous folder as it was
    truth = read_truth(profile) if spec.target_trial is not None else None
    final = out_root / spec.name
    with replaced_folder(final) as tmp:
        paths = write_outputs(spec, result, tmp, manifest, analysis_dataset=data, truth=truth)
    return moved(paths, tmp, final), result.results


def read_truth(profile: NamedProfile) -> dict[str, str] | None:
    """The synthetic generator's ``parameters`` table (name -> value), if the profile's
    truth schema has one (demo / synthetic CDMs only); else None."""
    schema = profile.settings.truth_schema
    with connected(profile) as db:
        if "parameters" not in db.tables(schema):
            return None
        frame = db.query_df(f"select name, value from {db.table_ref(schema, 'parameters')}")
    return dict(zip(frame["name"].astype(str), frame["value"].astype(str), strict=True))
