"""The data-quality stage: checks a CDM before any build (``cohort-etl check``, and the
first step of ``cohort-etl build`` / ``run``). Errors stop; warnings are reported."""

from cohort_etl.quality.checks import run_checks
from cohort_etl.quality.findings import CleaningCount, Finding, QualityReport

__all__ = ["CleaningCount", "Finding", "QualityReport", "run_checks"]
