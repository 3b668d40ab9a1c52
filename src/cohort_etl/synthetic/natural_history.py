"""The enriched ALL / CAR-T subset: one simulated history per patient, recorded the way
an EHR records it, plus one ground-truth row per patient.

Patients are simulated one by one (the subset is small and independent of ``persons``)
from the stream ``default_rng([seed, 2])``. Time-to-event draws come from explicit
piecewise-constant hazard models whose effects are parameters (see :class:`SynthParams`),
implemented once in :mod:`cohort_etl.synthetic.hazards` (shared with the counterfactual
truth of :mod:`cohort_etl.synthetic.truth_hsct`):

* relapse after CAR-T (responders): ``relapse_rate`` per year, times ``hsct_hr_relapse``
  from the allogeneic HSCT date on, times 0.3 after two years;
* death before relapse: ``death_rate`` per year times ``exp(age and burden terms)``, times
  ``hsct_hr_os`` from the HSCT date on (so "ever transplanted" analyses carry
  immortal-time bias); non-responders use ``nr_death_rate``;
* death after relapse: ``post_relapse_death_rate`` times ``chemo_alone_hr_os`` (chemotherapy
  alone), ``salvage_cr_hr_os`` (complete remission after salvage), 1.5 (no salvage).

Every recorded event is dated inside the patient's observation period, which runs from
shortly before the first recorded event to the end of follow-up (death, loss to
follow-up or the data cut-off); events after it are not recorded and the truth row only
describes what was observable. Deliberate errors are added afterwards and counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa

from cohort_etl.cdm.ddl import arrow_type
from cohort_etl.cdm.spec import TABLES
from cohort_etl.synthetic import hazards as hz
from cohort_etl.synthetic import vocabulary as v
from cohort_etl.synthetic.arrowutil import dates
from cohort_etl.synthetic.params import SynthParams, day
from cohort_etl.synthetic.truth_hsct import HsctTruth, covariates_of, hsct_truth

_CODES = {c.concept_id: c.concept_code for c in v.concepts()}
_NAME = {c.concept_id: c.concept_name for c in v.concepts()}
_code = _CODES.__getitem__
ICD10_TRANSITION = day(__import__("datetime").date(2015, 10, 1))
PCS_FY2021 = day(__import__("datetime").date(2020, 10, 1))
PCS_FY2022 = day(__import__("datetime").date(2021, 10, 1))
TECARTUS_APPROVAL = day(__import__("datetime").date(2021, 10, 1))
AUCATZYL_APPROVAL = day(__import__("datetime").date(2024, 11, 8))
BREYANZI_CLL_APPROVAL = day(__import__("datetime").date(2024, 3, 14))
INF = 10**9
#: relapse site class (truth) of an isolated relapse at each simulated site
SITE_CLASS = {
    "marrow": "isolated_marrow",
    "cns": "isolated_cns",
    "emd": "isolated_non_cns_emd",
    "unknown": "unknown",
}

CATEGORIES = (
    "core",
    "auto_hsct",
    "t_all",
    "aml",
    "cll",
    "dlbcl",
    "burkitt",
    "no_rr",
    "all_no_cart",
)


@dataclass
class Truth:
    """Ground truth of one generated ALL / CAR-T subset patient (one truth-table row)."""

    person_id: int
    category: str
    sex: str
    year_of_birth: int
    has_all: bool
    has_bcell_all: bool
    lineage: str
    bcr_abl1: str | None
    diagnosis_date: int | None
    rr_before_cart: bool
    rr_evidence: str | None
    n_lines_before_cart: int
    car_t_date: int | None = None
    car_t_product: str | None = None
    age_at_car_t: float | None = None
    disease_burden: int | None = None
    car_t_response: str | None = None
    mrd_negative_after_cart: bool | None = None
    hsct_date: int | None = None
    hsct_type: str | None = None
    hsct_within_window: bool | None = None
    relapse_after_cart_date: int | None = None
    relapse_coded: bool | None = None
    #: site and CD19 evidence of the relapse is in the CDM (coded, or after a CR)
    relapse_workup_recorded: bool | None = None
    relapse_site: str | None = None
    relapse_site_class: str | None = None
    cd19_status: str | None = None
    salvage_start_date: int | None = None
    salvage_modality: str | None = None
    salvage_targeted: bool | None = None
    cr_after_salvage: bool | None = None
    salvage_response_date: int | None = None
    second_line_start_date: int | None = None
    second_line_modality: str | None = None
    cr_after_second_line: bool | None = None
    second_relapse_date: int | None = None
    post_salvage_hsct_date: int | None = None
    death_date: int | None = None
    end_of_followup: int = 0
    observation_start: int = 0
    dx_source_only: bool = False
    record_before_op: bool = False
    record_after_death: bool = False
    duplicate_cart_row: bool = False
    expected_in_cohort_a: bool = False
    expected_arm_a: str | None = None
    expected_in_cohort_b: bool = False


_DATE_FIELDS = {
    "diagnosis_date",
    "car_t_date",
    "hsct_date",
    "relapse_after_cart_date",
    "salvage_start_date",
    "salvage_response_date",
    "second_line_start_date",
    "second_relapse_date",
    "post_salvage_hsct_date",
    "death_date",
    "end_of_followup",
    "observation_start",
}


def truth_schema() -> pa.Schema:
    """Arrow schema of the truth table (column order = :class:`Truth` field order)."""
    out = []
    for name, typ in Truth.__annotations__.items():
        t = str(typ)
        if name in _DATE_FIELDS:
            out.append(pa.field(name, pa.date32()))
        elif t.startswith("bool"):
            out.append(pa.field(name, pa.bool_()))
        elif t.startswith("int"):
            out.append(pa.field(name, pa.int64()))
        elif t.startswith("float"):
            out.append(pa.field(name, pa.float64()))
        else:
            out.append(pa.field(name, pa.string()))
    return pa.schema(out)


# ------------------------------------------------------------------------------------
# Recorder: collects CDM rows for the subset, inside each patient's window
# ------------------------------------------------------------------------------------
_EVENT_TABLES = (
    "visit_occurrence",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
)
_PK = {
    "visit_occurrence": "visit_occurrence_id",
    "condition_occurrence": "condition_occurrence_id",
    "drug_exposure": "drug_exposure_id",
    "procedure_occurrence": "procedure_occurrence_id",
    "measurement": "measurement_id",
    "observation": "observation_id",
    "observation_period": "observation_period_id",
}
_DATE_COL = {
    "visit_occurrence": "visit_start_date",
    "condition_occurrence": "condition_start_date",
    "drug_exposure": "drug_exposure_start_date",
    "procedure_occurrence": "procedure_date",
    "measurement": "measurement_date",
    "observation": "observation_date",
}


class Recorder:
    """Collects rows per table; events outside ``[lo, hi]`` are silently not recorded."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {t: [] for t in _EVENT_TABLES}
        self.rows.update(person=[], observation_period=[], death=[])
        self.next_id = dict.fromkeys(_PK, 1)
        self.lo = 0
        self.hi = INF
        self.person = 0

    def start(self, person: int, lo: int, hi: int) -> None:
        self.person, self.lo, self.hi = person, lo, hi

    def _add(self, table: str, row: dict[str, Any], force: bool = False) -> int | None:
        when = row[_DATE_COL[table]]
        if not force and not (self.lo <= when <= self.hi):
            return None
        rid = self.next_id[table]
        self.next_id[table] += 1
        row[_PK[table]] = rid
        row["person_id"] = self.person
        self.rows[table].append(row)
        return rid

    def visit(self, concept: int, start: int, end: int | None = None) -> int | None:
        end = start if end is None else end
        end = min(end, self.hi)
        code = {v.INPATIENT_VISIT: "IP", v.OUTPATIENT_VISIT: "OP", v.ER_VISIT: "ER"}[concept]
        return self._add(
            "visit_occurrence",
            {
                "visit_concept_id": concept,
                "visit_start_date": start,
                "visit_end_date": max(end, start),
                "visit_type_concept_id": v.EHR,
                "visit_source_value": code,
            },
        )

    def condition(
        self,
        std: int,
        src: int,
        date: int,
        visit: int | None = None,
        source_only: bool = False,
        force: bool = False,
        source_value: str | None = None,
    ) -> int | None:
        return self._add(
            "condition_occurrence",
            {
                "condition_concept_id": 0 if source_only else std,
                "condition_start_date": date,
                "condition_type_concept_id": v.EHR_ENCOUNTER_DIAGNOSIS,
                "visit_occurrence_id": visit,
                "condition_source_value": source_value or (_code(src) if src else None),
                "condition_source_concept_id": src,
            },
            force,
        )

    def drug(
        self,
        concept: int,
        start: int,
        end: int | None = None,
        src: int | None = None,
        visit: int | None = None,
        days_supply: int | None = None,
        type_concept: int = v.EHR_ADMINISTRATION,
    ) -> int | None:
        src = concept if src is None else src
        end = start if end is None else end
        return self._add(
            "drug_exposure",
            {
                "drug_concept_id": concept,
                "drug_exposure_start_date": start,
                "drug_exposure_end_date": max(start, min(end, self.hi)),
                "drug_type_concept_id": type_concept,
                "days_supply": days_supply,
                "quantity": float(days_supply) if days_supply else 1.0,
                "visit_occurrence_id": visit,
                "drug_source_value": _code(src),
                "drug_source_concept_id": src,
            },
        )

    def procedure(
        self, concept: int, date: int, src: int | None = None, visit: int | None = None
    ) -> int | None:
        src = concept if src is None else src
        return self._add(
            "procedure_occurrence",
            {
                "procedure_concept_id": concept,
                "procedure_date": date,
                "procedure_type_concept_id": v.EHR,
                "visit_occurrence_id": visit,
                "procedure_source_value": _code(src),
                "procedure_source_concept_id": src,
            },
        )

    def measurement(
        self,
        concept: int,
        date: int,
        number: float | None = None,
        value_concept: int | None = None,
        unit: int | None = None,
        visit: int | None = None,
        force: bool = False,
    ) -> int | None:
        return self._add(
            "measurement",
            {
                "measurement_concept_id": concept,
                "measurement_date": date,
                "measurement_type_concept_id": v.EHR,
                "value_as_number": number,
                "value_as_concept_id": value_concept,
                "unit_concept_id": unit,
                "visit_occurrence_id": visit,
                "measurement_source_value": _code(concept),
                "measurement_source_concept_id": concept,
                "value_source_value": _NAME[value_concept] if value_concept else None,
            },
            force,
        )

    def observation(self, concept: int, date: int, src: int | None = None) -> int | None:
        src = concept if src is None else src
        return self._add(
            "observation",
            {
                "observation_concept_id": concept,
                "observation_date": date,
                "observation_type_concept_id": v.EHR,
                "observation_source_value": _code(src),
                "observation_source_concept_id": src,
            },
        )

    def to_arrow(self) -> dict[str, pa.Table]:
        """Arrow tables typed per the CDM spec (only the populated columns)."""
        out = {}
        for table, rows in self.rows.items():
            keys = set(rows[0]) if rows else set()
            names = [f.name for f in TABLES[table] if f.name in keys or (not rows and f.required)]
            fields = {f.name: f for f in TABLES[table]}
            cols = {}
            for name in names:
                values = list(map(itemgetter(name), rows))
                typ = arrow_type(fields[name])
                if typ in (pa.int64(), pa.int32(), pa.date32()) and None not in values:
                    arr = np.array(values, dtype=np.int64)
                    cols[name] = (
                        dates(arr)
                        if typ == pa.date32()
                        else pa.array(arr.astype(typ.to_pandas_dtype()))
                    )
                else:
                    cols[name] = pa.array(values, typ)
            out[table] = pa.table(cols)
        return out


