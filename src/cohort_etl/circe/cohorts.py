"""The project's cohort list, read from the dbt macro that defines it.

``dbt_project/macros/cohort_definitions.sql`` holds the one list of cohorts (number, name,
description, rules in order, start column) that ``cohort_id()``, ``own_cohort``,
``cohort_attrition`` and ``own_cohort_definition`` read. Its ``cohort_list()`` macro is
plain Jinja (``do`` and dbt's ``return``), so it is rendered here with Jinja alone and the
exporter cannot drift from the build. Ids are ``cohort_id_offset`` + number, as in dbt.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2

from cohort_etl.config import project_root
from cohort_etl.errors import SpecError

COHORT_MACROS = ("dbt_project", "macros", "cohort_definitions.sql")


@dataclass(frozen=True)
class ProjectCohort:
    """One cohort of the build: ``rules`` are attrition rule names, in order."""

    number: int
    name: str
    description: str
    rules: tuple[str, ...]
    #: the int__ column the cohort starts at (cart_date, relapse_date, salvage_start_date)
    start: str

    def cohort_definition_id(self, offset: int = 0) -> int:
        return offset + self.number


class _Return(Exception):
    """dbt's ``return()``: ends the macro with a value."""

    def __init__(self, value: Any) -> None:
        super().__init__("return")
        self.value = value


def _dbt_return(value: Any) -> None:
    raise _Return(value)


@cache
def _cohort_list() -> tuple[ProjectCohort, ...]:
    path = project_root().joinpath(*COHORT_MACROS)
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, autoescape=False, extensions=["jinja2.ext.do"]
    )
    env.globals["return"] = _dbt_return
    module = env.from_string(path.read_text(encoding="utf-8")).module
    try:
        module.cohort_list()  # type: ignore[attr-defined]
    except _Return as returned:
        rows = returned.value
    else:  # pragma: no cover - the macro always returns
        raise SpecError(f"{path}: cohort_list() returned nothing")
    cohorts = []
    for row in rows:
        try:
            cohorts.append(
                ProjectCohort(
                    number=int(row["number"]),
                    name=str(row["name"]),
                    description=str(row["description"]),
                    rules=tuple(str(rule) for rule in row["rules"]),
                    start=str(row["start"]),
                )
            )
        except KeyError as exc:
            raise SpecError(f"{path}: a cohort of cohort_list() lacks {exc}") from None
    return tuple(cohorts)


def project_cohorts() -> list[ProjectCohort]:
    """The cohorts of ``cohort_list()``, in its order."""
    return list(_cohort_list())


def project_cohort(name: str) -> ProjectCohort:
    """The cohort called ``name``; a :class:`SpecError` naming the known ones otherwise."""
    for cohort in _cohort_list():
        if cohort.name == name:
            return cohort
    known = ", ".join(c.name for c in _cohort_list())
    raise SpecError(f"unknown cohort {name!r} (macros/cohort_definitions.sql defines: {known})")
