"""The OMOP vocabulary slice used by the synthetic CDM.

The rows are package data in the OMOP vocabulary CSV layout (Athena download style: tab
separated, dates ``YYYYMMDD``, empty = NULL), one file per table in
``cohort_etl/synthetic/vocabulary_data/``: ``concept.csv`` (plus a ``source`` column: where
each real OMOP id was found, or ``local`` for ids of the local range),
``concept_relationship.csv``, ``concept_ancestor.csv``, ``vocabulary.csv``, ``domain.csv``,
``concept_class.csv`` and ``relationship.csv``. This module keeps only the named ids the
generator and the tests use, and reads the files.

Concept ids are real OMOP ids wherever public OHDSI material gives one (the ``source``
column); everything else comes from the OMOP local range (``concept_id >= 2_000_000_000``)
with an explicit, append-only number: ``_local(n)`` is ``2_000_000_000 + n``, so ids never
move when rows are added. Never renumber. Blocks of the local range with a meaning here:
601-650 background ICD-10-CM source codes, 651-700 background ICD-9-CM source codes,
1000-1999 clinical drug products (one per ingredient), 9000+ metadata concepts (domains,
vocabularies, relationships, concept classes).

What is modelled, and how it mirrors the real OMOP vocabularies:

* Standard concepts (``standard_concept = 'S'``): SNOMED conditions and procedures,
  RxNorm ingredients and drugs, LOINC labs, CPT4 / ICD-10-PCS / ICD-9-Proc procedures,
  demographic, visit, type and episode concepts. Classification concepts (``'C'``): ATC.
* Source concepts (``standard_concept`` NULL): ICD-10-CM, ICD-9-CM and HCPCS codes, each
  with a ``'Maps to'`` row to a standard concept and the reverse ``'Mapped from'``;
  standard concepts map to themselves, as in Athena downloads.
* ``concept_ancestor`` is the transitive closure of the ``'Is a'`` rows (every standard and
  classification concept is its own ancestor at level 0), with minimum and maximum levels
  of separation; it links only standard / classification concepts, except the deliberate
  stale rows (see :data:`DELIBERATE_VOCABULARY_ANOMALIES`). tests/synthetic/test_vocabulary.py
  checks the files against these rules; adding a concept means adding its ``concept`` row,
  its relationship rows in both directions and its ancestor rows (the test prints the
  missing ones).
* Invalid concepts and relationships exist on purpose so that Circe semantics (valid
  descendants only, valid ``'Maps to'`` only) change results:

  - ``BURKITT_LEUKEMIA_DEPRECATED`` is deprecated (``'D'``) yet still listed as a
    descendant of ALL 134305 in ``concept_ancestor``;
  - ``ALL_UPGRADED_OLD`` is upgraded (``'U'``) with ``'Concept replaced by'`` 134305;
  - ICD-10-CM C95.00 (acute leukemia of unspecified cell type) has a valid ``'Maps to'``
    138708 (acute leukemia) and an invalid one (``invalid_reason 'D'``) to ALL 134305;
  - HCPCS Q2040 (tisagenlecleucel, 2018 only) and the pre-FY2022 ICD-10-PCS
    "nonautologous" transfusion codes are deprecated but still carry valid mappings, the
    way old source codes do.

Examples
--------
>>> from cohort_etl.synthetic import vocabulary as v
>>> v.B_ALL, v.concept_by_code("ICD10CM", "C91.02")
(4082461, 2000000004)
>>> tables = v.vocabulary_tables()
>>> sorted(tables)[:3]
['concept', 'concept_ancestor', 'concept_class']
"""

from __future__ import annotations

import csv
import datetime as dt
from functools import cache, lru_cache
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from cohort_etl.cdm.spec import TABLES

