"""Circe cohort expressions (the JSON ATLAS exports and OHDSI Circe reads) of the project's
cohorts, rule by rule, with the difference from our dbt rule stated where Circe cannot say
the same thing.

A cohort of ``macros/cohort_definitions.sql`` is an ordered list of attrition rules. In the
Circe expression:

* ``all_diagnosis`` + ``cart_after_all_diagnosis`` are the entry event: every CD19 CAR-T
  drug exposure or CAR-T administration procedure (primary criteria, limit All), with an ALL
  diagnosis on or before it (additional criteria), the first such event per person
  (qualified limit First). This is the same rule as int__cart_course's index infusion;
* every later rule is an inclusion rule named as the rule (the cohort_attrition names);
* end strategy: the end of the observation period holding the entry event, censored at
  death (our cohort_end_date is the death date, else the end of the *last* observation
  period);
* every criterion matches a concept set on the standard column (``CodesetId``) and, as our
  pipeline matches non-standard concepts on ``*_source_concept_id``, also on the source
  column (``...SourceConcept``), OR-ed;
* criteria about the past or future of the index ignore the index's observation period
  (ours read every cleaned event, which lies in *some* observation period).

Lines of therapy (``relapsed_refractory_before_cart``: ">= rr_min_prior_lines prior lines")
and HSCT placement ("before any relapse") have no Circe equivalent; the nearest Circe rule
is exported and :attr:`CirceCohort.differences` (also the inclusion rule's description)
says what differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Circe occurrence types
EXACTLY, AT_MOST, AT_LEAST = 0, 1, 2

#: domain criterion -> its source-concept field
SOURCE_FIELD = {
    "ConditionOccurrence": "ConditionSourceConcept",
    "DrugExposure": "DrugSourceConcept",
    "ProcedureOccurrence": "ProcedureSourceConcept",
}

#: the concept sets an antineoplastic exposure (a line of therapy's agent) comes from,
#: as int__antineoplastic_exposures
ANTINEOPLASTIC_SETS = ("blinatumomab", "inotuzumab", "tki", "conventional_chemotherapy")

#: dbt vars (dbt_project.yml) the rules read, with their defaults
DEFAULT_PARAMETERS: dict[str, int] = {
    "regimen_window_days": 28,
    "line_gap_days": 120,
    "cart_collapse_days": 3,
    "lymphodepletion_days": 14,
    "conditioning_days": 14,
    "hsct_exposure_window_days": 180,
    "rr_min_prior_lines": 2,
}

Items = list[dict[str, Any]]


@dataclass
class CirceCohort:
    """One exported cohort: the Circe expression and what differs from our rules."""

    name: str
    description: str
    expression: dict[str, Any]
    #: rule name -> how the Circe rule differs from ours (empty: the same rule)
    differences: dict[str, str] = field(default_factory=dict)


def window(start: int | None, end: int | None, *, use_event_end: bool = False) -> dict[str, Any]:
    """A Circe window from ``start`` to ``end`` days relative to the index start (negative
    = before, None = all days: before for ``start``, after for ``end``)."""

    def bound(days: int | None, unbounded_coeff: int) -> dict[str, Any]:
        if days is None:
            return {"Coeff": unbounded_coeff}
        return {"Days": abs(days), "Coeff": -1 if days < 0 else 1}

    return {
        "Start": bound(start, -1),
        "End": bound(end, 1),
        "UseIndexEnd": False,
        "UseEventEnd": use_event_end,
    }


def group(kind: str, criteria: Sequence[dict] = (), groups: Sequence[dict] = ()) -> dict:
    """A Circe criteria group (``ALL`` / ``ANY``)."""
    return {
        "Type": kind,
        "CriteriaList": list(criteria),
        "DemographicCriteriaList": [],
        "Groups": list(groups),
    }


def correlated(
    criteria: dict,
    start_window: dict,
    occurrence: int,
    count: int,
    *,
    end_window: dict | None = None,
) -> dict:
    """A correlated criterion: ``count`` occurrences (``occurrence`` type) of ``criteria``
    starting in ``start_window`` (and ending in ``end_window``) of the index, in or out of
    its observation period."""
    out: dict[str, Any] = {
        "Criteria": criteria,
        "StartWindow": start_window,
        "RestrictVisit": False,
        "IgnoreObservationPeriod": True,
        "Occurrence": {"Type": occurrence, "Count": count, "IsDistinct": False},
    }
    if end_window is not None:
        out["EndWindow"] = end_window
    return out


class Builder:
    """Builds the Circe expressions of the project's cohorts from resolved concept set
    items (``items[name]``: ATLAS items, code items already resolved to concept ids)."""

    def __init__(
        self,
        items: Mapping[str, Items],
        parameters: Mapping[str, int] | None = None,
        *,
        source_codes: bool = True,
        procedures: bool = True,
    ) -> None:
        self.items = items
        self.p = {**DEFAULT_PARAMETERS, **(parameters or {})}
        self.source_codes = source_codes
        self.procedures = procedures
        self.concept_sets: list[dict[str, Any]] = []
        self._ids: dict[str, int] = {}

    # -- concept sets -------------------------------------------------------------------
    def codeset(self, name: str, label: str | None = None, items: Items | None = None) -> int:
        """The id of concept set ``name`` in this expression (added on first use)."""
        if name not in self._ids:
            if items is None:
                if name not in self.items:
                    raise KeyError(f"concept set {name!r} has no items to export")
                items = self.items[name]
            self._ids[name] = len(self.concept_sets)
            self.concept_sets.append(
                {"id": self._ids[name], "name": label or name, "expression": {"items": items}}
            )
        return self._ids[name]

    def _agent_items(self) -> dict[int, dict[str, Any]]:
        """Antineoplastic agent items (included ones) by concept id, first occurrence."""
        agents: dict[int, dict[str, Any]] = {}
        for name in ANTINEOPLASTIC_SETS:
            for item in self.items[name]:
                if not item.get("isExcluded", False):
                    agents.setdefault(int(item["concept"]["CONCEPT_ID"]), item)
        return agents

    def _absorbing(self, name: str) -> set[int]:
        return {
            int(i["concept"]["CONCEPT_ID"])
            for i in self.items[name]
            if not i.get("isExcluded", False)
        }

    # -- events -------------------------------------------------------------------------
    def events(
        self,
        domain: str,
        codeset: int,
        nested: dict | None = None,
        *,
        source: bool = True,
        first: bool = False,
    ) -> list[dict]:
        """The domain criteria matching ``codeset``: standard column, and (``source``) the
        source column; ``first``: only the person's first such record."""
        extra: dict[str, Any] = {"First": True} if first else {}
        if nested is not None:
            extra["CorrelatedCriteria"] = nested
        out = [{domain: {"CodesetId": codeset, **extra}}]
        if self.source_codes and source:
            out.append({domain: {SOURCE_FIELD[domain]: codeset, **extra}})
        return out

    def cart_events(self) -> list[dict]:
        """A CAR-T infusion record: CD19 CAR-T drug exposure or administration procedure."""
        out = self.events("DrugExposure", self.codeset("cart_cd19_products"))
        if self.procedures:
            out += self.events("ProcedureOccurrence", self.codeset("cart_administration"))
        return out

    def hsct_events(self, types: Sequence[str] = ("allogeneic", "autologous")) -> list[dict]:
        out: list[dict] = []
        for kind in types:
            out += self.events("ProcedureOccurrence", self.codeset(f"hsct_{kind}"))
        return out

    def any_of(self, events: Sequence[dict], start: dict, end: dict | None = None) -> dict:
        """Group: at least one of ``events`` in the window."""
        return group("ANY", [correlated(e, start, AT_LEAST, 1, end_window=end) for e in events])

    def none_of(self, events: Sequence[dict], start: dict, end: dict | None = None) -> dict:
        """Group: none of ``events`` in the window."""
        return group("ALL", [correlated(e, start, EXACTLY, 0, end_window=end) for e in events])

    def _absorption(self, concept_id: int) -> tuple[bool, bool]:
        """(absorbed before a CAR-T infusion, absorbed before an HSCT) for an agent."""
        return (
            concept_id in self._absorbing("lymphodepletion_agents"),
            concept_id in self._absorbing("hsct_conditioning_agents"),
        )

    def exposure(
        self,
        codeset: int,
        absorption: tuple[bool, bool],
        conditions: Sequence[dict] = (),
        *,
        source: bool = True,
        first: bool = False,
    ) -> list[dict]:
        """Drug exposures of ``codeset`` not absorbed into a CAR-T infusion or an HSCT (as
        int__antineoplastic_exposures: a lymphodepletion agent counts only when no CAR-T
        record starts 0..lymphodepletion_days after it, a conditioning agent only when no
        HSCT starts 0..conditioning_days after it), with further ``conditions``."""
        before_cart, before_hsct = absorption
        nested: list[dict] = []
        if before_cart:
            nested.append(
                self.none_of(self.cart_events(), window(0, self.p["lymphodepletion_days"]))
            )
        if before_hsct:
            nested.append(self.none_of(self.hsct_events(), window(0, self.p["conditioning_days"])))
        nested += conditions
        return self.events(
            "DrugExposure",
            codeset,
            group("ALL", groups=nested) if nested else None,
            source=source,
            first=first,
        )

    def antineoplastic(self) -> int:
        """Codeset: every antineoplastic agent (absorbed or not)."""
        return self.codeset(
            "antineoplastic", "Antineoplastic agents", list(self._agent_items().values())
        )

    def treatment_events(
        self, conditions: Sequence[dict] = (), *, source: bool = True
    ) -> list[dict]:
        """Antineoplastic exposures not absorbed into a CAR-T infusion or an HSCT: one
        codeset per absorption class (never; before CAR-T; before HSCT; before either),
        with further ``conditions``."""
        classes: dict[tuple[bool, bool], list[dict]] = {}
        for cid, item in self._agent_items().items():
            classes.setdefault(self._absorption(cid), []).append(item)
        tags = {
            (False, False): "never absorbed",
            (True, False): "absorbed before a CAR-T infusion",
            (False, True): "absorbed before an HSCT",
            (True, True): "absorbed before a CAR-T infusion or an HSCT",
        }
        out: list[dict] = []
        for absorption in sorted(classes):
            codeset = self.codeset(
                f"antineoplastic:{absorption}",
                f"Antineoplastic agents, {tags[absorption]}",
                classes[absorption],
            )
            out += self.exposure(codeset, absorption, conditions, source=source)
        return out

    # -- the rules ------------------------------------------------------------------------
    def entry(self) -> dict[str, Any]:
        """Primary + additional criteria and limits: the first CAR-T record on or after an
        ALL diagnosis (rules all_diagnosis, cart_after_all_diagnosis)."""
        diagnosis = self.events("ConditionOccurrence", self.codeset("all_leukemia"))
        additional = group("ANY", [correlated(d, window(None, 0), AT_LEAST, 1) for d in diagnosis])
        return {
            "PrimaryCriteria": {
                "CriteriaList": self.cart_events(),
                "ObservationWindow": {"PriorDays": 0, "PostDays": 0},
                "PrimaryCriteriaLimit": {"Type": "All"},
            },
            "AdditionalCriteria": additional,
            "QualifiedLimit": {"Type": "First"},
        }

    def not_t_all(self) -> tuple[dict, str]:
        t_all = self.events("ConditionOccurrence", self.codeset("t_all"))
        return self.none_of(t_all, window(None, None)), ""

    def prior_lines_group(self) -> tuple[dict, str]:
        """Nearest Circe rule for ">= rr_min_prior_lines lines of therapy before the index"
        (int__lines_of_therapy; DESIGN.md: agents started within regimen_window_days of a
        line's first agent form its regimen, a new agent after that or a gap of more than
        line_gap_days starts a new line)."""
        regimen, gap = self.p["regimen_window_days"], self.p["line_gap_days"]
        wanted = self.p["rr_min_prior_lines"]
        before = window(None, -1)
        if wanted <= 1:
            return self.any_of(self.treatment_events(), before), (
                "one prior line = any antineoplastic exposure before the index"
            )
        # a restart: an antineoplastic exposure that no antineoplastic exposure started
        # within regimen_window_days before, with an earlier one; started before the
        # index's lymphodepletion window. Standard drug codes only (drug records carry a
        # standard concept in practice); nested source variants and absorption checks
        # would multiply Circe's SQL.
        any_agent = self.events("DrugExposure", self.antineoplastic(), source=False)
        earlier = self.any_of(any_agent, window(None, -(regimen + 1)))
        no_recent_start = self.none_of(any_agent, window(-regimen, -1))
        restarts = self.events(
            "DrugExposure",
            self.antineoplastic(),
            group("ALL", groups=[earlier, no_recent_start]),
            source=False,
        )
        lymphodepletion = self.p["lymphodepletion_days"]
        lines = group(
            "ANY",
            [correlated(e, window(None, -(lymphodepletion + 1)), AT_LEAST, 1) for e in restarts],
        )
        note = (
            f">= {wanted} prior lines of therapy cannot be counted in Circe (a line is a "
            "derived regimen, not a record). Ours: agents started within "
            f"{regimen} days of a line's first agent form its regimen; a new agent after "
            f"that, or a gap of more than {gap} days after every earlier exposure ended, "
            "starts a new line. Nearest Circe rule: before the index, an antineoplastic "
            f"exposure with no antineoplastic exposure started in the {regimen} days before "
            "it and one started earlier (a restart after a pause, which every gap and most "
            "new regimens are). It differs when a new agent is added without a pause (a "
            f"new line for us, not for Circe) or a cycle of the same regimen is delayed by "
            f"more than {regimen} days (a new line for Circe, not for us). A restart must "
            f"start more than {self.p['lymphodepletion_days']} days before the index (the "
            "index's lymphodepletion, which ours absorbs into the infusion, is no line); "
            "conditioning before an earlier HSCT, which ours also absorbs, can be a restart "
            "in Circe; drug records are matched on standard codes only in this rule."
        )
        if wanted > 2:
            note += f" The rule asks for {wanted} lines; the export checks for 2."
        return lines, note

    def relapsed_refractory_before_cart(self) -> tuple[dict, str]:
        codes: list[dict] = []
        for name in ("all_in_relapse", "all_refractory"):
            codes += self.events("ConditionOccurrence", self.codeset(name))
        lines, note = self.prior_lines_group()
        return (
            group("ANY", [correlated(c, window(None, -1), AT_LEAST, 1) for c in codes], [lines]),
            "Relapse or refractory code before the index: the same rule. Prior lines: " + note,
        )

    def _consolidation(self) -> dict:
        days = self.p["hsct_exposure_window_days"]
        return self.any_of(self.hsct_events(("allogeneic",)), window(1, days))

    def allo_hsct_consolidation(self) -> tuple[dict, str]:
        return self._consolidation(), (
            "HSCT placement: ours counts an allogeneic HSCT 1.."
            f"{self.p['hsct_exposure_window_days']} days after the index only when it "
            "precedes any relapse (relapse code or new line after the index); Circe cannot "
            "compare two events after the index with each other, so the export keeps any "
            "allogeneic HSCT in the window (persons transplanted after a relapse in the "
            "window are in Circe's hsct_plus, in our hsct_minus)."
        )

    def no_allo_hsct_consolidation(self) -> tuple[dict, str]:
        days = self.p["hsct_exposure_window_days"]
        return self.none_of(self.hsct_events(("allogeneic",)), window(1, days)), (
            f"HSCT placement: ours is 'no allogeneic HSCT 1..{days} days after the index "
            "before any relapse'; the export is 'no allogeneic HSCT 1.."
            f"{days} days after the index' (persons transplanted in the window after a "
            "relapse are in our hsct_minus, not in Circe's)."
        )

    def _after_index_treatment(self) -> list[dict]:
        reinfusion_gap = self.p["cart_collapse_days"] + 1
        return [correlated(e, window(1, None), AT_LEAST, 1) for e in self.treatment_events()] + [
            correlated(e, window(reinfusion_gap, None), AT_LEAST, 1) for e in self.cart_events()
        ]

    def relapse_after_cart(self) -> tuple[dict, str]:
        codes: list[dict] = []
        for name in ("all_in_relapse", "all_refractory"):
            codes += self.events("ConditionOccurrence", self.codeset(name))
        evidence = [correlated(c, window(1, None), AT_LEAST, 1) for c in codes]
        return group("ANY", evidence + self._after_index_treatment()), (
            "Relapse after the index: a relapse or refractory code, or a new line (any "
            "antineoplastic exposure not absorbed by a CAR-T infusion or an HSCT, or a CAR-T "
            f"re-infusion more than {self.p['cart_collapse_days']} days later) after it. "
            "Circe's cohort starts at its entry event, so this cohort starts at the CAR-T "
            "infusion; ours starts at the relapse date."
        )

    def salvage_after_relapse(self) -> tuple[dict, str]:
        return group("ANY", self._after_index_treatment()), (
            "Salvage: a line of therapy started on or after the relapse; after the index "
            "infusion every non-absorbed antineoplastic exposure or CAR-T re-infusion starts "
            "a new line, so the export asks for one. A line started on the relapse day "
            "before it is a relapse of its own is counted by both. Circe's cohort starts "
            "at the CAR-T infusion; ours at the salvage line's start."
        )

    RULES = (
        "not_t_all",
        "relapsed_refractory_before_cart",
        "allo_hsct_consolidation",
        "no_allo_hsct_consolidation",
        "relapse_after_cart",
        "salvage_after_relapse",
    )
    ENTRY_RULES = ("all_diagnosis", "cart_after_all_diagnosis")

    def cohort(self, name: str, description: str, rules: Sequence[str]) -> CirceCohort:
        """The Circe expression of a cohort with these attrition rules (in order)."""
        if tuple(rules[:2]) != self.ENTRY_RULES:
            raise ValueError(
                f"cohort {name}: the Circe export knows cohorts that start with rules "
                f"{', '.join(self.ENTRY_RULES)}, not {', '.join(rules[:2])}"
            )
        unknown = [r for r in rules[2:] if r not in self.RULES]
        if unknown:
            raise ValueError(f"cohort {name}: no Circe export of rule(s) {', '.join(unknown)}")
        self.concept_sets, self._ids = [], {}
        entry = self.entry()
        inclusion = []
        differences: dict[str, str] = {}
        for rule in rules[2:]:
            expression, note = getattr(self, rule)()
            described = f"attrition rule {rule}" + (f". Differs from ours: {note}" if note else "")
            if note:
                differences[rule] = note
            inclusion.append({"name": rule, "description": described, "expression": expression})
        end_note = (
            "Cohort end: Circe ends at the end of the observation period holding the entry "
            "event, censored at death; ours at death, else the end of the person's last "
            "observation period."
        )
        differences["end_strategy"] = end_note
        expression = {
            "Title": name,
            "ConceptSets": self.concept_sets,
            **entry,
            "ExpressionLimit": {"Type": "First"},
            "InclusionRules": inclusion,
            "CensoringCriteria": [{"Death": {}}],
            "CollapseSettings": {"CollapseType": "ERA", "EraPad": 0},
            "CensorWindow": {},
            "cdmVersionRange": ">=5.0.0",
        }
        return CirceCohort(name, description, expression, differences)
