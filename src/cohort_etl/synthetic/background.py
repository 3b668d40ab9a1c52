"""Vectorised background population: persons, observation periods, visits and the
conditions, drugs, labs, procedures and observations a general EHR population carries.

One call generates one block of :data:`~cohort_etl.synthetic.params.BLOCK_SIZE` persons
from its own random stream ``default_rng([seed, 1, block])``; ids are
``(block + 1) * 10**9 + row`` so they never depend on how blocks are scheduled.
Deliberate data errors (events before the observation period, records after death,
duplicates) are placed in block 0 only, with exact counts returned to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from cohort_etl.synthetic import vocabulary as v
from cohort_etl.synthetic.arrowutil import dates, floats, int32s, ints, strings
from cohort_etl.synthetic.params import BLOCK_SIZE, SynthParams, day

ID_STRIDE = 10**9
ICD10_TRANSITION = day(__import__("datetime").date(2015, 10, 1))

# Chronic conditions: (standard concept, base prevalence, age slope per decade, meds)
_CHRONIC: list[tuple[int, float, float, tuple[int, ...]]] = [
    (v.ESSENTIAL_HYPERTENSION, 0.05, 0.045, (v.LISINOPRIL, v.AMLODIPINE, v.HYDROCHLOROTHIAZIDE)),
    (v.TYPE_2_DIABETES, 0.02, 0.02, (v.METFORMIN,)),
    (v.HYPERLIPIDEMIA, 0.03, 0.035, (v.ATORVASTATIN,)),
    (v.ASTHMA, 0.08, 0.0, (v.ALBUTEROL,)),
    (v.COPD, 0.0, 0.01, (v.ALBUTEROL,)),
    (v.ATRIAL_FIBRILLATION, 0.0, 0.008, (v.ASPIRIN,)),
    (v.OSTEOARTHRITIS, 0.0, 0.03, (v.IBUPROFEN, v.ACETAMINOPHEN)),
    (v.DEPRESSIVE_DISORDER, 0.06, 0.005, (v.ACETAMINOPHEN,)),
    (v.OBESITY, 0.10, 0.01, (v.METFORMIN,)),
    (v.HYPOTHYROIDISM, 0.01, 0.008, (v.LEVOTHYROXINE,)),
    (v.GERD, 0.04, 0.01, (v.OMEPRAZOLE,)),
]
_ACUTE = np.array(
    [
        v.ACUTE_BRONCHITIS,
        v.OTITIS_MEDIA,
        v.VIRAL_SINUSITIS,
        v.STREP_THROAT,
        v.ANKLE_SPRAIN,
        v.VIRAL_PHARYNGITIS,
        v.CHRONIC_SINUSITIS,
        v.MYOCARDIAL_INFARCTION,
        v.FEBRILE_NEUTROPENIA,
    ],
    dtype=np.int64,
)
_ACUTE_P = np.array([0.2, 0.14, 0.22, 0.1, 0.08, 0.18, 0.06, 0.01, 0.01])
_ACUTE_P = _ACUTE_P / _ACUTE_P.sum()
_ACUTE_MEDS = np.array([v.AMOXICILLIN, v.IBUPROFEN, v.ACETAMINOPHEN], dtype=np.int64)

# Labs: (concept, mean, sd, unit, low, high, LOINC code, weight)
_LABS: list[tuple[int, float, float, int, float, float, str, float]] = [
    (v.HEMOGLOBIN, 13.6, 1.6, v.UNIT_G_DL, 12.0, 17.5, "718-7", 0.22),
    (v.LEUKOCYTES, 7.2, 2.1, v.UNIT_THOUSAND_PER_UL, 4.0, 11.0, "6690-2", 0.22),
    (v.PLATELETS, 260.0, 60.0, v.UNIT_THOUSAND_PER_UL, 150.0, 400.0, "777-3", 0.18),
    (v.CREATININE, 0.95, 0.25, v.UNIT_MG_DL, 0.6, 1.3, "2160-0", 0.14),
    (v.GLUCOSE, 98.0, 18.0, v.UNIT_MG_DL, 70.0, 110.0, "2345-7", 0.14),
    (v.BODY_WEIGHT, 75.0, 17.0, v.UNIT_KG, 0.0, 0.0, "29463-7", 0.10),
]
_PROCS = np.array(
    [
        v.CPT_99213_OFFICE_VISIT,
        v.CPT_36415_VENIPUNCTURE,
        v.CPT_85025_CBC,
        v.CPT_71046_CHEST_XRAY,
        v.CPT_93000_ECG,
    ],
    dtype=np.int64,
)
_PROCS_P = np.array([0.5, 0.25, 0.1, 0.08, 0.07])
_SMOKING = np.array([v.NEVER_SMOKER, v.FORMER_SMOKER, v.CURRENT_SMOKER], dtype=np.int64)
_RACES = np.array(
    [v.WHITE, v.BLACK, v.ASIAN, v.PACIFIC_ISLANDER, v.AMERICAN_INDIAN, 0], dtype=np.int64
)
_RACES_P = np.array([0.62, 0.13, 0.06, 0.005, 0.01, 0.175])
_VISITS = np.array([v.OUTPATIENT_VISIT, v.ER_VISIT, v.INPATIENT_VISIT], dtype=np.int64)
_VISIT_CODES = ["OP", "ER", "IP"]
_UNMAPPED_CODES = ["R69.X1", "ZZ123", "LOCAL-DX-77", "U07.9X"]

# Events per visit (Poisson means)
RATE_CONDITIONS = 1.3
RATE_DRUGS = 1.2
RATE_MEASUREMENTS = 2.6
RATE_PROCEDURES = 0.5
RATE_OBSERVATIONS = 0.25


@dataclass
class SourceDictionary:
    """Source value dictionary: code strings and a concept-id -> index lookup."""

    codes: list[str] = field(default_factory=list)
    keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    @classmethod
    def of(cls, concept_ids: list[int], extra: list[str] | None = None) -> SourceDictionary:
        ids = sorted(set(concept_ids))
        codes = [v.source_code(c) for c in ids] + list(extra or [])
        return cls(codes, np.array(ids, np.int64), np.arange(len(ids), dtype=np.int32))

    def index(self, concept_ids: np.ndarray) -> np.ndarray:
        return self.values[np.searchsorted(self.keys, concept_ids)]


@dataclass
class _ConditionSources:
    std: np.ndarray
    icd10: np.ndarray
    icd9: np.ndarray
    cond_src: SourceDictionary


def _source_tables() -> _ConditionSources:
    chronic_ids = np.array([c[0] for c in _CHRONIC], np.int64)
    std = sorted(set(chronic_ids.tolist()) | set(_ACUTE.tolist()))
    std_arr = np.array(std, np.int64)
    icd10 = np.array([v.BACKGROUND_ICD10_SOURCE[s] for s in std], np.int64)
    icd9 = np.array(
        [v.BACKGROUND_ICD9_SOURCE.get(s, v.BACKGROUND_ICD10_SOURCE[s]) for s in std], np.int64
    )
    cond_src = SourceDictionary.of(icd10.tolist() + icd9.tolist(), _UNMAPPED_CODES)
    return _ConditionSources(std_arr, icd10, icd9, cond_src)


_SRC = _source_tables()
_DRUG_INGREDIENTS = sorted({m for c in _CHRONIC for m in c[3]} | set(_ACUTE_MEDS.tolist()))
_DRUG_SRC = SourceDictionary.of(_DRUG_INGREDIENTS + [v.CLINICAL_DRUG[i] for i in _DRUG_INGREDIENTS])
_CD_KEYS = np.array(_DRUG_INGREDIENTS, np.int64)
_CD_VALUES = np.array([v.CLINICAL_DRUG[i] for i in _DRUG_INGREDIENTS], np.int64)
_PROC_SRC = SourceDictionary.of(_PROCS.tolist())
_OBS_SRC = SourceDictionary.of(_SMOKING.tolist())
_LAB_CODES = [lab[6] for lab in _LABS]


@dataclass
class BlockResult:
    tables: dict[str, pa.Table]
    rows: int
    errors: dict[str, int]


def block_range(params: SynthParams, block: int) -> tuple[int, int]:
    """(first person index, person count) of ``block`` (person_id = index + 1)."""
    first = block * BLOCK_SIZE
    return first, max(0, min(BLOCK_SIZE, params.persons - first))


def n_blocks(params: SynthParams) -> int:
    return (params.persons + BLOCK_SIZE - 1) // BLOCK_SIZE


def generate_block(params: SynthParams, block: int) -> BlockResult:
    """Generate all background tables of one block."""
    first, n = block_range(params, block)
    rng = np.random.default_rng([params.seed, 1, block])
    base_id = (block + 1) * ID_STRIDE
    start, cutoff = day(params.start_date), day(params.cutoff_date)
    person_id = np.arange(first + 1, first + n + 1, dtype=np.int64)

    # --- person ------------------------------------------------------------------
    male = rng.random(n) < 0.49
    age_at_start = rng.uniform(-12.0, 90.0, n)
    birth = (start - age_at_start * 365.25).astype(np.int64)
    birth = np.minimum(birth, cutoff - 400)
    birth_dt = birth.astype("datetime64[D]")
    yob = birth_dt.astype("datetime64[Y]").astype(np.int64) + 1970
    mob = (birth_dt.astype("datetime64[M]").astype(np.int64) % 12) + 1
    dob = (birth_dt - birth_dt.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    race = _RACES[rng.choice(len(_RACES), n, p=_RACES_P)]
    hispanic = rng.random(n) < 0.18
    person = pa.table(
        {
            "person_id": ints(person_id),
            "gender_concept_id": ints(np.where(male, v.MALE, v.FEMALE)),
            "year_of_birth": int32s(yob),
            "month_of_birth": int32s(mob),
            "day_of_birth": int32s(dob),
            "race_concept_id": ints(race),
            "ethnicity_concept_id": ints(np.where(hispanic, v.HISPANIC, v.NOT_HISPANIC)),
            "gender_source_value": strings(np.where(male, 0, 1), ["M", "F"]),
        }
    )

    # --- observation periods -------------------------------------------------------
    earliest = np.maximum(start, birth)
    room = np.maximum(cutoff - 60 - earliest, 0)
    op_start = earliest + (room * rng.random(n) * rng.random(n)).astype(np.int64)
    op_len = 30 + rng.exponential(2500.0, n).astype(np.int64)
    op_end = np.minimum(op_start + op_len, cutoff)
    age_end = (op_end - birth) / 365.25
    p_death = np.clip(0.003 + 0.6 * (np.maximum(age_end, 0) / 100.0) ** 4, 0, 0.6)
    dies = rng.random(n) < p_death
    death_day = op_start + ((op_end - op_start) * rng.random(n)).astype(np.int64)
    op_end = np.where(dies, death_day, op_end)
    # a gap (two observation periods) for some long periods
    length = op_end - op_start
    split = (rng.random(n) < 0.08) & (length > 500)
    gap_at = op_start + 50 + ((length - 400) * rng.random(n)).astype(np.int64)
    gap_len = 60 + (240 * rng.random(n)).astype(np.int64)
    split &= gap_at + gap_len < op_end - 30
    p1_start, p1_end = op_start, np.where(split, gap_at, op_end)
    p2_start, p2_end = np.where(split, gap_at + gap_len, 0), np.where(split, op_end, -1)
    len1 = p1_end - p1_start + 1
    len2 = np.where(split, p2_end - p2_start + 1, 0)
    n_split = int(split.sum())
    op_person = np.concatenate([person_id, person_id[split]])
    op_s = np.concatenate([p1_start, p2_start[split]])
    op_e = np.concatenate([p1_end, p2_end[split]])
    order = np.lexsort((op_s, op_person))
    observation_period = pa.table(
        {
            "observation_period_id": ints(base_id + 1 + np.arange(n + n_split)),
            "person_id": ints(op_person[order]),
            "observation_period_start_date": dates(op_s[order]),
            "observation_period_end_date": dates(op_e[order]),
            "period_type_concept_id": ints(np.full(n + n_split, v.EHR)),
        }
    )
    death = pa.table(
        {
            "person_id": ints(person_id[dies]),
            "death_date": dates(op_end[dies]),
            "death_type_concept_id": ints(np.full(int(dies.sum()), v.EHR)),
        }
    )

    # --- visits ----------------------------------------------------------------------
    age_mid = np.maximum((op_start + op_end) / 2 - birth, 0) / 365.25
    rate = (1.8 + age_mid / 30.0) * (len1 + len2) / 365.25
    n_vis = np.minimum(rng.poisson(rate), 250)
    vp = np.repeat(np.arange(n), n_vis)  # person index per visit
    nv = len(vp)
    u = (rng.random(nv) * (len1[vp] + len2[vp])).astype(np.int64)
    in_first = u < len1[vp]
    v_start = np.where(in_first, p1_start[vp] + u, p2_start[vp] + u - len1[vp])
    v_period_end = np.where(in_first, p1_end[vp], p2_end[vp])
    kind = np.searchsorted(np.array([0.85, 0.95]), rng.random(nv), side="right")
    los = np.where(
        kind == 2, 1 + rng.integers(0, 9, nv), np.where(kind == 1, rng.integers(0, 2, nv), 0)
    )
    v_end = np.minimum(v_start + los, v_period_end)
    visit_id = base_id + 1 + np.arange(nv)
    visit_occurrence = pa.table(
        {
            "visit_occurrence_id": ints(visit_id),
            "person_id": ints(person_id[vp]),
            "visit_concept_id": ints(_VISITS[kind]),
            "visit_start_date": dates(v_start),
            "visit_end_date": dates(v_end),
            "visit_type_concept_id": ints(np.full(nv, v.EHR)),
            "visit_source_value": strings(kind, _VISIT_CODES),
        }
    )

    # --- person-level chronic conditions ------------------------------------------------
    base = np.array([c[1] for c in _CHRONIC])
    slope = np.array([c[2] for c in _CHRONIC])
    prev = np.clip(base[None, :] + slope[None, :] * (age_mid[:, None] / 10.0), 0, 0.9)
    chronic = rng.random((n, len(_CHRONIC))) < prev
    chronic_ids = np.array([c[0] for c in _CHRONIC], np.int64)

    def per_visit(rate_: float) -> tuple[np.ndarray, np.ndarray]:
        k = rng.poisson(rate_, nv)
        vis = np.repeat(np.arange(nv), k)
        return vis, vp[vis]

    # --- conditions ----------------------------------------------------------------------
    cv, cpi = per_visit(RATE_CONDITIONS)
    nc = len(cv)
    j = rng.integers(0, len(_CHRONIC), nc)
    use_chronic = chronic[cpi, j] & (rng.random(nc) < 0.85)
    acute = _ACUTE[rng.choice(len(_ACUTE), nc, p=_ACUTE_P)]
    cstd = np.where(use_chronic, chronic_ids[j], acute)
    cdate = v_start[cv]
    pos = np.searchsorted(_SRC.std, cstd)
    icd9 = cdate < ICD10_TRANSITION
    csrc = np.where(icd9, _SRC.icd9[pos], _SRC.icd10[pos])
    cond_src = _SRC.cond_src
    csrc_idx = cond_src.index(csrc)
    unmapped = rng.random(nc) < params.p_unmapped_condition
    n_unmapped_codes = len(_UNMAPPED_CODES)
    csrc_idx = np.where(
        unmapped,
        len(cond_src.codes) - n_unmapped_codes + rng.integers(0, n_unmapped_codes, nc),
        csrc_idx,
    )
    cstd = np.where(unmapped, 0, cstd)
    csrc = np.where(unmapped, 0, csrc)
    cperson = person_id[cpi]
    cvisit = visit_id[cv]

    # --- deliberate errors (block 0 only) -----------------------------------------------------
    errors = {"before_op": 0, "after_death": 0, "duplicates": 0}
    extra_meas: dict[str, np.ndarray] | None = None
    if block == 0:
        eligible = np.flatnonzero(p1_start[cpi] >= start + 90)
        k_out = min(params.n_outside_op_background, len(eligible))
        shifted = rng.choice(eligible, k_out, replace=False) if k_out else np.zeros(0, np.int64)
        cdate = cdate.copy()
        cdate[shifted] = p1_start[cpi[shifted]] - rng.integers(1, 61, k_out)
        cvisit = cvisit.copy()
        cvisit[shifted] = 0  # no visit: a record imported from elsewhere
        errors["before_op"] += k_out
        rest = np.setdiff1d(np.arange(nc), shifted)
        k_dup = min(params.n_duplicate_background, len(rest))
        dups = np.sort(rng.choice(rest, k_dup, replace=False)) if k_dup else np.zeros(0, np.int64)
        errors["duplicates"] += k_dup
        take = np.concatenate([np.arange(nc), dups])
        cstd, csrc, csrc_idx = cstd[take], csrc[take], csrc_idx[take]
        cdate, cperson, cvisit = cdate[take], cperson[take], cvisit[take]
        nc = len(take)
        dead = np.flatnonzero(dies & (op_end <= cutoff - 31))
        k_dead = min(params.n_after_death_background, len(dead))
        chosen = (
            np.sort(rng.choice(dead, k_dead, replace=False)) if k_dead else np.zeros(0, np.int64)
        )
        extra_meas = {
            "person": person_id[chosen],
            "date": op_end[chosen] + rng.integers(1, 31, k_dead),
        }
        errors["after_death"] += k_dead

    cvisit_arr = pa.array(cvisit, pa.int64(), mask=cvisit == 0)
    condition_occurrence = pa.table(
        {
            "condition_occurrence_id": ints(base_id + 1 + np.arange(nc)),
            "person_id": ints(cperson),
            "condition_concept_id": ints(cstd),
            "condition_start_date": dates(cdate),
            "condition_type_concept_id": ints(np.full(nc, v.EHR_ENCOUNTER_DIAGNOSIS)),
            "visit_occurrence_id": cvisit_arr,
            "condition_source_value": strings(csrc_idx, cond_src.codes),
            "condition_source_concept_id": ints(csrc),
        }
    )

    # --- drugs -----------------------------------------------------------------------
    dv, dpi = per_visit(RATE_DRUGS)
    nd = len(dv)
    j = rng.integers(0, len(_CHRONIC), nd)
    use_chronic = chronic[dpi, j] & (rng.random(nd) < 0.8)
    pick = rng.random(nd)
    med_table = np.zeros((len(_CHRONIC), 3), np.int64)
    for i, c in enumerate(_CHRONIC):
        meds = list(c[3]) + [c[3][0]] * (3 - len(c[3]))
        med_table[i] = meds
    chronic_med = med_table[j, (pick * 3).astype(np.int64)]
    acute_med = _ACUTE_MEDS[rng.integers(0, len(_ACUTE_MEDS), nd)]
    ingredient = np.where(use_chronic, chronic_med, acute_med)
    product = _CD_VALUES[np.searchsorted(_CD_KEYS, ingredient)]
    as_product = rng.random(nd) < 0.92
    dconcept = np.where(as_product, product, ingredient)
    supply = np.where(use_chronic, np.where(rng.random(nd) < 0.6, 30, 90), 10)
    dstart = v_start[dv]
    dend = np.minimum(dstart + supply - 1, v_period_end[dv])
    drug_exposure = pa.table(
        {
            "drug_exposure_id": ints(base_id + 1 + np.arange(nd)),
            "person_id": ints(person_id[dpi]),
            "drug_concept_id": ints(dconcept),
            "drug_exposure_start_date": dates(dstart),
            "drug_exposure_end_date": dates(dend),
            "drug_type_concept_id": ints(np.full(nd, v.EHR)),
            "quantity": floats(supply.astype(np.float64)),
            "days_supply": int32s(supply),
            "visit_occurrence_id": ints(visit_id[dv]),
            "drug_source_value": strings(_DRUG_SRC.index(dconcept), _DRUG_SRC.codes),
            "drug_source_concept_id": ints(dconcept),
        }
    )

    # --- measurements ----------------------------------------------------------------------
    mv, mpi = per_visit(RATE_MEASUREMENTS)
    nm = len(mv)
    weights = np.array([lab[7] for lab in _LABS])
    lab = rng.choice(len(_LABS), nm, p=weights / weights.sum())
    lab_concept = np.array([x[0] for x in _LABS], np.int64)
    mean = np.array([x[1] for x in _LABS])
    sd = np.array([x[2] for x in _LABS])
    unit = np.array([x[3] for x in _LABS], np.int64)
    low = np.array([x[4] for x in _LABS])
    high = np.array([x[5] for x in _LABS])
    value = np.round(np.maximum(mean[lab] + sd[lab] * rng.standard_normal(nm), 0.1), 1)
    mperson = person_id[mpi]
    mdate = v_start[mv]
    mvisit = visit_id[mv]
    if extra_meas is not None and len(extra_meas["person"]):
        k = len(extra_meas["person"])
        lab = np.concatenate([lab, np.zeros(k, np.int64)])
        value = np.concatenate([value, np.full(k, 9.1)])
        mperson = np.concatenate([mperson, extra_meas["person"]])
        mdate = np.concatenate([mdate, extra_meas["date"]])
        mvisit = np.concatenate([mvisit, np.zeros(k, np.int64)])
        nm += k
    has_range = high[lab] > 0
    measurement = pa.table(
        {
            "measurement_id": ints(base_id + 1 + np.arange(nm)),
            "person_id": ints(mperson),
            "measurement_concept_id": ints(lab_concept[lab]),
            "measurement_date": dates(mdate),
            "measurement_type_concept_id": ints(np.full(nm, v.EHR)),
            "value_as_number": floats(value),
            "unit_concept_id": ints(unit[lab]),
            "range_low": pa.array(low[lab], pa.float64(), mask=~has_range),
            "range_high": pa.array(high[lab], pa.float64(), mask=~has_range),
            "visit_occurrence_id": pa.array(mvisit, pa.int64(), mask=mvisit == 0),
            "measurement_source_value": strings(lab, _LAB_CODES),
            "measurement_source_concept_id": ints(lab_concept[lab]),
        }
    )

    # --- procedures ----------------------------------------------------------------------
    pv, ppi = per_visit(RATE_PROCEDURES)
    npr = len(pv)
    proc = _PROCS[rng.choice(len(_PROCS), npr, p=_PROCS_P)]
    procedure_occurrence = pa.table(
        {
            "procedure_occurrence_id": ints(base_id + 1 + np.arange(npr)),
            "person_id": ints(person_id[ppi]),
            "procedure_concept_id": ints(proc),
            "procedure_date": dates(v_start[pv]),
            "procedure_type_concept_id": ints(np.full(npr, v.EHR)),
            "visit_occurrence_id": ints(visit_id[pv]),
            "procedure_source_value": strings(_PROC_SRC.index(proc), _PROC_SRC.codes),
            "procedure_source_concept_id": ints(proc),
        }
    )

    # --- observations ----------------------------------------------------------------------
    smoke = _SMOKING[rng.choice(3, n, p=[0.6, 0.25, 0.15])]
    ov, opi = per_visit(RATE_OBSERVATIONS)
    no = len(ov)
    ob = smoke[opi]
    observation = pa.table(
        {
            "observation_id": ints(base_id + 1 + np.arange(no)),
            "person_id": ints(person_id[opi]),
            "observation_concept_id": ints(ob),
            "observation_date": dates(v_start[ov]),
            "observation_type_concept_id": ints(np.full(no, v.EHR)),
            "visit_occurrence_id": ints(visit_id[ov]),
            "observation_source_value": strings(_OBS_SRC.index(ob), _OBS_SRC.codes),
            "observation_source_concept_id": ints(ob),
        }
    )
    tables = {
        "person": person,
        "observation_period": observation_period,
        "death": death,
        "visit_occurrence": visit_occurrence,
        "condition_occurrence": condition_occurrence,
        "drug_exposure": drug_exposure,
        "measurement": measurement,
        "procedure_occurrence": procedure_occurrence,
        "observation": observation,
    }
    rows = sum(t.num_rows for name, t in tables.items() if name != "person")
    return BlockResult(tables, rows, errors)