#: Version string written to ``vocabulary.vocabulary_version`` and ``cdm_source``.
VOCABULARY_VERSION = "cohort-etl synthetic vocabulary v1 (OMOP ids, 2026-11)"
#: First id of the OMOP local range.
LOCAL_BASE = 2_000_000_000
#: The vocabulary tables, each a file ``<name>.csv`` of the package data.
VOCABULARY_FILES = (
    "concept",
    "concept_ancestor",
    "concept_class",
    "concept_relationship",
    "domain",
    "relationship",
    "vocabulary",
)
#: Extra column of concept.csv (not a CDM column): where the real OMOP id was found.
SOURCE_COLUMN = "source"


def _local(n: int) -> int:
    return LOCAL_BASE + n


class ConceptRow(NamedTuple):
    """One ``concept`` row."""

    concept_id: int
    concept_name: str
    domain_id: str
    vocabulary_id: str
    concept_class_id: str
    standard_concept: str | None
    concept_code: str
    valid_start_date: dt.date
    valid_end_date: dt.date
    invalid_reason: str | None


# ------------------------------------------------------------------------------------
# Named concept ids (the public API other code uses)
# ------------------------------------------------------------------------------------
NO_MATCHING_CONCEPT = 0

# ALL and its hierarchy (SNOMED, standard)
ACUTE_LEUKEMIA = 138708
LYMPHOID_LEUKEMIA = 132853
ALL = 134305
B_ALL = 4082461  # Precursor B-cell acute lymphoblastic leukemia
B_CELL_ALL = 4173963  # B-cell acute lymphoblastic leukemia
PH_POS_ALL = 4138008  # Philadelphia chromosome-positive ALL
PH_POS_B_ALL = 37109936  # B lymphoblastic leukemia lymphoma with t(9;22); BCR-ABL1
PH_NEG_B_ALL = 37017893
COMMON_ALL = 4079280
B_ALL_KMT2A = 3654648
B_ALL_ETV6_RUNX1 = 3654649
B_ALL_HYPERDIPLOID = 3654653
T_ALL = 4082462
ALL_REMISSION = 141816
B_ALL_REMISSION = 4138752
ALL_RELAPSE = 36712834
ALL_REFRACTORY = 36712835
MENINGEAL_LEUKEMIA = 36717231
CNS_DISORDER_DUE_TO_ALL = 37018869
LYMPHOID_LEUKEMIA_REMISSION = 134596
LYMPHOID_LEUKEMIA_RELAPSE = 760934
# local standard concepts for the noise diseases (real ids not in public material we use)
AML = _local(101)
CLL = _local(102)
DLBCL = _local(103)
EXTRAMEDULLARY_ALL = _local(104)  # ALL with extramedullary (non-CNS) involvement
BURKITT_LEUKEMIA_DEPRECATED = _local(105)  # invalid 'D', stale concept_ancestor row
ALL_UPGRADED_OLD = _local(106)  # invalid 'U', replaced by 134305
BRAIN_DISORDER = _local(107)
BONE_MARROW_TRANSPLANT_PRESENT = 42537745

# ICD-10-CM / ICD-9-CM source concepts (non-standard)
ICD10CM_C91_0 = _local(1)
ICD10CM_C91_00 = _local(2)
ICD10CM_C91_01 = _local(3)
ICD10CM_C91_02 = _local(4)
ICD9CM_204_0 = _local(5)
ICD9CM_204_00 = _local(6)
ICD9CM_204_01 = _local(7)
ICD9CM_204_02 = _local(8)
ICD10CM_C92_00 = _local(9)  # AML not in remission
ICD10CM_C91_10 = _local(10)  # CLL not in remission
ICD10CM_C83_30 = _local(11)  # DLBCL unspecified site
ICD10CM_C95_00 = _local(12)  # acute leukemia unspecified cell type (invalid Maps to ALL)
ICD10CM_G93_89 = _local(13)  # other specified disorders of brain
ICD10CM_C79_49 = _local(14)  # secondary malignancy other parts of nervous system -> CNS
ICD10CM_C79_89 = _local(15)  # secondary malignancy other sites -> extramedullary

