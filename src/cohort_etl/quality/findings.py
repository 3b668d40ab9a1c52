"""What the data-quality stage reports: findings (one per check, table and column that
failed) and the rows the staging cleaning rules drop or repair, counted per rule."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cohort_etl.errors import InputDataError

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One failed check.

    ``error`` stops a build (the data cannot give a meaningful result); ``warning`` lets
    it continue and is listed in the report and results.json.
    """

    check: str
    severity: Severity
    table: str
    column: str | None
    count: int
    message: str
    example_ids: tuple[Any, ...] = ()

    def describe(self) -> str:
        """``table.column: check: message (e.g. ids)`` without the severity."""
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{where}: {self.check}: {self.message}{_examples(self.example_ids)}"

    def __str__(self) -> str:
        return f"{self.severity}: {self.describe()}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["example_ids"] = [_plain(i) for i in self.example_ids]
        return out


@dataclass(frozen=True)
class CleaningCount:
    """Rows of one CDM table that one staging cleaning rule drops (or repairs)."""

    rule: str
    table: str
    rows: int
    action: Literal["dropped", "repaired"] = "dropped"


@dataclass
class QualityReport:
    """Every finding of one run of the stage, and the cleaning counts."""

    schema: str
    findings: list[Finding] = field(default_factory=list)
    cleaning: list[CleaningCount] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    checks_run: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def raise_for_errors(self) -> None:
        """InputDataError naming the first error (and how many more) if there is any."""
        errors = self.errors
        if not errors:
            return
        first = errors[0]
        where = f"{self.schema}.{first.table}" + (f".{first.column}" if first.column else "")
        named = f"{self.schema}.{first.table}" in first.message
        message = first.message if named else f"{where}: {first.message}"
        more = (
            f"; and {len(errors) - 1} more data-quality error(s) (cohort-etl check lists them)"
            if len(errors) > 1
            else ""
        )
        raise InputDataError(f"{message}{_examples(first.example_ids)}{more}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to results.json (``data_quality``) and by ``check --json``."""
        return {
            "schema": self.schema,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "options": dict(self.options),
            "checks_run": list(self.checks_run),
            "findings": [f.to_dict() for f in self.findings],
            "cleaning_rules": [asdict(c) for c in self.cleaning],
        }


def _examples(ids: tuple[Any, ...]) -> str:
    return f" (e.g. {', '.join(str(i) for i in ids)})" if ids else ""


def _plain(value: Any) -> Any:
    """numpy / pandas scalars as plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