# ------------------------------------------------------------------------------------
# Hazard draws
# ------------------------------------------------------------------------------------
def draw_time(target: float, segments: list[tuple[float, float]]) -> float:
    """First time the cumulative hazard of a piecewise-constant rate reaches ``target``.

    With ``target`` an Exp(1) draw this samples the event time of that hazard (inverse
    transform). ``segments`` is a list of ``(start_time, rate_per_day)``; each rate holds
    until the next start. Returns ``math.inf`` if the hazard never reaches the target.
    """
    segs = sorted(segments)
    cum = 0.0
    for i, (s, r) in enumerate(segs):
        end = segs[i + 1][0] if i + 1 < len(segs) else math.inf
        if r <= 0:
            continue
        span = end - s
        if cum + r * span >= target:
            return s + (target - cum) / r
        cum += r * span
    return math.inf


def _one(x: np.ndarray[Any, Any]) -> float:
    """The single value of a length-one array as a Python float."""
    return float(x.reshape(-1)[0])


# ------------------------------------------------------------------------------------
# Regimens
# ------------------------------------------------------------------------------------
FRONTLINE_PEDIATRIC = (
    v.VINCRISTINE,
    v.DEXAMETHASONE,
    v.PEGASPARGASE,
    v.DAUNORUBICIN,
    v.METHOTREXATE,
    v.MERCAPTOPURINE,
)
FRONTLINE_ADULT = (
    v.CYCLOPHOSPHAMIDE,
    v.VINCRISTINE,
    v.DOXORUBICIN,
    v.DEXAMETHASONE,
    v.METHOTREXATE,
    v.CYTARABINE,
)
SALVAGE_PRE_CART = {
    "blinatumomab": (v.BLINATUMOMAB,),
    "inotuzumab": (v.INOTUZUMAB,),
    "flag_ida": (v.FLUDARABINE, v.CYTARABINE, v.IDARUBICIN),
    "clofarabine": (v.CLOFARABINE, v.CYTARABINE, v.ETOPOSIDE),
}
CONDITIONING = (
    (v.BUSULFAN, v.FLUDARABINE),
    (v.CYCLOPHOSPHAMIDE, v.ETOPOSIDE),
    (v.FLUDARABINE, v.MELPHALAN),
    (v.THIOTEPA, v.BUSULFAN, v.FLUDARABINE),
)
CHEMO_SALVAGE = (
    (v.FLUDARABINE, v.CYTARABINE, v.IDARUBICIN),
    (v.CLOFARABINE, v.CYTARABINE),
    (v.MITOXANTRONE, v.PEGASPARGASE, v.VINCRISTINE, v.DEXAMETHASONE),
)
CHEMO_TKI = (v.CYCLOPHOSPHAMIDE, v.VINCRISTINE, v.DOXORUBICIN, v.DEXAMETHASONE)
ORAL = {
    v.IMATINIB,
    v.DASATINIB,
    v.NILOTINIB,
    v.PONATINIB,
    v.BOSUTINIB,
    v.MERCAPTOPURINE,
    v.VENETOCLAX,
    v.PREDNISONE,
}