# CAR-T drugs (RxNorm ingredients, standard)
TISAGENLECLEUCEL = 792737
BREXUCABTAGENE = 37002369
AXICABTAGENE = 792844
LISOCABTAGENE = 739856
OBECABTAGENE = _local(201)
IDECABTAGENE = 36026868
CILTACABTAGENE = 779144
# CAR-T drug products (descendants of the ingredients)
KYMRIAH_600M = 1510358
KYMRIAH_250M = 792746
YESCARTA = 792853
TECARTUS = _local(202)
BREYANZI = _local(203)
AUCATZYL = _local(204)
# CAR-T HCPCS source codes (non-standard, map to the ingredient)
HCPCS_Q2040 = _local(211)
HCPCS_Q2041 = _local(212)
HCPCS_Q2042 = _local(213)
HCPCS_Q2053 = _local(214)
HCPCS_Q2054 = _local(215)
HCPCS_Q2055 = _local(216)
HCPCS_Q2056 = _local(217)
HCPCS_Q2058 = _local(218)
# CAR-T procedures (standard: CPT4, ICD-10-PCS; plus a SNOMED grouper)
CART_THERAPY_PROCEDURE = _local(220)  # SNOMED-like grouper: CAR-T cell infusion
CPT_0537T_CART_HARVEST = 927059
CPT_0538T_CART_PREPARATION = _local(221)
CPT_0539T_CART_RECEIPT = _local(222)
CPT_0540T_CART_ADMINISTRATION = _local(223)
PCS_XW033C3 = 43018384
PCS_XW043C3 = 43018388
PCS_XW033C7 = _local(224)
PCS_XW043C7 = _local(225)
PCS_XW033H7 = _local(226)
PCS_XW043H7 = _local(227)
PCS_XW033J7 = _local(228)
PCS_XW043J7 = _local(229)
PCS_XW033K7 = _local(230)
PCS_XW043K7 = _local(231)
PCS_XW033M7 = _local(232)
PCS_XW043M7 = _local(233)
PCS_XW033N7 = _local(234)
PCS_XW043N7 = _local(235)
PCS_XW033P7 = _local(236)
PCS_XW043P7 = _local(237)

# HSCT procedures
HSCT = 4120445
BONE_MARROW_TRANSPLANT = 4028623
PBSC_GRAFT = 4081380
ALLOGENEIC_BMT = 4242257  # grouper for allogeneic HSCT below
AUTOLOGOUS_BMT = 4240337  # grouper for autologous HSCT below
ALLO_PBSCT = 4143404
ALLO_BMT_RELATED = 4125487
ALLO_BMT_UNRELATED = 4125488
ALLO_BMT_HAPLO = 44790154
CORD_BLOOD_ALLOGRAFT = 4145532
AUTO_PBSCT = 4144157
AUTO_HSCT = 46271079
AUTO_PROGENITOR = 46272967
CPT_38240_ALLO = 2108456
CPT_38241_AUTO = 2108457
CPT_38242_DLI = 2108458
ICD9PROC_41_04_AUTO = 2002363
ICD9PROC_41_05_ALLO = 2002364
ICD9PROC_41_08_ALLO = 2002367
PCS_30243G1_ALLO_DEPRECATED = 2788961
PCS_30233Y1_ALLO_DEPRECATED = 2788925
PCS_30243Y1_ALLO_DEPRECATED = 2789178
PCS_30233Y0_AUTO = 2788734
PCS_30243Y0_AUTO = 2789177
PCS_30233Y3_ALLO = _local(301)
PCS_30243Y3_ALLO = _local(302)
PCS_30233Y2_ALLO = _local(303)
PCS_30243Y4_ALLO = _local(304)
PCS_30233X3_ALLO_CORD = _local(305)

