"""Domain exceptions. Every error a user can cause is one of these, with a message that
names the file, table, column, concept or field at fault; the CLI prints it on one line
and exits with the class's exit code (never a traceback)."""

from __future__ import annotations


class CohortEtlError(Exception):
    """Base class: a user-facing error with a specific exit code."""

    exit_code = 2


class ConfigError(CohortEtlError):
    """Bad or unknown profile, settings file or option value."""

    exit_code = 2


class ConnectionFailed(CohortEtlError):
    """The configured database cannot be reached or opened."""

    exit_code = 3


class TargetNotEmpty(CohortEtlError):
    """A target schema already holds tables and ``--replace`` was not given."""

    exit_code = 4


class InputDataError(CohortEtlError):
    """Input data (CSV files, CDM tables, analysis datasets) are missing or malformed."""

    exit_code = 5


class SpecError(CohortEtlError):
    """A concept set, study spec or analysis spec is invalid."""

    exit_code = 6


class BuildError(CohortEtlError):
    """The dbt build or an analysis stage failed."""

    exit_code = 7


class NotEstimable(CohortEtlError):
    """A statistic cannot be computed on these data (the message says why)."""

    exit_code = 8
