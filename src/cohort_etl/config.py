"""Connection settings: the one place that says where the CDM is and where results go.

Profiles live in ``profiles.yml`` at the project root (or the file named by
``COHORT_ETL_PROFILES``). A profile is either

    type: duckdb       path: data/omop.duckdb
    type: postgres     url: postgresql+psycopg://user@host:5432/db
    type: spark        method: session, warehouse: data/spark (a local Spark, Hive metastore)

plus ``cdm_schema`` (read-only source), ``results_schema`` (everything we write),
``truth_schema`` (synthetic ground truth, demo only). The profile is chosen by
``--profile``, else ``COHORT_ETL_PROFILE``, else the file's ``default``. Environment
variables in values (``${VAR}`` / ``${VAR:-default}``) are expanded.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cohort_etl.errors import ConfigError

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def project_root() -> Path:
    """Root of the checkout (where profiles.yml, dbt_project/ and data/ live)."""
    override = os.environ.get("COHORT_ETL_HOME")
    return Path(override).resolve() if override else PROJECT_ROOT


class _ProfileBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cdm_schema: str = "cdm"
    results_schema: str = "results"
    truth_schema: str = "synthetic_truth"
    # The OMOP tables in results_schema the build shares with other tools (a site's
    # CohortGenerator cohorts): it writes or replaces only its own rows. Its cohort ids are
    # cohort_id_offset + 1..N, its episode ids episode_id_offset + person_id * 1000 + line.
    cohort_table: str = "cohort"
    cohort_definition_table: str = "cohort_definition"
    cohort_id_offset: int = Field(default=0, ge=0)
    episode_id_offset: int = Field(default=0, ge=0)

    @field_validator("cdm_schema", "results_schema", "truth_schema")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENT.match(value):
            raise ValueError(f"schema name {value!r} must be a lower-case SQL identifier")
        return value

    @field_validator("cohort_table", "cohort_definition_table")
    @classmethod
    def _table_identifier(cls, value: str) -> str:
        if not _IDENT.match(value):
            raise ValueError(f"table name {value!r} must be a lower-case SQL identifier")
        return value


class DuckDBProfile(_ProfileBase):
    type: Literal["duckdb"]
    path: Path = Path("data/omop.duckdb")
    threads: int | None = None
    memory_limit: str | None = None

    def resolved_path(self) -> Path:
        return self.path if self.path.is_absolute() else project_root() / self.path


class PostgresProfile(_ProfileBase):
    type: Literal["postgres"]
    url: str

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("url must start with postgresql:// (SQLAlchemy URL)")
        return value


class SparkProfile(_ProfileBase):
    """Spark through dbt-spark's ``session`` method: a local Spark inside the process
    (pyspark, Java 17), its tables and Hive metastore (Derby) under ``warehouse``.

    The Derby metastore admits one process at a time: cohort-etl holds one Spark session
    per process and releases it while dbt runs (:func:`cohort_etl.spark.release_session`).
    Other dbt-spark methods (thrift, http / Databricks, Livy) are documented in
    docs/spark.md; cohort-etl's Python side connects in session mode only.
    """

    type: Literal["spark"]
    method: Literal["session"] = "session"
    #: folder of the managed tables (spark.sql.warehouse.dir) and of the metastore_db
    warehouse: Path = Path("data/spark")
    #: Spark master: local[N] / local[*] (session mode runs the driver in-process)
    master: str = "local[*]"
    driver_memory: str = "4g"
    #: spark.sql.shuffle.partitions; adaptive execution coalesces them further
    shuffle_partitions: int = Field(default=8, ge=1)
    threads: int | None = None
    #: further Spark settings (spark.* keys), given to Spark as they are
    conf: dict[str, str] = Field(default_factory=dict)

    def resolved_warehouse(self) -> Path:
        path = self.warehouse if self.warehouse.is_absolute() else project_root() / self.warehouse
        return path.resolve()

    @field_validator("conf")
    @classmethod
    def _spark_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key.startswith("spark."):
                raise ValueError(f"conf key {key!r} is not a Spark setting (spark.*)")
        return value


Profile = Annotated[DuckDBProfile | PostgresProfile | SparkProfile, Field(discriminator="type")]


class ProfilesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: str
    profiles: dict[str, Profile]


class NamedProfile(BaseModel):
    """A resolved profile with its name."""

    name: str
    settings: DuckDBProfile | PostgresProfile | SparkProfile

    @property
    def dialect(self) -> str:
        return self.settings.type


def _expand(value: object) -> object:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            var, default = match.group(1), match.group(2)
            got = os.environ.get(var)
            if got is None:
                if default is None:
                    raise ConfigError(f"profiles: environment variable {var} is not set")
                return default
            return got

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def profiles_path() -> Path:
    override = os.environ.get("COHORT_ETL_PROFILES")
    return Path(override) if override else project_root() / "profiles.yml"


def load_profiles(path: Path | None = None) -> ProfilesFile:
    path = path or profiles_path()
    if not path.exists():
        raise ConfigError(f"{path}: profiles file not found")
    from cohort_etl.specfile import describe, parse_yaml

    try:
        raw, root = parse_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML: {first_line}") from None
    try:
        parsed = ProfilesFile.model_validate(_expand(raw))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe(exc.errors()[0], root)}") from None
    if parsed.default not in parsed.profiles:
        raise ConfigError(f"{path}: default profile {parsed.default!r} is not defined")
    return parsed


def get_profile(name: str | None = None, path: Path | None = None) -> NamedProfile:
    """The profile called ``name`` (else $COHORT_ETL_PROFILE, else the file's default)."""
    profiles = load_profiles(path)
    chosen = name or os.environ.get("COHORT_ETL_PROFILE") or profiles.default
    if chosen not in profiles.profiles:
        known = ", ".join(sorted(profiles.profiles))
        raise ConfigError(f"unknown profile {chosen!r}; defined profiles: {known}")
    settings = profiles.profiles[chosen]
    chosen_by = (
        "--profile"
        if name
        else "$COHORT_ETL_PROFILE"
        if os.environ.get("COHORT_ETL_PROFILE")
        else "the file's default"
    )
    log.debug(
        "profile %s (%s, chosen by %s, %s): cdm_schema=%s results_schema=%s",
        chosen,
        settings.type,
        chosen_by,
        path or profiles_path(),
        settings.cdm_schema,
        settings.results_schema,
    )
    return NamedProfile(name=chosen, settings=settings)