# Antineoplastic and supportive drugs (RxNorm ingredients, standard)
BLINATUMOMAB = 45892531
INOTUZUMAB = 794068
IMATINIB = 1304107
DASATINIB = 1358436
NILOTINIB = 1394023
PONATINIB = 43013182
BOSUTINIB = 42900401
VENETOCLAX = 35604205
CYTARABINE = 1311078
FLUDARABINE = 1395557
CLOFARABINE = 19054821
METHOTREXATE = 1305058
VINCRISTINE = 1308290
DAUNORUBICIN = 1311799
IDARUBICIN = 19078097
DOXORUBICIN = 1338512
MITOXANTRONE = 1309188
CYCLOPHOSPHAMIDE = 1310317
IFOSFAMIDE = 19078187
ETOPOSIDE = 1350504
ASPARAGINASE = 19012585
PEGASPARGASE = 1326481
NELARABINE = 19002912
MERCAPTOPURINE = 1436650
THIOGUANINE = 1437379
DEXAMETHASONE = 1518254
PREDNISONE = 1551099
PREDNISOLONE = 1550557
METHYLPREDNISOLONE = 1506270
HYDROCORTISONE = 975125
RITUXIMAB = 1314273
TOCILIZUMAB = 40171288
BUSULFAN = 1333357
MELPHALAN = 1301267
THIOTEPA = 19137385
HCPCS_J9039_BLINATUMOMAB = _local(401)
HCPCS_J9229_INOTUZUMAB = _local(402)

# Measurements (LOINC, standard) and value concepts
CD19_CELLS_SPECIMEN = 3025815
CD19_CELLS_PER_100_BLOOD = 3016228
CD19_CELLS_BLOOD = 3010503
BCR_ABL1_PRESENCE = 3013321
BCR_ABL1_RATIO_IS = 40771901
BCR_ABL1_FISH = 3041541
MRD_B_ALL_FLOW = 649098
MRD_T_ALL_FLOW = 645216
POSITIVE = 45884084
NEGATIVE = 45878583
DETECTED = 45877985
NOT_DETECTED = 45880296
HEMOGLOBIN = 3000963
LEUKOCYTES = 3000905
PLATELETS = 3024929
CREATININE = 3016723
GLUCOSE = 3004501
BODY_WEIGHT = 3025315
UNIT_G_DL = 8713
UNIT_MG_DL = 8840
UNIT_THOUSAND_PER_UL = 8848
UNIT_KG = 9529
UNIT_PERCENT = 8554

# Demographics, visits, types, episodes
MALE = 8507
FEMALE = 8532
WHITE = 8527
BLACK = 8516
ASIAN = 8515
PACIFIC_ISLANDER = 8557
AMERICAN_INDIAN = 8657
HISPANIC = 38003563
NOT_HISPANIC = 38003564
INPATIENT_VISIT = 9201
OUTPATIENT_VISIT = 9202
ER_VISIT = 9203
ER_INPATIENT_VISIT = 262
EHR = 32817
EHR_ADMINISTRATION = 32818
EHR_ENCOUNTER_DIAGNOSIS = 32020
REGISTRY = 32879
STANDARD_ALGORITHM = 32880
EHR_EPISODE_RECORD = 32828
EPISODE_FIRST_OCCURRENCE = 32528
EPISODE_RECURRENCE = 32529
EPISODE_REMISSION = 32530
EPISODE_TREATMENT_REGIMEN = 32531
EPISODE_TREATMENT_CYCLE = 32532
EPISODE_OF_CARE = 32533
EPISODE_PROGRESSION = 32677
DEATH_OBSERVATION = 4306655
CDM_V54 = 756265  # "OMOP CDM Version 5.4.0" (cdm_source.cdm_version_concept_id)