class Simulator:
    """Simulates and records the ALL / CAR-T subset."""

    def __init__(self, params: SynthParams, first_person_id: int) -> None:
        self.p = params
        self.rng = np.random.default_rng([params.seed, 2])
        self.rec = Recorder()
        self.truths: list[Truth] = []
        self.first_person_id = first_person_id
        self.start = day(params.start_date)
        self.cutoff = day(params.cutoff_date)
        self.first_cart = day(params.first_cart_date)
        self.errors = {"before_op": 0, "after_death": 0, "duplicates": 0}
        #: (age, burden, Ph+) of every core CAR-T patient, for the counterfactual truth
        self.core_covariates: list[tuple[float, int, bool]] = []
        self._buf: list[float] = []
        self._pos = 0
        #: the side stream (rng, buffer, position): draws added after the main stream was
        #: fixed (combined relapse sites, second salvage lines) come from here, so they do
        #: not shift any draw of the main stream (the study A cohort stays the same)
        self._side_state: tuple[np.random.Generator, list[float], int] = (
            np.random.default_rng([params.seed, 2, 1]),
            [],
            0,
        )

    @contextmanager
    def side_stream(self) -> Iterator[None]:
        """Every draw inside this block comes from the side stream."""
        main = (self.rng, self._buf, self._pos)
        self.rng, self._buf, self._pos = self._side_state
        try:
            yield
        finally:
            self._side_state = (self.rng, self._buf, self._pos)
            self.rng, self._buf, self._pos = main

    # --- small helpers --------------------------------------------------------------------
    # Scalar draws come from a buffered uniform stream (numpy scalar calls cost ~1 us
    # each); the buffer is refilled from the same generator, so runs stay deterministic.
    def _next(self) -> float:
        if self._pos >= len(self._buf):
            self._buf = self.rng.random(65_536).tolist()
            self._pos = 0
        x = self._buf[self._pos]
        self._pos += 1
        return float(x)

    def expo(self) -> float:
        """An Exp(1) draw."""
        return -math.log(1.0 - self._next())

    def u(self, a: float, b: float) -> float:
        return a + (b - a) * self._next()

    def ui(self, a: int, b: int) -> int:
        """Uniform integer in [a, b]."""
        return a + min(int(self._next() * (b - a + 1)), b - a)

    def bern(self, p: float) -> bool:
        return self._next() < p

    def pick(self, seq: Any, p: list[float] | None = None) -> Any:
        x = self._next()
        if p is None:
            return seq[min(int(x * len(seq)), len(seq) - 1)]
        total = sum(p)
        acc = 0.0
        for item, w in zip(seq, p, strict=True):
            acc += w / total
            if x < acc:
                return item
        return seq[-1]

    # --- code helpers ---------------------------------------------------------------------------
    def disease_code(self, status: str, date: int, visit: int | None, t: Truth) -> None:
        """Record the disease diagnosis with its status ('active', 'remission', 'relapse')."""
        if t.lineage in ("B", "T"):
            self.all_code(status, date, visit, t)
        elif t.lineage == "burkitt":
            # legacy record: deprecated concept, ICD-10-CM code absent from the vocabulary
            self.rec.condition(v.BURKITT_LEUKEMIA_DEPRECATED, 0, date, visit, source_value="C91.A0")
        elif t.lineage == "AML":
            self.rec.condition(v.AML, v.ICD10CM_C92_00, date, visit)
        elif t.lineage == "CLL":
            self.rec.condition(v.CLL, v.ICD10CM_C91_10, date, visit)
        elif t.lineage == "DLBCL":
            self.rec.condition(v.DLBCL, v.ICD10CM_C83_30, date, visit)

    def all_code(self, status: str, date: int, visit: int | None, t: Truth) -> None:
        """Record an ALL status diagnosis ('active', 'remission', 'relapse')."""
        icd9 = date < ICD10_TRANSITION
        src = {
            ("active", False): (v.ICD10CM_C91_00, v.ALL),
            ("remission", False): (v.ICD10CM_C91_01, v.ALL_REMISSION),
            ("relapse", False): (v.ICD10CM_C91_02, v.ALL_RELAPSE),
            ("active", True): (v.ICD9CM_204_00, v.ALL),
            ("remission", True): (v.ICD9CM_204_01, v.ALL_REMISSION),
            ("relapse", True): (v.ICD9CM_204_02, v.ALL_RELAPSE),
        }[(status, icd9)]
        self.rec.condition(src[1], src[0], date, visit, source_only=t.dx_source_only)

    def snomed(self, concept: int, date: int, visit: int | None) -> None:
        self.rec.condition(concept, concept, date, visit)

    def regimen(
        self, agents: tuple[int, ...], start: int, cycles: int, every: int, visit_kind: int
    ) -> None:
        """Record a regimen: each agent given on days 0-4 of each cycle."""
        for c in range(cycles):
            d0 = start + c * every
            vis = self.rec.visit(visit_kind, d0, d0 + (4 if visit_kind == v.INPATIENT_VISIT else 0))
            self.rec.procedure(v.CPT_96413_CHEMO_INFUSION, d0, visit=vis)
            for k, agent in enumerate(agents):
                concept = v.CLINICAL_DRUG[agent] if self.bern(0.85) else agent
                if agent in ORAL:
                    self.rec.drug(
                        concept,
                        d0 + k % 3,
                        d0 + k % 3 + 29,
                        visit=vis,
                        days_supply=30,
                        type_concept=v.EHR,
                    )
                else:
                    self.rec.drug(concept, d0 + k % 3, d0 + k % 3, visit=vis)
            self.labs(d0, vis)

    def labs(self, date: int, visit: int | None, cytopenic: bool = False) -> None:
        hb = self.u(7.5, 10.5) if cytopenic else self.u(10.5, 14.5)
        self.rec.measurement(v.HEMOGLOBIN, date, round(hb, 1), None, v.UNIT_G_DL, visit)
        wbc = self.u(0.2, 2.5) if cytopenic else self.u(3.0, 9.0)
        self.rec.measurement(v.LEUKOCYTES, date, round(wbc, 1), None, v.UNIT_THOUSAND_PER_UL, visit)
        plt = self.u(8, 60) if cytopenic else self.u(120, 320)
        self.rec.measurement(v.PLATELETS, date, round(plt, 0), None, v.UNIT_THOUSAND_PER_UL, visit)

    def cart_infusion(self, date: int, product: str, apheresis: bool = True) -> None:
        """Lymphodepletion, infusion recorded as drug and/or procedure a few days apart."""
        p = self.p
        if apheresis:
            when = date - self.ui(25, 40)
            self.rec.procedure(
                v.CPT_0537T_CART_HARVEST, when, visit=self.rec.visit(v.OUTPATIENT_VISIT, when)
            )
        vis = self.rec.visit(v.INPATIENT_VISIT, date - 6, date + self.ui(8, 16))
        for d in range(3):
            self.rec.drug(v.CLINICAL_DRUG[v.FLUDARABINE], date - 5 + d, visit=vis)
        for d in range(2):
            self.rec.drug(v.CLINICAL_DRUG[v.CYCLOPHOSPHAMIDE], date - 5 + d, visit=vis)
        ingredient, products, hcpcs, pcs = {
            "tisagenlecleucel": (
                v.TISAGENLECLEUCEL,
                (v.KYMRIAH_600M, v.KYMRIAH_250M),
                v.HCPCS_Q2040
                if date < day(__import__("datetime").date(2019, 1, 1))
                else v.HCPCS_Q2042,
                v.PCS_XW033J7,
            ),
            "brexucabtagene": (v.BREXUCABTAGENE, (v.TECARTUS,), v.HCPCS_Q2053, v.PCS_XW033M7),
            "obecabtagene": (v.OBECABTAGENE, (v.AUCATZYL,), v.HCPCS_Q2058, v.PCS_XW033C7),
            "axicabtagene": (v.AXICABTAGENE, (v.YESCARTA,), v.HCPCS_Q2041, v.PCS_XW033H7),
            "lisocabtagene": (v.LISOCABTAGENE, (v.BREYANZI,), v.HCPCS_Q2054, v.PCS_XW033N7),
            "investigational": (0, (), 0, v.PCS_XW033C7),
        }[product]
        r = self._next()
        drug_only = r < p.p_cart_drug_only
        proc_only = (
            not drug_only and r < p.p_cart_drug_only + p.p_cart_procedure_only
        ) or ingredient == 0
        if not proc_only:
            concept = self.pick(products) if self.bern(0.7) else ingredient
            src = hcpcs if self.bern(0.8) else concept
            self.rec.drug(concept, date, date, src=src, visit=vis)
        if not drug_only:
            pdate = date + (self.ui(0, 3) if not proc_only else 0)
            if pdate < PCS_FY2021:
                pcs = v.PCS_XW033C3 if self.bern(0.6) else v.PCS_XW043C3
            elif pdate < PCS_FY2022 and pcs != v.PCS_XW033C7:
                pcs = v.PCS_XW033C7
            code = v.CPT_0540T_CART_ADMINISTRATION if self.bern(0.4) else pcs
            self.rec.procedure(code, pdate, visit=vis)
        if self.bern(0.45):
            crs = date + self.ui(1, 6)
            self.rec.condition(v.CYTOKINE_RELEASE_SYNDROME, v.ICD10CM_D89_832, crs, vis)
            if self.bern(0.4):
                self.rec.drug(v.CLINICAL_DRUG[v.TOCILIZUMAB], crs, visit=vis)
        self.labs(date, vis, cytopenic=True)

    def hsct(self, t: Truth, date: int, kind: str) -> None:
        vis = self.rec.visit(v.INPATIENT_VISIT, date - 8, date + self.ui(18, 35))
        regimen = self.pick(CONDITIONING)
        for agent in regimen:
            for d in range(2):
                self.rec.drug(
                    v.CLINICAL_DRUG[agent], date - 7 + d + 2 * regimen.index(agent), visit=vis
                )
        if kind == "allogeneic":
            if self.bern(0.6):
                self.rec.procedure(v.CPT_38240_ALLO, date, visit=vis)
            if self.bern(0.7):
                if date >= PCS_FY2022:
                    code = self.pick(
                        (
                            v.PCS_30233Y3_ALLO,
                            v.PCS_30243Y3_ALLO,
                            v.PCS_30233Y2_ALLO,
                            v.PCS_30233X3_ALLO_CORD,
                        )
                    )
                    self.rec.procedure(code, date, visit=vis)
                else:
                    src = self.pick((v.PCS_30233Y1_ALLO_DEPRECATED, v.PCS_30243Y1_ALLO_DEPRECATED))
                    self.rec.procedure(v.ALLO_PBSCT, date, src=src, visit=vis)
            else:
                self.rec.procedure(
                    self.pick((v.ALLO_PBSCT, v.CORD_BLOOD_ALLOGRAFT, v.ALLO_BMT_UNRELATED)),
                    date,
                    visit=vis,
                )
            if self.bern(0.4):
                g = date + self.ui(20, 60)
                self.rec.condition(v.ACUTE_GVHD, v.ICD10CM_D89_810, g)
                self.rec.drug(v.CLINICAL_DRUG[v.METHYLPREDNISOLONE], g)
        else:
            self.rec.procedure(v.CPT_38241_AUTO, date, visit=vis)
            self.rec.procedure(
                self.pick((v.PCS_30233Y0_AUTO, v.AUTO_HSCT, v.AUTO_PBSCT)), date, visit=vis
            )
        self.labs(date + 14, vis, cytopenic=True)

    # --- per-category histories -----------------------------------------------------------------
    def simulate(self, on_progress: Callable[[int], None] | None = None) -> None:
        """Simulate every patient; ``on_progress(n)`` after each 100 patients (and the rest)."""
        p = self.p
        cats: list[str] = []
        for cat in CATEGORIES:
            cats += [cat] * int(getattr(p, f"n_{cat}"))
        order = self.rng.permutation(len(cats))
        for i, idx in enumerate(order):
            self.patient(self.first_person_id + i, cats[idx])
            if on_progress is not None and (i + 1) % 100 == 0:
                on_progress(100)
        if on_progress is not None and len(order) % 100:
            on_progress(len(order) % 100)
        self.deliberate_errors()

    def patient(self, pid: int, cat: str) -> None:
        p = self.p
        cart = cat not in ("all_no_cart",)
        lineage = {
            "t_all": "T",
            "aml": "AML",
            "cll": "CLL",
            "dlbcl": "DLBCL",
            "burkitt": "burkitt",
        }.get(cat, "B")
        if cat == "all_no_cart" and self.bern(0.15):
            lineage = "T"
        if lineage == "B" or lineage == "T":
            age = self.u(2, 25) if self.bern(0.5) else self.u(26, 76)
        elif lineage in ("CLL", "DLBCL"):
            age = self.u(45, 82)
        else:
            age = self.u(20, 75)
        male = self.bern(0.55)
        ph = lineage == "B" and self.bern(p.p_ph_positive * (0.45 if age < 18 else 1.25))
        # --- timeline (days since epoch) ---
        lo_date = self.first_cart
        if cat == "cll":
            lo_date = BREYANZI_CLL_APPROVAL
        if cart:
            span = self.cutoff - 45 - lo_date
            T = lo_date + int(span * math.sqrt(self._next()))
        else:
            T = self.start + int((self.cutoff - 200 - self.start) * self._next())  # reference date
        if cat == "no_rr" or cat == "all_no_cart":
            rr_type, n_lines = "none", 1
        elif lineage in ("AML", "CLL", "DLBCL", "burkitt"):
            rr_type, n_lines = "lines", 2
        else:
            rr_type = self.pick(("relapse_code", "refractory_code", "lines"), [0.65, 0.15, 0.20])
            n_lines = 2 if rr_type == "refractory_code" else self.pick((2, 3), [0.75, 0.25])
        # line starts before CAR-T
        line_starts: list[int] = []
        relapse_dates: list[int] = []
        if cart:
            cursor = T - self.ui(50, 120)  # last line start
            line_starts.append(cursor)
            for _ in range(n_lines - 1):
                gap = self.ui(120, 300) if rr_type != "refractory_code" else self.ui(38, 50)
                cursor -= gap
                line_starts.append(cursor)
            line_starts.reverse()
            if cat == "no_rr":
                line_starts = [T - self.ui(150, 400)]
            dx = line_starts[0] - self.ui(2, 6)
        else:
            dx = T
            line_starts = [dx + self.ui(2, 6)]
        sex = "M" if male else "F"
        birth = (T if cart else dx) - int(age * 365.25)
        yob = int(np.datetime64(birth, "D").astype("datetime64[Y]").astype(int)) + 1970
        t = Truth(
            person_id=pid,
            category=cat,
            sex=sex,
            year_of_birth=yob,
            has_all=lineage in ("B", "T"),
            has_bcell_all=lineage == "B",
            lineage=lineage,
            bcr_abl1=("positive" if ph else "negative") if lineage == "B" else None,
            diagnosis_date=dx,
            rr_before_cart=cart and rr_type != "none",
            rr_evidence=rr_type if cart else None,
            n_lines_before_cart=n_lines if cart else 0,
        )
        t.dx_source_only = cat == "core" and self.bern(p.p_source_only_all_dx)
        # --- outcome model after CAR-T (or after frontline for no-CAR-T patients) ---
        eofu = self.cutoff
        ltfu = -math.log(1.0 - self._next()) * 365.25 / p.loss_to_followup_rate
        if cart:
            eofu = int(min(self.cutoff, T + 30 + ltfu))
        else:
            eofu = int(min(self.cutoff, dx + 60 + ltfu))
        nocart: tuple[float, float] = (math.inf, math.inf)
        if not cart:
            nocart = self.no_cart_outcome(line_starts[0])
            eofu = int(min(eofu, nocart[1]))
        lo = max(self.start, dx - self.ui(0, 60))
        t.observation_start = lo
        self.rec.start(pid, lo, eofu)
        self.rec.rows["person"].append(
            {
                "person_id": pid,
                "gender_concept_id": v.MALE if male else v.FEMALE,
                "year_of_birth": yob,
                "race_concept_id": self.pick(
                    (v.WHITE, v.BLACK, v.ASIAN, 0), [0.68, 0.12, 0.08, 0.12]
                ),
                "ethnicity_concept_id": v.HISPANIC if self.bern(0.2) else v.NOT_HISPANIC,
                "gender_source_value": sex,
            }
        )
        # --- diagnosis and first line ---
        self.diagnosis(t, dx, ph)
        frontline: tuple[int, ...] = FRONTLINE_PEDIATRIC if age < 40 else FRONTLINE_ADULT
        if lineage == "DLBCL":
            frontline = (
                v.RITUXIMAB,
                v.CYCLOPHOSPHAMIDE,
                v.DOXORUBICIN,
                v.VINCRISTINE,
                v.PREDNISONE,
            )
        elif lineage == "CLL":
            frontline = (v.RITUXIMAB, v.VENETOCLAX)
        elif lineage == "AML":
            frontline = (v.CYTARABINE, v.DAUNORUBICIN)
        if ph:
            frontline = frontline + (self.pick((v.IMATINIB, v.DASATINIB)),)
        first_end = line_starts[1] - 60 if len(line_starts) > 1 else line_starts[0] + 200
        cycles = max(1, min(8, (first_end - line_starts[0]) // 28))
        # No frontline cycle is recorded within 60 days of the CAR-T infusion (it would be
        # a new line after it). Cycles are still drawn, so the random stream is unchanged.
        keep_hi = self.rec.hi
        if cart:
            self.rec.hi = min(keep_hi, T - 60)
        self.regimen(frontline, line_starts[0], int(cycles), 28, v.INPATIENT_VISIT)
        self.rec.hi = keep_hi
        if rr_type == "refractory_code":
            rdate = line_starts[0] + self.ui(30, 36)
            self.snomed(v.ALL_REFRACTORY, rdate, self.rec.visit(v.OUTPATIENT_VISIT, rdate))
        else:
            rem = line_starts[0] + self.ui(30, 40)
            self.status_visit(t, rem, "remission")
        for k in range(1, len(line_starts)):
            rel = line_starts[k] - self.ui(3, 14)
            relapse_dates.append(rel)
            if rr_type == "relapse_code" or lineage in ("T",):
                self.status_visit(t, rel, "relapse")
            elif lineage == "B" and rr_type != "refractory_code":
                self.rec.measurement(
                    v.MRD_B_ALL_FLOW, rel, round(self.u(1, 40), 1), v.DETECTED, v.UNIT_PERCENT
                )
            agents = self.pick(list(SALVAGE_PRE_CART.values()))
            if lineage in ("AML",):
                agents = (v.FLUDARABINE, v.CYTARABINE, v.IDARUBICIN)
            elif lineage in ("CLL", "DLBCL", "burkitt"):
                agents = (v.RITUXIMAB, v.IFOSFAMIDE, v.ETOPOSIDE)
            if ph:
                agents = agents + (v.PONATINIB,)
            self.regimen(agents, line_starts[k], 2, 28, v.INPATIENT_VISIT)
        if not cart:
            self.no_cart_course(t, line_starts[0], eofu, *nocart)
            self.finish(t, t.end_of_followup)
            return
        # --- CAR-T ---
        t.car_t_date = T
        t.age_at_car_t = round(age, 1)
        burden = n_lines - 1 + int(self.bern(0.4))
        t.disease_burden = burden
        if lineage in ("B", "T", "burkitt"):
            if age <= 25 or T < TECARTUS_APPROVAL:
                product = "tisagenlecleucel"
            elif T >= AUCATZYL_APPROVAL and self.bern(0.4):
                product = "obecabtagene"
            else:
                product = "brexucabtagene"
        elif lineage == "DLBCL":
            product = self.pick(
                ("axicabtagene", "lisocabtagene", "tisagenlecleucel"), [0.5, 0.25, 0.25]
            )
        elif lineage == "CLL":
            product = "lisocabtagene"
        else:
            product = "investigational"
        t.car_t_product = product
        self.after_cart(t, T, age, burden, ph, eofu)
        self.finish(t, t.end_of_followup)

    def diagnosis(self, t: Truth, dx: int, ph: bool) -> None:
        vis = self.rec.visit(v.INPATIENT_VISIT, dx, dx + self.ui(3, 10))
        self.rec.procedure(v.CPT_38221_BONE_MARROW_BIOPSY, dx, visit=vis)
        self.labs(dx, vis, cytopenic=True)
        if t.lineage in ("B", "T", "burkitt"):
            self.disease_code("active", dx, vis, t)
        if t.lineage == "B":
            if self.bern(0.6) and not t.dx_source_only:
                sub = (
                    v.PH_POS_B_ALL
                    if ph
                    else self.pick((v.B_ALL, v.B_CELL_ALL, v.COMMON_ALL, v.B_ALL_ETV6_RUNX1))
                )
                self.snomed(sub, dx, vis)
            if self.bern(0.85):
                self.rec.measurement(
                    v.BCR_ABL1_PRESENCE, dx + 2, None, v.POSITIVE if ph else v.NEGATIVE, None, vis
                )
            self.rec.measurement(
                v.CD19_CELLS_PER_100_BLOOD,
                dx + 1,
                round(self.u(40, 95), 1),
                None,
                v.UNIT_PERCENT,
                vis,
            )
        elif t.lineage == "T":
            self.snomed(v.T_ALL, dx, vis)
            self.rec.measurement(
                v.MRD_T_ALL_FLOW, dx + 2, round(self.u(20, 90), 1), v.DETECTED, v.UNIT_PERCENT, vis
            )
        elif t.lineage == "AML":
            self.rec.condition(v.ACUTE_LEUKEMIA, v.ICD10CM_C95_00, dx, vis)
            self.disease_code("active", dx + 5, vis, t)
        else:
            self.disease_code("active", dx, vis, t)

    def status_visit(self, t: Truth, date: int, status: str) -> None:
        vis = self.rec.visit(v.OUTPATIENT_VISIT, date)
        self.disease_code(status, date, vis, t)
        if status == "remission" and t.lineage == "B" and self.bern(0.3) and not t.dx_source_only:
            self.snomed(v.B_ALL_REMISSION, date, vis)
        self.labs(date, vis, cytopenic=status == "relapse")

    def mrd(self, t: Truth, date: int, negative: bool) -> None:
        concept = v.MRD_T_ALL_FLOW if t.lineage == "T" else v.MRD_B_ALL_FLOW
        if t.lineage not in ("B", "T"):
            return
        self.rec.measurement(
            concept,
            date,
            0.0 if negative else round(self.u(0.01, 5.0), 2),
            v.NOT_DETECTED if negative else v.DETECTED,
            v.UNIT_PERCENT,
        )

    def after_cart(
        self, t: Truth, T: int, age: float, burden: int, ph: bool, eofu_max: int
    ) -> None:
        """Response, HSCT decision, relapse, salvage and death after the CAR-T infusion."""
        p = self.p
        if t.category == "core":
            self.core_covariates.append((age, burden, ph))
        cr = self.bern(p.p_cr_after_cart)
        mrd_neg = cr and self.bern(p.p_mrd_negative_given_cr)
        t.car_t_response = "CR" if cr else "NR"
        t.mrd_negative_after_cart = mrd_neg
        # HSCT decision (allogeneic; autologous for the auto_hsct group)
        H = math.inf
        hsct_kind = "autologous" if t.category == "auto_hsct" else "allogeneic"
        if cr and t.category in ("core", "auto_hsct", "t_all", "no_rr"):
            logit = (
                p.hsct_intercept
                + p.hsct_coef_age10 * (age - 30) / 10
                + p.hsct_coef_burden * (burden - 1)
                + p.hsct_coef_mrd_negative * mrd_neg
                + p.hsct_coef_ph * ph
            )
            if t.category == "auto_hsct":
                logit = 5.0
            if self.bern(1 / (1 + math.exp(-logit))):
                if self.bern(0.05):
                    H = float(self.ui(p.hsct_window_days + 10, p.hsct_window_days + 150))
                else:
                    H = float(
                        np.clip(
                            self.rng.lognormal(math.log(p.hsct_median_days), 0.35),
                            40,
                            p.hsct_window_days - 5,
                        )
                    )
        allo_effect = hsct_kind == "allogeneic"
        # relapse, then death before relapse (shared hazard model: hazards.py)
        if cr:
            R = _one(
                hz.relapse_time_responder(
                    p, [self.expo()], burden, H, p.hsct_hr_relapse if allo_effect else 1.0
                )
            )
        else:
            R = float(self.ui(*hz.NR_RELAPSE_DAYS))
        D_pre = _one(
            hz.death_time_before_relapse(
                p, [self.expo()], age, burden, cr, H, p.hsct_hr_os if allo_effect else 1.0
            )
        )
        if min(R, D_pre) < H:
            H = math.inf
        salvage_modality = None
        S = math.inf
        cr_s = None
        R2 = math.inf
        if D_pre > R:
            # salvage after relapse / progression
            site = self.pick(hz.RELAPSE_SITES, hz.RELAPSE_SITE_PROBS)
            cd19 = self.pick(hz.CD19_STATUSES, hz.CD19_STATUS_PROBS)
            if t.lineage != "B":
                cd19 = "unknown"
            if t.lineage not in ("B", "T"):
                site = "unknown"  # site codes below are ALL-specific
            t.relapse_site, t.cd19_status = site, cd19
            with self.side_stream():
                combined = site in ("cns", "emd") and self.bern(p.salvage.p_combined_given_emd)
            t.relapse_site_class = "combined" if combined else SITE_CLASS[site]
            gets = self.bern(p.salvage.p_salvage)
            mod_i = 0
            if gets:
                S = R + self.ui(5, 25)
                probs = hz.salvage_probabilities(p, cd19 == "negative", ph, t.lineage == "B")
                salvage_modality = self.pick(hz.SALVAGE_MODALITIES, probs[0].tolist())
                mod_i = hz.SALVAGE_MODALITIES.index(salvage_modality)
                pcr = hz.salvage_cr_probability(p, mod_i, hz.RELAPSE_SITES.index(site))
                cr_s = self.bern(float(pcr))
            hr_post = hz.post_relapse_hr(p, gets, mod_i, bool(cr_s))
            D = R + _one(hz.death_time_after_relapse(p, [self.expo()], hr_post))
            if S >= D:
                S, salvage_modality, cr_s = math.inf, None, None
            if cr_s:
                R2 = S + 35 + draw_time(self.expo(), [(0.0, p.second_relapse_rate / 365.25)])
        else:
            D = D_pre
        death = T + int(D) if math.isfinite(D) else INF
        eofu = int(min(eofu_max, death))
        t.end_of_followup = eofu
        self.rec.hi = eofu
        assert t.car_t_product is not None
        self.cart_infusion(T, t.car_t_product)

        def seen(x: float) -> int | None:
            d = T + x
            return int(d) if d <= eofu else None

        # --- record response and follow-up ---
        resp = T + self.ui(26, 32)
        vis = self.rec.visit(v.OUTPATIENT_VISIT, resp)
        self.rec.procedure(v.CPT_38221_BONE_MARROW_BIOPSY, resp, visit=vis)
        self.mrd(t, resp, mrd_neg)
        if cr:
            self.status_visit(t, resp + 1, "remission")
        elif t.lineage in ("B", "T"):
            self.snomed(v.ALL_REFRACTORY, resp + 1, vis)
        else:
            self.disease_code("active", resp + 1, vis, t)
        follow_end = min(R, D, (eofu - T))
        d = 60
        while d < follow_end:
            fdate = T + d
            self.status_visit(t, fdate, "remission" if cr else "relapse")
            if t.lineage == "B" and self.bern(0.3):
                self.rec.measurement(v.CD19_CELLS_BLOOD, fdate, round(self.u(0, 5), 1), None, None)
            d += 30 if d < 180 else 90
        # HSCT
        if math.isfinite(H) and seen(H) is not None:
            hdate = int(T + H)
            t.hsct_date, t.hsct_type = hdate, hsct_kind
            t.hsct_within_window = p.hsct_window_days >= H
            self.hsct(t, hdate, hsct_kind)
        # relapse and salvage
        rdate = seen(R)
        if rdate is not None:
            t.relapse_after_cart_date = rdate
            coded = self.bern(0.9)
            t.relapse_coded = coded
            # an uncoded relapse leaves its work-up only after a documented CAR-T remission
            # (the response visit, day resp + 1): before it nothing marks a relapse
            uncoded_workup = not coded and cr and rdate > resp + 1
            t.relapse_workup_recorded = coded or uncoded_workup
            if coded:
                vis = self.rec.visit(v.OUTPATIENT_VISIT, rdate)
                if cr or t.lineage not in ("B", "T"):
                    self.disease_code("relapse", rdate, vis, t)
                else:
                    self.snomed(v.ALL_REFRACTORY, rdate, vis)
                self.relapse_workup(t, rdate, vis, coded=True)
            elif uncoded_workup:
                # uncoded relapse after a CR: the work-up is recorded, the relapse code is
                # not (side stream: the main stream stays as it was without this record)
                with self.side_stream():
                    vis = self.rec.visit(v.OUTPATIENT_VISIT, rdate)
                    self.relapse_workup(t, rdate, vis, coded=False)
            sdate = seen(S) if math.isfinite(S) else None
            if sdate is not None and salvage_modality is not None:
                t.salvage_start_date = sdate
                t.salvage_modality = salvage_modality
                t.salvage_targeted = salvage_modality != "chemo"
                t.cr_after_salvage = cr_s
                self.salvage(t, sdate, salvage_modality, ph)
                resp_s = sdate + self.ui(30, 45)
                if resp_s <= eofu:
                    t.salvage_response_date = resp_s
                    self.mrd(t, resp_s, bool(cr_s))
                    if cr_s:
                        self.status_visit(t, resp_s, "remission")
                    else:
                        self.status_visit(t, resp_s, "relapse")
                        self.second_line(t, resp_s, eofu, ph)
                else:
                    t.cr_after_salvage = None
                r2 = seen(R2) if math.isfinite(R2) else None
                if r2 is not None:
                    t.second_relapse_date = r2
                    self.status_visit(t, r2, "relapse")
                if cr_s and self.bern(0.12):
                    ps = seen(S + self.ui(60, 100))
                    if ps is not None and (
                        t.second_relapse_date is None or ps < t.second_relapse_date
                    ):
                        t.post_salvage_hsct_date = ps
                        self.hsct(t, ps, "allogeneic")
        if death <= eofu:
            t.death_date = int(death)
            self.rec.rows["death"].append(
                {"person_id": t.person_id, "death_date": int(death), "death_type_concept_id": v.EHR}
            )

    def relapse_workup(self, t: Truth, rdate: int, vis: int | None, coded: bool) -> None:
        """Site and CD19 evidence of the relapse after CAR-T, recorded on its day.

        CNS: lumbar puncture and CNS involvement codes; non-CNS extramedullary: C79.89;
        marrow involvement (isolated or combined): a bone marrow biopsy, plus a detected
        MRD when the relapse itself is not coded (positive evidence without a code).
        """
        if t.relapse_site == "cns":
            self.rec.procedure(v.CPT_62270_LUMBAR_PUNCTURE, rdate, visit=vis)
            self.rec.condition(v.MENINGEAL_LEUKEMIA, v.MENINGEAL_LEUKEMIA, rdate, vis)
            self.rec.condition(v.CNS_DISORDER_DUE_TO_ALL, v.ICD10CM_C79_49, rdate, vis)
        elif t.relapse_site == "emd":
            self.rec.condition(v.EXTRAMEDULLARY_ALL, v.ICD10CM_C79_89, rdate, vis)
        if t.relapse_site_class in ("isolated_marrow", "combined"):
            self.rec.procedure(v.CPT_38221_BONE_MARROW_BIOPSY, rdate, visit=vis)
            if not coded:
                self.mrd(t, rdate, negative=False)
        if t.cd19_status in ("positive", "negative"):
            pos = t.cd19_status == "positive"
            self.rec.measurement(
                v.CD19_CELLS_SPECIMEN,
                rdate,
                round(self.u(30, 90) if pos else self.u(0, 3), 1),
                v.POSITIVE if pos else v.NEGATIVE,
                v.UNIT_PERCENT,
                vis,
            )

    def second_line(self, t: Truth, failed: int, eofu: int, ph: bool) -> None:
        """A second salvage line after a failed first one (side stream only).

        Its remission is dated 67-111 days after the first salvage start, inside the CR
        window of the first line: only a rule that stops the first line's CR at the next
        line's start keeps it off the first line. The death time drawn before is kept.
        """
        p = self.p
        with self.side_stream():
            if not self.bern(p.salvage.p_second_line_given_no_cr):
                return
            start = failed + self.ui(*p.salvage.second_line_gap_days)
            probs = hz.salvage_probabilities(p, t.cd19_status == "negative", ph, t.lineage == "B")
            modality = self.pick(hz.SALVAGE_MODALITIES, probs[0].tolist())
            site = hz.RELAPSE_SITES.index(t.relapse_site or "unknown")
            pcr = hz.salvage_cr_probability(p, hz.SALVAGE_MODALITIES.index(modality), site)
            cr2 = self.bern(float(pcr))
            response = start + self.ui(30, 45)
            if start > eofu:
                return
            t.second_line_start_date, t.second_line_modality = start, modality
            self.salvage(t, start, modality, ph)
            if response <= eofu:
                t.cr_after_second_line = cr2
                self.mrd(t, response, cr2)
                self.status_visit(t, response, "remission" if cr2 else "relapse")

    def salvage(self, t: Truth, date: int, modality: str, ph: bool) -> None:
        if modality == "reinfusion":
            product = t.car_t_product or "tisagenlecleucel"
            self.cart_infusion(date, product, apheresis=False)
        elif modality == "mab":
            if t.cd19_status != "negative" and self.bern(0.6):
                for c in range(2):
                    d0 = date + 42 * c
                    vis = self.rec.visit(v.INPATIENT_VISIT, d0, d0 + 9)
                    src = (
                        v.HCPCS_J9039_BLINATUMOMAB
                        if self.bern(0.5)
                        else v.CLINICAL_DRUG[v.BLINATUMOMAB]
                    )
                    self.rec.drug(
                        v.CLINICAL_DRUG[v.BLINATUMOMAB],
                        d0,
                        d0 + 27,
                        src=src,
                        visit=vis,
                        days_supply=28,
                    )
            else:
                for c in range(2):
                    for k in (0, 7, 14):
                        d0 = date + 28 * c + k
                        vis = self.rec.visit(v.OUTPATIENT_VISIT, d0)
                        src = (
                            v.HCPCS_J9229_INOTUZUMAB
                            if self.bern(0.5)
                            else v.CLINICAL_DRUG[v.INOTUZUMAB]
                        )
                        self.rec.drug(v.CLINICAL_DRUG[v.INOTUZUMAB], d0, src=src, visit=vis)
        elif modality == "chemo_tki":
            self.regimen(CHEMO_TKI, date, 2, 21, v.INPATIENT_VISIT)
            tki = self.pick((v.DASATINIB, v.PONATINIB))
            for m in range(3):
                self.rec.drug(
                    v.CLINICAL_DRUG[tki],
                    date + 30 * m,
                    date + 30 * m + 29,
                    days_supply=30,
                    type_concept=v.EHR,
                )
        else:
            self.regimen(self.pick(CHEMO_SALVAGE), date, 2, 28, v.INPATIENT_VISIT)

    def no_cart_outcome(self, start: int) -> tuple[float, float]:
        """(relapse, death) days of an ALL patient never given CAR-T."""
        rel = start + draw_time(self.expo(), [(60.0, 0.15 / 365.25)])
        death = start + draw_time(self.expo(), [(0.0, 0.08 / 365.25)])
        if rel < death:
            death = min(death, rel + draw_time(self.expo(), [(0.0, 0.8 / 365.25)]))
        death = float(math.floor(death)) if math.isfinite(death) else math.inf
        rel = float(math.floor(rel)) if math.isfinite(rel) else math.inf
        return rel, death

    def no_cart_course(self, t: Truth, start: int, eofu: int, rel: float, death: float) -> None:
        """ALL patients never given CAR-T: remission, maybe relapse, HSCT or death."""
        eofu = int(min(eofu, death))
        t.end_of_followup = eofu
        self.rec.hi = eofu
        d = 90
        while start + d < min(rel, eofu):
            self.status_visit(t, start + d, "remission")
            d += 90
        if rel <= eofu:
            self.status_visit(t, int(rel), "relapse")
            if rel + 10 <= eofu:
                self.regimen(
                    self.pick(list(SALVAGE_PRE_CART.values())),
                    int(rel) + 10,
                    2,
                    28,
                    v.INPATIENT_VISIT,
                )
        elif self.bern(0.25) and start + 150 <= eofu:
            t.hsct_date, t.hsct_type = start + 150, "allogeneic"
            self.hsct(t, start + 150, "allogeneic")
        if death <= eofu:
            t.death_date = int(death)
            self.rec.rows["death"].append(
                {"person_id": t.person_id, "death_date": int(death), "death_type_concept_id": v.EHR}
            )

    def finish(self, t: Truth, eofu: int) -> None:
        t.end_of_followup = eofu
        self.rec.rows["observation_period"].append(
            {
                "observation_period_id": self.rec.next_id["observation_period"],
                "person_id": t.person_id,
                "observation_period_start_date": t.observation_start,
                "observation_period_end_date": eofu,
                "period_type_concept_id": v.EHR,
            }
        )
        self.rec.next_id["observation_period"] += 1
        a = t.category in ("core", "auto_hsct")
        t.expected_in_cohort_a = a
        if a:
            assert t.car_t_date is not None
            plus = (
                t.hsct_type == "allogeneic"
                and t.hsct_date is not None
                and t.hsct_date - t.car_t_date <= self.p.hsct_window_days
                and (t.relapse_after_cart_date is None or t.hsct_date < t.relapse_after_cart_date)
            )
            t.expected_arm_a = "HSCT+" if plus else "HSCT-"
        t.expected_in_cohort_b = (
            t.category == "core"
            and t.relapse_after_cart_date is not None
            and t.salvage_start_date is not None
        )
        self.truths.append(t)

    def deliberate_errors(self) -> None:
        """Records before the observation period, after death, and duplicates (counted)."""
        p = self.p
        by_id = {t.person_id: t for t in self.truths}
        ordered = sorted(by_id)
        early = [
            pid
            for pid in ordered
            if by_id[pid].observation_start >= self.start + 220 and by_id[pid].has_all
        ]
        for pid in early[: p.n_outside_op_all]:
            t = by_id[pid]
            self.rec.start(pid, -INF, INF)
            self.rec.condition(
                v.ALL, v.ICD10CM_C91_00, t.observation_start - self.ui(10, 200), None, force=True
            )
            t.record_before_op = True
            self.errors["before_op"] += 1
        dead = [pid for pid in ordered if (by_id[pid].death_date or INF) <= self.cutoff - 30]
        for pid in dead[: p.n_after_death_all]:
            t = by_id[pid]
            self.rec.start(pid, -INF, INF)
            assert t.death_date is not None
            self.rec.measurement(
                v.HEMOGLOBIN,
                t.death_date + self.ui(1, 20),
                9.0,
                None,
                v.UNIT_G_DL,
                None,
                force=True,
            )
            t.record_after_death = True
            self.errors["after_death"] += 1
        # duplicates: copy the CAR-T drug rows of the first n patients with one
        drugs = self.rec.rows["drug_exposure"]
        cart_concepts = set(v.CD19_CART_INGREDIENTS) | {
            v.KYMRIAH_600M,
            v.KYMRIAH_250M,
            v.TECARTUS,
            v.AUCATZYL,
            v.YESCARTA,
            v.BREYANZI,
        }
        done: set[int] = set()
        extra = []
        for row in drugs:
            if len(done) >= p.n_duplicate_all:
                break
            if row["drug_concept_id"] in cart_concepts and row["person_id"] not in done:
                copy = dict(row)
                copy["drug_exposure_id"] = self.rec.next_id["drug_exposure"]
                self.rec.next_id["drug_exposure"] += 1
                extra.append(copy)
                done.add(row["person_id"])
                by_id[row["person_id"]].duplicate_cart_row = True
        drugs.extend(extra)
        self.errors["duplicates"] += len(extra)

    def truth_table(self) -> pa.Table:
        schema = truth_schema()
        cols: dict[str, list[Any]] = {f.name: [] for f in schema}
        names = list(cols)
        for t in self.truths:
            for k in names:
                cols[k].append(getattr(t, k))
        return pa.table({f.name: pa.array(cols[f.name], f.type) for f in schema}, schema=schema)


@dataclass
class SubsetResult:
    tables: dict[str, pa.Table]
    truth: pa.Table
    errors: dict[str, int] = field(default_factory=dict)
    #: counterfactual truth of the study-A HSCT comparison (see truth_hsct.py)
    hsct: HsctTruth | None = None


def simulate_subset(
    params: SynthParams,
    first_person_id: int,
    on_progress: Callable[[int], None] | None = None,
) -> SubsetResult:
    """Simulate the whole ALL / CAR-T subset; person ids start at ``first_person_id``;
    ``on_progress(n)`` as patients are done (progress display only)."""
    sim = Simulator(params, first_person_id)
    sim.simulate(on_progress)
    cov = sim.core_covariates
    hsct = hsct_truth(
        params,
        covariates_of([c[0] for c in cov], [c[1] for c in cov], [c[2] for c in cov]),
    )
    return SubsetResult(sim.rec.to_arrow(), sim.truth_table(), dict(sim.errors), hsct)