# Outcomes / complications seen around CAR-T and HSCT
FEBRILE_NEUTROPENIA = 4250734
HLH = 4121123
CHRONIC_GVHD = 434314
CYTOKINE_RELEASE_SYNDROME = _local(501)
ACUTE_GVHD = _local(502)
ICD10CM_D89_810 = _local(503)
ICD10CM_D89_832 = _local(504)
ICD10CM_Z94_84 = _local(505)

# Background conditions (SNOMED, standard; ids as used in OHDSI Eunomia / Synthea CDMs)
ESSENTIAL_HYPERTENSION = 320128
TYPE_2_DIABETES = 201826
HYPERLIPIDEMIA = 432867
ASTHMA = 317009
COPD = 255573
ATRIAL_FIBRILLATION = 313217
MYOCARDIAL_INFARCTION = 4329847
OSTEOARTHRITIS = 80180
ACUTE_BRONCHITIS = 260139
OTITIS_MEDIA = 372328
VIRAL_SINUSITIS = 40481087
STREP_THROAT = 28060
ANKLE_SPRAIN = 81151
VIRAL_PHARYNGITIS = 4112343
CHRONIC_SINUSITIS = 257012
DEPRESSIVE_DISORDER = 440383
OBESITY = 433736
HYPOTHYROIDISM = 140673
GERD = 318800

# Background drugs (RxNorm ingredients, standard)
METFORMIN = 1503297
LISINOPRIL = 1308216
ATORVASTATIN = 1545958
AMLODIPINE = 1332418
LEVOTHYROXINE = 1501700
OMEPRAZOLE = 923645
ALBUTEROL = 1154343
AMOXICILLIN = 1713332
ACETAMINOPHEN = 1125315
IBUPROFEN = 1177480
ASPIRIN = 1112807
HYDROCHLOROTHIAZIDE = 974166

# Background procedures (CPT4, standard; local ids) and observations (local ids)
CPT_99213_OFFICE_VISIT = _local(801)
CPT_36415_VENIPUNCTURE = _local(802)
CPT_71046_CHEST_XRAY = _local(803)
CPT_93000_ECG = _local(804)
CPT_85025_CBC = _local(805)
CPT_96413_CHEMO_INFUSION = _local(806)
CPT_38221_BONE_MARROW_BIOPSY = _local(807)
CPT_62270_LUMBAR_PUNCTURE = _local(808)
NEVER_SMOKER = _local(811)
CURRENT_SMOKER = _local(812)
FORMER_SMOKER = _local(813)

# ------------------------------------------------------------------------------------
# Groups the generator and tests use
# ------------------------------------------------------------------------------------
CD19_CART_INGREDIENTS: tuple[int, ...] = (
    TISAGENLECLEUCEL,
    BREXUCABTAGENE,
    OBECABTAGENE,
    AXICABTAGENE,
    LISOCABTAGENE,
)
CART_ADMINISTRATION_PROCEDURES: tuple[int, ...] = (
    CPT_0540T_CART_ADMINISTRATION,
    PCS_XW033C3,
    PCS_XW043C3,
    PCS_XW033C7,
    PCS_XW043C7,
    PCS_XW033H7,
    PCS_XW043H7,
    PCS_XW033J7,
    PCS_XW043J7,
    PCS_XW033K7,
    PCS_XW043K7,
    PCS_XW033M7,
    PCS_XW043M7,
    PCS_XW033N7,
    PCS_XW043N7,
    PCS_XW033P7,
    PCS_XW043P7,
)
ALLO_HSCT_PROCEDURES: tuple[int, ...] = (
    ALLOGENEIC_BMT,
    ALLO_PBSCT,
    ALLO_BMT_RELATED,
    ALLO_BMT_UNRELATED,
    ALLO_BMT_HAPLO,
    CORD_BLOOD_ALLOGRAFT,
    CPT_38240_ALLO,
    ICD9PROC_41_05_ALLO,
    ICD9PROC_41_08_ALLO,
    PCS_30233Y3_ALLO,
    PCS_30243Y3_ALLO,
    PCS_30233Y2_ALLO,
    PCS_30243Y4_ALLO,
    PCS_30233X3_ALLO_CORD,
)
AUTO_HSCT_PROCEDURES: tuple[int, ...] = (
    AUTOLOGOUS_BMT,
    AUTO_PBSCT,
    AUTO_HSCT,
    AUTO_PROGENITOR,
    CPT_38241_AUTO,
    ICD9PROC_41_04_AUTO,
    PCS_30233Y0_AUTO,
    PCS_30243Y0_AUTO,
)
TKI_INGREDIENTS: tuple[int, ...] = (IMATINIB, DASATINIB, NILOTINIB, PONATINIB, BOSUTINIB)
MAB_INGREDIENTS: tuple[int, ...] = (BLINATUMOMAB, INOTUZUMAB)

DELIBERATE_VOCABULARY_ANOMALIES: dict[str, str] = {
    "stale_ancestor": (
        f"concept_ancestor lists the deprecated concept {BURKITT_LEUKEMIA_DEPRECATED} "
        f"as a descendant of ALL {ALL} and of {ACUTE_LEUKEMIA}"
    ),
    "invalid_maps_to": (
        f"ICD-10-CM C95.00 ({ICD10CM_C95_00}) has an invalid 'Maps to' {ALL} beside its "
        f"valid 'Maps to' {ACUTE_LEUKEMIA}"
    ),
    "upgraded_concept": f"{ALL_UPGRADED_OLD} is 'U' with 'Concept replaced by' {ALL}",
}


# ------------------------------------------------------------------------------------
# The package data
# ------------------------------------------------------------------------------------
def _arrow_type(name: str, datatype: str) -> pa.DataType:
    if datatype == "date":
        return pa.date32()
    if datatype == "integer":
        # concept ids are 64-bit (concept_id_1 / _2 too); levels of separation stay 32-bit
        return pa.int64() if "_id" in name else pa.int32()
    return pa.string()


def _value(text: str, datatype: str) -> object:
    if text == "":
        return None
    if datatype == "date":
        return dt.datetime.strptime(text, "%Y%m%d").date()
    if datatype == "integer":
        return int(text)
    return text


def _data_folder() -> Path:
    return Path(__file__).with_name("vocabulary_data")


@cache
def _read(table: str) -> tuple[tuple[str, ...], tuple[tuple[object, ...], ...]]:
    """Header and typed rows of ``vocabulary_data/<table>.csv``; ValueError naming the
    file, line and column of a bad value."""
    fields = {f.name: f.datatype for f in TABLES[table]}
    path = _data_folder() / f"{table}.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = tuple(next(reader))
        expected = tuple(fields) + ((SOURCE_COLUMN,) if table == "concept" else ())
        if header != expected:
            raise ValueError(f"{path}: header {list(header)} is not {list(expected)}")
        rows = []
        for line, raw in enumerate(reader, start=2):
            if len(raw) != len(header):
                raise ValueError(f"{path}, line {line}: {len(raw)} fields, expected {len(header)}")
            row = []
            for column, text in zip(header, raw, strict=True):
                try:
                    row.append(_value(text, fields.get(column, "varchar")))
                except ValueError as exc:
                    raise ValueError(f"{path}, line {line}, column {column}: {exc}") from None
            rows.append(tuple(row))
    return header, tuple(rows)


@lru_cache(maxsize=1)
def concepts() -> tuple[ConceptRow, ...]:
    """All concept rows, in file order."""
    header, rows = _read("concept")
    out = tuple(ConceptRow(*row[: len(ConceptRow._fields)]) for row in rows)  # type: ignore[arg-type]
    seen: set[int] = set()
    for row in out:
        if row.concept_id in seen:
            raise ValueError(f"duplicate concept_id {row.concept_id} in concept.csv")
        seen.add(row.concept_id)
    return out


@lru_cache(maxsize=1)
def concept_sources() -> dict[int, str]:
    """concept_id -> where the id was found (the ``source`` column of concept.csv)."""
    header, rows = _read("concept")
    return {int(row[0]): str(row[-1]) for row in rows}  # type: ignore[call-overload]


@lru_cache(maxsize=1)
def _code_index() -> dict[tuple[str, str], int]:
    return {(r.vocabulary_id, r.concept_code): r.concept_id for r in concepts()}


def concept_by_code(vocabulary_id: str, concept_code: str) -> int:
    """Concept id of ``(vocabulary_id, concept_code)``; KeyError naming it if absent."""
    try:
        return _code_index()[(vocabulary_id, concept_code)]
    except KeyError:
        raise KeyError(
            f"no concept {vocabulary_id} {concept_code!r} in the synthetic vocabulary"
        ) from None


@lru_cache(maxsize=1)
def concept_index() -> dict[int, ConceptRow]:
    """concept_id -> row."""
    return {r.concept_id: r for r in concepts()}


def source_code(concept_id: int) -> str:
    """The concept_code of a concept (used for ``*_source_value``)."""
    return concept_index()[concept_id].concept_code


def _relationships(relationship_id: str) -> list[tuple[int, int]]:
    """Valid (concept_id_1, concept_id_2) rows of one relationship, in file order."""
    _, rows = _read("concept_relationship")
    return [
        (int(r[0]), int(r[1]))  # type: ignore[call-overload]
        for r in rows
        if r[2] == relationship_id and r[5] is None
    ]


@lru_cache(maxsize=1)
def maps_to() -> dict[int, int]:
    """Valid 'Maps to' of every source concept (standard concepts map to themselves)."""
    return dict(_relationships("Maps to"))


@lru_cache(maxsize=1)
def _ancestry() -> tuple[tuple[int, int, int, int], ...]:
    _, rows = _read("concept_ancestor")
    return rows  # type: ignore[return-value]


def vocabulary_tables() -> dict[str, pa.Table]:
    """The seven vocabulary tables as Arrow tables with CDM column names and types.

    Returns
    -------
    dict
        ``concept``, ``concept_ancestor``, ``concept_relationship``, ``vocabulary``,
        ``domain``, ``concept_class`` and ``relationship``; ids are int64, dates date32.
    """
    out = {}
    for table in VOCABULARY_FILES:
        _, rows = _read(table)
        columns = {}
        for i, f in enumerate(TABLES[table]):
            values = [row[i] for row in rows]
            if f.name == "concept_name":
                values = [str(value)[:255] for value in values]
            columns[f.name] = pa.array(values, _arrow_type(f.name, f.datatype))
        out[table] = pa.table(columns)
    return out


def descendants(concept_id: int) -> set[int]:
    """Valid standard descendants of ``concept_id`` (itself included), Circe-style."""
    index = concept_index()
    return {d for a, d, _, _ in _ancestry() if a == concept_id and index[d].invalid_reason is None}


def _block(first: int, last: int) -> list[ConceptRow]:
    return [r for r in concepts() if _local(first) <= r.concept_id <= _local(last)]


#: ingredient -> its clinical drug product (local RxNorm 'Clinical Drug', block 1000-1999,
#: 'Is a' the ingredient)
CLINICAL_DRUG: dict[int, int] = {
    parent: child
    for child, parent in _relationships("Is a")
    if _local(1000) <= child <= _local(1999)
}
#: background standard concept -> its ICD-10-CM source concept id (block 601-650)
BACKGROUND_ICD10_SOURCE: dict[int, int] = {
    maps_to()[r.concept_id]: r.concept_id for r in _block(601, 650)
}
#: background standard concept -> its ICD-9-CM source concept id (block 651-700)
BACKGROUND_ICD9_SOURCE: dict[int, int] = {
    maps_to()[r.concept_id]: r.concept_id for r in _block(651, 700)
}
