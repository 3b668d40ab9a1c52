"""The OMOP vocabulary slice used by the synthetic CDM.

Every concept the generator writes, and the vocabulary rows around it, come from this
module. Concept ids are real OMOP ids wherever public OHDSI material gives one (the
project's concept catalogue); everything else comes from the OMOP local range
(``concept_id >= 2_000_000_000``) with an explicit, append-only number: ``_local(n)`` is
``2_000_000_000 + n``, so ids never move when rows are added. Never renumber.

What is modelled, and how it mirrors the real OMOP vocabularies:

* Standard concepts (``standard_concept = 'S'``): SNOMED conditions and procedures,
  RxNorm ingredients and drugs, LOINC labs, CPT4 / ICD-10-PCS / ICD-9-Proc procedures,
  demographic, visit, type and episode concepts. Classification concepts (``'C'``): ATC.
* Source concepts (``standard_concept`` NULL): ICD-10-CM, ICD-9-CM and HCPCS codes, each
  with a ``'Maps to'`` row to a standard concept and the reverse ``'Mapped from'``;
  standard concepts map to themselves, as in Athena downloads.
* ``concept_ancestor`` is the transitive closure of the ``'Is a'`` edges below (every
  standard and classification concept is its own ancestor at level 0), with minimum and
  maximum levels of separation; it links only standard / classification concepts, except
  one deliberate stale row (see :data:`DELIBERATE_VOCABULARY_ANOMALIES`).
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

import datetime as dt
from collections import defaultdict, deque
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

import pyarrow as pa

#: Version string written to ``vocabulary.vocabulary_version`` and ``cdm_source``.
VOCABULARY_VERSION = "cohort-etl synthetic vocabulary v1 (OMOP ids, 2026-11)"
#: First id of the OMOP local range.
LOCAL_BASE = 2_000_000_000

VALID_START = dt.date(1970, 1, 1)
VALID_END = dt.date(2099, 12, 31)


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
    valid_start_date: dt.date = VALID_START
    valid_end_date: dt.date = VALID_END
    invalid_reason: str | None = None


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


# ------------------------------------------------------------------------------------
# Concept rows
# ------------------------------------------------------------------------------------
def _c(
    cid: int,
    name: str,
    domain: str,
    vocab: str,
    cls: str,
    std: str | None,
    code: str,
    end: dt.date | None = None,
    reason: str | None = None,
    start: dt.date | None = None,
) -> ConceptRow:
    return ConceptRow(
        cid,
        name,
        domain,
        vocab,
        cls,
        std,
        code,
        start or VALID_START,
        end or VALID_END,
        reason,
    )


_D = dt.date

_CONDITIONS: list[ConceptRow] = [
    _c(0, "No matching concept", "Metadata", "None", "Undefined", None, "No matching concept"),
    _c(ACUTE_LEUKEMIA, "Acute leukemia", "Condition", "SNOMED", "Disorder", "S", "91855006"),
    _c(
        BRAIN_DISORDER,
        "Disorder of brain",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "LOCAL-BRAIN-DISORDER",
    ),
    _c(
        BONE_MARROW_TRANSPLANT_PRESENT,
        "Bone marrow transplant present",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "737300001",
    ),
    _c(LYMPHOID_LEUKEMIA, "Lymphoid leukemia", "Condition", "SNOMED", "Disorder", "S", "188725004"),
    _c(ALL, "Acute lymphoid leukemia", "Condition", "SNOMED", "Disorder", "S", "91857003"),
    _c(
        B_ALL,
        "Precursor B-cell acute lymphoblastic leukemia",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "277572006",
    ),
    _c(
        B_CELL_ALL,
        "B-cell acute lymphoblastic leukemia",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "277571004",
    ),
    _c(
        PH_POS_ALL,
        "Philadelphia chromosome-positive acute lymphoblastic leukemia",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "425688002",
    ),
    _c(
        PH_POS_B_ALL,
        "B lymphoblastic leukemia lymphoma with t(9:22) (q34;q11.2); BCR-ABL 1",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "723889003",
    ),
    _c(
        PH_NEG_B_ALL,
        "Philadelphia chromosome-negative precursor B-cell acute lymphoblastic leukemia",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "714251006",
    ),
    _c(
        COMMON_ALL,
        "Common acute lymphoblastic leukemia",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "277573001",
    ),
    _c(
        B_ALL_KMT2A,
        "B lymphoblastic leukemia lymphoma with t(v;11q23); MLL rearranged",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "838341005",
    ),
    _c(
        B_ALL_ETV6_RUNX1,
        "B lymphoblastic leukemia lymphoma with t(12;21) (p13;q22); TEL/AML1 (ETV6-RUNX1)",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "838342003",
    ),
    _c(
        B_ALL_HYPERDIPLOID,
        "B lymphoblastic leukemia lymphoma with hyperdiploidy",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "838346000",
    ),
    _c(
        T_ALL,
        "T-cell acute lymphoblastic leukemia",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "277575008",
    ),
    _c(
        ALL_REMISSION,
        "Acute lymphoid leukemia in remission",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "91856007",
    ),
    _c(
        B_ALL_REMISSION,
        "Precursor B-cell acute lymphoblastic leukemia in remission",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "425941003",
    ),
    _c(
        ALL_RELAPSE,
        "Acute lymphoid leukemia relapse",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "12301000132103",
    ),
    _c(
        ALL_REFRACTORY,
        "Refractory acute lymphoid leukemia",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "12311000132101",
    ),
    _c(
        MENINGEAL_LEUKEMIA,
        "Meningeal leukemia",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "722795004",
    ),
    _c(
        CNS_DISORDER_DUE_TO_ALL,
        "Disorder of central nervous system co-occurrent and due to acute lymphoid leukemia",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "61301000119102",
    ),
    _c(
        LYMPHOID_LEUKEMIA_REMISSION,
        "Lymphoid leukemia in remission",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "93169003",
    ),
    _c(
        LYMPHOID_LEUKEMIA_RELAPSE,
        "Lymphoid leukemia in relapse",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "122951000119108",
    ),
    _c(AML, "Acute myeloid leukemia", "Condition", "SNOMED", "Disorder", "S", "LOCAL-AML"),
    _c(CLL, "Chronic lymphocytic leukemia", "Condition", "SNOMED", "Disorder", "S", "LOCAL-CLL"),
    _c(
        DLBCL,
        "Diffuse large B-cell lymphoma",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "LOCAL-DLBCL",
    ),
    _c(
        EXTRAMEDULLARY_ALL,
        "Acute lymphoid leukemia with extramedullary involvement",
        "Condition",
        "SNOMED",
        "Disorder",
        "S",
        "LOCAL-ALL-EMD",
    ),
    _c(
        BURKITT_LEUKEMIA_DEPRECATED,
        "Acute lymphoblastic leukemia, mature B-cell (Burkitt) type (deprecated)",
        "Condition",
        "SNOMED",
        "Disorder",
        None,
        "LOCAL-ALL-L3",
        end=_D(2019, 7, 31),
        reason="D",
    ),
    _c(
        ALL_UPGRADED_OLD,
        "Acute lymphoblastic leukaemia (old concept)",
        "Condition",
        "SNOMED",
        "Disorder",
        None,
        "LOCAL-ALL-OLD",
        end=_D(2017, 1, 31),
        reason="U",
    ),
    # ICD-10-CM / ICD-9-CM source codes
    _c(
        ICD10CM_C91_0,
        "Acute lymphoblastic leukemia [ALL]",
        "Condition",
        "ICD10CM",
        "4-char nonbill code",
        None,
        "C91.0",
    ),
    _c(
        ICD10CM_C91_00,
        "Acute lymphoblastic leukemia not having achieved remission",
        "Condition",
        "ICD10CM",
        "5-char billing code",
        None,
        "C91.00",
    ),
    _c(
        ICD10CM_C91_01,
        "Acute lymphoblastic leukemia, in remission",
        "Condition",
        "ICD10CM",
        "5-char billing code",
        None,
        "C91.01",
    ),
    _c(
        ICD10CM_C91_02,
        "Acute lymphoblastic leukemia, in relapse",
        "Condition",
        "ICD10CM",
        "5-char billing code",
        None,
        "C91.02",
    ),
    _c(
        ICD9CM_204_0,
        "Acute lymphoid leukemia",
        "Condition",
        "ICD9CM",
        "4-dig nonbill code",
        None,
        "204.0",
    ),
    _c(
        ICD9CM_204_00,
        "Acute lymphoid leukemia, without mention of having achieved remission",
        "Condition",
        "ICD9CM",
        "5-dig billing code",
        None,
        "204.00",
    ),
    _c(
        ICD9CM_204_01,
        "Acute lymphoid leukemia, in remission",
        "Condition",
        "ICD9CM",
        "5-dig billing code",
        None,
        "204.01",
    ),
    _c(
        ICD9CM_204_02,
        "Acute lymphoid leukemia, in relapse",
        "Condition",
        "ICD9CM",
        "5-dig billing code",
        None,
        "204.02",
    ),
    _c(
        ICD10CM_C92_00,
        "Acute myeloblastic leukemia, not having achieved remission",
        "Condition",
        "ICD10CM",
        "5-char billing code",
        None,
        "C92.00",
    ),
    _c(
        ICD10CM_C91_10,
        "Chronic lymphocytic leukemia of B-cell type not having achieved remission",
        "Condition",
        "ICD10CM",
        "5-char billing code",
        None,
        "C91.10",
    ),
    _c(
        ICD10CM_C83_30,
        "Diffuse large B-cell lymphoma, unspecified site",
        "Condition",
        "ICD10CM",
        "5-char billing code",
        None,
        "C83.30",
    ),
    _c(
        ICD10CM_C95_00,
        "Acute leukemia of unspecified cell type not having achieved remission",
        "Condition",
        "ICD10CM",
        "5-char billing code",
        None,
        "C95.00",
    ),
    _c(
        ICD10CM_G93_89,
        "Other specified disorders of brain",
        "Condition",
        "ICD10CM",
        "5-char billing code",
        None,
        "G93.89",
    ),
    _c(
        ICD10CM_C79_49,
        "Secondary malignant neoplasm of other parts of nervous system",
        "Condition",
        "ICD10CM",
        "5-char billing code",
        None,
        "C79.49",
    ),
    _c(
        ICD10CM_C79_89,
        "Secondary malignant neoplasm of other specified sites",
        "Condition",
        "ICD10CM",
        "5-char billing code",
        None,
        "C79.89",
    ),
    # complications
    _c(
        FEBRILE_NEUTROPENIA,
        "Febrile neutropenia",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "409089005",
    ),
    _c(
        HLH,
        "Hemophagocytic lymphohistiocytosis",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "234437005",
    ),
    _c(
        CHRONIC_GVHD,
        "Chronic graft-versus-host disease",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "402356004",
    ),
    _c(
        CYTOKINE_RELEASE_SYNDROME,
        "Cytokine release syndrome",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "LOCAL-CRS",
    ),
    _c(
        ACUTE_GVHD,
        "Acute graft-versus-host disease",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "LOCAL-AGVHD",
    ),
    _c(
        ICD10CM_D89_810,
        "Acute graft-versus-host disease",
        "Condition",
        "ICD10CM",
        "6-char billing code",
        None,
        "D89.810",
    ),
    _c(
        ICD10CM_D89_832,
        "Cytokine release syndrome, grade 2",
        "Condition",
        "ICD10CM",
        "6-char billing code",
        None,
        "D89.832",
    ),
    _c(
        ICD10CM_Z94_84,
        "Stem cells transplant status",
        "Observation",
        "ICD10CM",
        "5-char billing code",
        None,
        "Z94.84",
    ),
    # background conditions
    _c(
        ESSENTIAL_HYPERTENSION,
        "Essential hypertension",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "59621000",
    ),
    _c(
        TYPE_2_DIABETES,
        "Type 2 diabetes mellitus",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "44054006",
    ),
    _c(
        HYPERLIPIDEMIA, "Hyperlipidemia", "Condition", "SNOMED", "Clinical Finding", "S", "55822004"
    ),
    _c(ASTHMA, "Asthma", "Condition", "SNOMED", "Clinical Finding", "S", "195967001"),
    _c(
        COPD,
        "Chronic obstructive lung disease",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "13645005",
    ),
    _c(
        ATRIAL_FIBRILLATION,
        "Atrial fibrillation",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "49436004",
    ),
    _c(
        MYOCARDIAL_INFARCTION,
        "Myocardial infarction",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "22298006",
    ),
    _c(
        OSTEOARTHRITIS,
        "Osteoarthritis",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "396275006",
    ),
    _c(
        ACUTE_BRONCHITIS,
        "Acute bronchitis",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "10509002",
    ),
    _c(OTITIS_MEDIA, "Otitis media", "Condition", "SNOMED", "Clinical Finding", "S", "65363002"),
    _c(
        VIRAL_SINUSITIS,
        "Viral sinusitis",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "444814009",
    ),
    _c(
        STREP_THROAT,
        "Streptococcal sore throat",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "43878008",
    ),
    _c(ANKLE_SPRAIN, "Sprain of ankle", "Condition", "SNOMED", "Clinical Finding", "S", "44465007"),
    _c(
        VIRAL_PHARYNGITIS,
        "Acute viral pharyngitis",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "195662009",
    ),
    _c(
        CHRONIC_SINUSITIS,
        "Chronic sinusitis",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "40055000",
    ),
    _c(
        DEPRESSIVE_DISORDER,
        "Depressive disorder",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "35489007",
    ),
    _c(OBESITY, "Obesity", "Condition", "SNOMED", "Clinical Finding", "S", "414916001"),
    _c(
        HYPOTHYROIDISM, "Hypothyroidism", "Condition", "SNOMED", "Clinical Finding", "S", "40930008"
    ),
    _c(
        GERD,
        "Gastroesophageal reflux disease",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "235595009",
    ),
]

#: Background ICD-10-CM source codes: (local number, code, name, maps to)
_BACKGROUND_ICD10: list[tuple[int, str, str, int]] = [
    (601, "I10", "Essential (primary) hypertension", ESSENTIAL_HYPERTENSION),
    (602, "E11.9", "Type 2 diabetes mellitus without complications", TYPE_2_DIABETES),
    (603, "E78.5", "Hyperlipidemia, unspecified", HYPERLIPIDEMIA),
    (604, "J45.909", "Unspecified asthma, uncomplicated", ASTHMA),
    (605, "J44.9", "Chronic obstructive pulmonary disease, unspecified", COPD),
    (606, "I48.91", "Unspecified atrial fibrillation", ATRIAL_FIBRILLATION),
    (607, "I21.9", "Acute myocardial infarction, unspecified", MYOCARDIAL_INFARCTION),
    (608, "M19.90", "Unspecified osteoarthritis, unspecified site", OSTEOARTHRITIS),
    (609, "J20.9", "Acute bronchitis, unspecified", ACUTE_BRONCHITIS),
    (610, "H66.90", "Otitis media, unspecified, unspecified ear", OTITIS_MEDIA),
    (611, "J01.90", "Acute sinusitis, unspecified", VIRAL_SINUSITIS),
    (612, "J02.0", "Streptococcal pharyngitis", STREP_THROAT),
    (
        613,
        "S93.409A",
        "Sprain of unspecified ligament of unspecified ankle, initial encounter",
        ANKLE_SPRAIN,
    ),
    (614, "J02.9", "Acute pharyngitis, unspecified", VIRAL_PHARYNGITIS),
    (615, "J32.9", "Chronic sinusitis, unspecified", CHRONIC_SINUSITIS),
    (616, "F32.A", "Depression, unspecified", DEPRESSIVE_DISORDER),
    (617, "E66.9", "Obesity, unspecified", OBESITY),
    (618, "E03.9", "Hypothyroidism, unspecified", HYPOTHYROIDISM),
    (619, "K21.9", "Gastro-esophageal reflux disease without esophagitis", GERD),
    (620, "D70.9", "Neutropenia, unspecified", FEBRILE_NEUTROPENIA),
]
#: ICD-9-CM background source codes
_BACKGROUND_ICD9: list[tuple[int, str, str, int]] = [
    (651, "401.9", "Unspecified essential hypertension", ESSENTIAL_HYPERTENSION),
    (652, "250.00", "Diabetes mellitus without mention of complication, type II", TYPE_2_DIABETES),
    (653, "272.4", "Other and unspecified hyperlipidemia", HYPERLIPIDEMIA),
    (654, "493.90", "Asthma, unspecified type, unspecified", ASTHMA),
]

#: Map: background standard concept -> its ICD-10-CM source concept id
BACKGROUND_ICD10_SOURCE: dict[int, int] = {
    target: _local(n) for n, _, _, target in _BACKGROUND_ICD10
}
BACKGROUND_ICD9_SOURCE: dict[int, int] = {target: _local(n) for n, _, _, target in _BACKGROUND_ICD9}
for _n, _code, _name, _ in _BACKGROUND_ICD10:
    _CONDITIONS.append(_c(_local(_n), _name, "Condition", "ICD10CM", "ICD10 code", None, _code))
for _n, _code, _name, _ in _BACKGROUND_ICD9:
    _CONDITIONS.append(_c(_local(_n), _name, "Condition", "ICD9CM", "ICD9 code", None, _code))

_ING = "Ingredient"
_DRUGS: list[ConceptRow] = [
    _c(TISAGENLECLEUCEL, "tisagenlecleucel", "Drug", "RxNorm", _ING, "S", "1986438"),
    _c(BREXUCABTAGENE, "brexucabtagene autoleucel", "Drug", "RxNorm", _ING, "S", "2387277"),
    _c(AXICABTAGENE, "axicabtagene ciloleucel", "Drug", "RxNorm", _ING, "S", "1987398"),
    _c(LISOCABTAGENE, "lisocabtagene maraleucel", "Drug", "RxNorm", _ING, "S", "2479136"),
    _c(OBECABTAGENE, "obecabtagene autoleucel", "Drug", "RxNorm", _ING, "S", "LOCAL-OBE-CEL"),
    _c(IDECABTAGENE, "idecabtagene vicleucel", "Drug", "RxNorm", _ING, "S", "2536430"),
    _c(CILTACABTAGENE, "ciltacabtagene autoleucel", "Drug", "RxNorm", _ING, "S", "2594775"),
    _c(
        KYMRIAH_600M,
        "tisagenlecleucel 600000000 CELLS Injection [Kymriah]",
        "Drug",
        "RxNorm",
        "Branded Drug",
        "S",
        "LOCAL-KYMRIAH-600",
    ),
    _c(
        KYMRIAH_250M,
        "tisagenlecleucel 250000000 CELLS Injection [Kymriah]",
        "Drug",
        "RxNorm",
        "Branded Drug",
        "S",
        "LOCAL-KYMRIAH-250",
    ),
    _c(
        YESCARTA,
        "Axicabtagene ciloleucel 200000000 CELLS Injection [Yescarta]",
        "Drug",
        "RxNorm",
        "Branded Drug",
        "S",
        "LOCAL-YESCARTA",
    ),
    _c(
        TECARTUS,
        "brexucabtagene autoleucel Injection [Tecartus]",
        "Drug",
        "RxNorm",
        "Branded Drug",
        "S",
        "LOCAL-TECARTUS",
    ),
    _c(
        BREYANZI,
        "lisocabtagene maraleucel Injection [Breyanzi]",
        "Drug",
        "RxNorm",
        "Branded Drug",
        "S",
        "LOCAL-BREYANZI",
    ),
    _c(
        AUCATZYL,
        "obecabtagene autoleucel Injection [Aucatzyl]",
        "Drug",
        "RxNorm",
        "Branded Drug",
        "S",
        "LOCAL-AUCATZYL",
    ),
    _c(
        HCPCS_Q2040,
        "Tisagenlecleucel, up to 250 million car-positive viable t cells (2018 code)",
        "Drug",
        "HCPCS",
        "HCPCS",
        None,
        "Q2040",
        end=_D(2018, 12, 31),
        reason="D",
    ),
    _c(
        HCPCS_Q2041,
        "Axicabtagene ciloleucel, up to 200 million autologous anti-cd19 car t cells",
        "Drug",
        "HCPCS",
        "HCPCS",
        None,
        "Q2041",
    ),
    _c(
        HCPCS_Q2042,
        "Tisagenlecleucel, up to 600 million car-positive viable t cells",
        "Drug",
        "HCPCS",
        "HCPCS",
        None,
        "Q2042",
    ),
    _c(
        HCPCS_Q2053,
        "Brexucabtagene autoleucel, up to 200 million autologous anti-cd19 car positive viable t cells",
        "Drug",
        "HCPCS",
        "HCPCS",
        None,
        "Q2053",
    ),
    _c(
        HCPCS_Q2054,
        "Lisocabtagene maraleucel, up to 110 million autologous anti-cd19 car-positive viable t cells",
        "Drug",
        "HCPCS",
        "HCPCS",
        None,
        "Q2054",
    ),
    _c(
        HCPCS_Q2055,
        "Idecabtagene vicleucel, up to 460 million autologous b-cell maturation antigen car-positive t cells",
        "Drug",
        "HCPCS",
        "HCPCS",
        None,
        "Q2055",
    ),
    _c(
        HCPCS_Q2056,
        "Ciltacabtagene autoleucel, up to 100 million autologous b-cell maturation antigen car-positive t cells",
        "Drug",
        "HCPCS",
        "HCPCS",
        None,
        "Q2056",
    ),
    _c(
        HCPCS_Q2058,
        "Obecabtagene autoleucel, up to 410 million cd19 car-positive viable t cells",
        "Drug",
        "HCPCS",
        "HCPCS",
        None,
        "Q2058",
    ),
    _c(
        HCPCS_J9039_BLINATUMOMAB,
        "Injection, blinatumomab, 1 microgram",
        "Drug",
        "HCPCS",
        "HCPCS",
        None,
        "J9039",
    ),
    _c(
        HCPCS_J9229_INOTUZUMAB,
        "Injection, inotuzumab ozogamicin, 0.1 mg",
        "Drug",
        "HCPCS",
        "HCPCS",
        None,
        "J9229",
    ),
]

#: (ingredient id, name, RxNorm code)
_INGREDIENTS: list[tuple[int, str, str]] = [
    (BLINATUMOMAB, "blinatumomab", "1597258"),
    (INOTUZUMAB, "inotuzumab ozogamicin", "1942950"),
    (IMATINIB, "imatinib", "282388"),
    (DASATINIB, "dasatinib", "475342"),
    (NILOTINIB, "nilotinib", "662281"),
    (PONATINIB, "ponatinib", "1364347"),
    (BOSUTINIB, "bosutinib", "1307619"),
    (VENETOCLAX, "venetoclax", "1747556"),
    (CYTARABINE, "cytarabine", "3041"),
    (FLUDARABINE, "fludarabine", "24698"),
    (CLOFARABINE, "clofarabine", "44151"),
    (METHOTREXATE, "methotrexate", "6851"),
    (VINCRISTINE, "vincristine", "11202"),
    (DAUNORUBICIN, "daunorubicin", "3109"),
    (IDARUBICIN, "idarubicin", "5650"),
    (DOXORUBICIN, "doxorubicin", "3639"),
    (MITOXANTRONE, "mitoxantrone", "7005"),
    (CYCLOPHOSPHAMIDE, "cyclophosphamide", "3002"),
    (IFOSFAMIDE, "ifosfamide", "5657"),
    (ETOPOSIDE, "etoposide", "4179"),
    (ASPARAGINASE, "asparaginase", "1156"),
    (PEGASPARGASE, "pegaspargase", "34132"),
    (NELARABINE, "nelarabine", "274771"),
    (MERCAPTOPURINE, "mercaptopurine", "103"),
    (THIOGUANINE, "thioguanine", "10485"),
    (DEXAMETHASONE, "dexamethasone", "3264"),
    (PREDNISONE, "prednisone", "8640"),
    (PREDNISOLONE, "prednisolone", "8638"),
    (METHYLPREDNISOLONE, "methylprednisolone", "6902"),
    (HYDROCORTISONE, "hydrocortisone", "5492"),
    (RITUXIMAB, "rituximab", "121191"),
    (TOCILIZUMAB, "tocilizumab", "612865"),
    (BUSULFAN, "busulfan", "1828"),
    (MELPHALAN, "melphalan", "6718"),
    (THIOTEPA, "thiotepa", "10473"),
    # background
    (METFORMIN, "metformin", "6809"),
    (LISINOPRIL, "lisinopril", "29046"),
    (ATORVASTATIN, "atorvastatin", "83367"),
    (AMLODIPINE, "amlodipine", "17767"),
    (LEVOTHYROXINE, "levothyroxine", "10582"),
    (OMEPRAZOLE, "omeprazole", "7646"),
    (ALBUTEROL, "albuterol", "435"),
    (AMOXICILLIN, "amoxicillin", "723"),
    (ACETAMINOPHEN, "acetaminophen", "161"),
    (IBUPROFEN, "ibuprofen", "5640"),
    (ASPIRIN, "aspirin", "1191"),
    (HYDROCHLOROTHIAZIDE, "hydrochlorothiazide", "5487"),
]
for _iid, _name, _code in _INGREDIENTS:
    _DRUGS.append(_c(_iid, _name, "Drug", "RxNorm", _ING, "S", _code))

#: ingredient -> its clinical drug product (local RxNorm 'Clinical Drug', descendant)
CLINICAL_DRUG: dict[int, int] = {
    iid: _local(1000 + i) for i, (iid, _, _) in enumerate(_INGREDIENTS)
}
_FORMS = {
    IMATINIB: "400 MG Oral Tablet",
    DASATINIB: "100 MG Oral Tablet",
    NILOTINIB: "200 MG Oral Capsule",
    PONATINIB: "45 MG Oral Tablet",
    BOSUTINIB: "500 MG Oral Tablet",
    VENETOCLAX: "100 MG Oral Tablet",
    MERCAPTOPURINE: "50 MG Oral Tablet",
    THIOGUANINE: "40 MG Oral Tablet",
    PREDNISONE: "20 MG Oral Tablet",
    METFORMIN: "500 MG Oral Tablet",
    LISINOPRIL: "10 MG Oral Tablet",
    ATORVASTATIN: "20 MG Oral Tablet",
    AMLODIPINE: "5 MG Oral Tablet",
    LEVOTHYROXINE: "0.05 MG Oral Tablet",
    OMEPRAZOLE: "20 MG Delayed Release Oral Capsule",
    ALBUTEROL: "0.09 MG/ACTUAT Metered Dose Inhaler",
    AMOXICILLIN: "500 MG Oral Capsule",
    ACETAMINOPHEN: "325 MG Oral Tablet",
    IBUPROFEN: "200 MG Oral Tablet",
    ASPIRIN: "81 MG Oral Tablet",
    HYDROCHLOROTHIAZIDE: "25 MG Oral Tablet",
}
for _iid, _iname, _icode in _INGREDIENTS:
    _form = _FORMS.get(_iid, "Injectable Solution")
    _DRUGS.append(
        _c(
            CLINICAL_DRUG[_iid],
            f"{_iname} {_form}",
            "Drug",
            "RxNorm",
            "Clinical Drug",
            "S",
            f"LOCAL-CD-{_iid}",
        )
    )

#: ATC classes: (id, name, code, level class, parent ATC id or None, ingredients)
ATC_L01 = _local(701)
ATC_L01XL = _local(702)
ATC_L01EA = _local(703)
ATC_L01F = _local(704)
ATC_H02AB = _local(705)
_ATC: list[tuple[int, str, str, str, int | None, tuple[int, ...]]] = [
    (ATC_L01, "ANTINEOPLASTIC AGENTS", "L01", "ATC 2nd", None, ()),
    (ATC_L01XL, "Antineoplastic cell and gene therapy", "L01XL", "ATC 4th", ATC_L01, ()),
    (ATC_L01EA, "BCR-ABL tyrosine kinase inhibitors", "L01EA", "ATC 4th", ATC_L01, ()),
    (
        ATC_L01F,
        "MONOCLONAL ANTIBODIES AND ANTIBODY DRUG CONJUGATES",
        "L01F",
        "ATC 3rd",
        ATC_L01,
        (),
    ),
    (ATC_H02AB, "Glucocorticoids", "H02AB", "ATC 4th", None, ()),
    (955215, "tisagenlecleucel; parenteral", "L01XL04", "ATC 5th", ATC_L01XL, (TISAGENLECLEUCEL,)),
    (
        954900,
        "brexucabtagene autoleucel; parenteral",
        "L01XL06",
        "ATC 5th",
        ATC_L01XL,
        (BREXUCABTAGENE,),
    ),
    (
        954882,
        "axicabtagene ciloleucel; parenteral",
        "L01XL03",
        "ATC 5th",
        ATC_L01XL,
        (AXICABTAGENE,),
    ),
    (
        955049,
        "lisocabtagene maraleucel; parenteral",
        "L01XL08",
        "ATC 5th",
        ATC_L01XL,
        (LISOCABTAGENE,),
    ),
    (
        955017,
        "idecabtagene vicleucel; parenteral",
        "L01XL07",
        "ATC 5th",
        ATC_L01XL,
        (IDECABTAGENE,),
    ),
    (
        954923,
        "ciltacabtagene autoleucel; parenteral",
        "L01XL05",
        "ATC 5th",
        ATC_L01XL,
        (CILTACABTAGENE,),
    ),
    (723217, "obecabtagene autoleucel", "L01XL12", "ATC 5th", ATC_L01XL, (OBECABTAGENE,)),
    (954897, "blinatumomab; parenteral", "L01FX07", "ATC 5th", ATC_L01F, (BLINATUMOMAB,)),
    (955022, "inotuzumab ozogamicin; parenteral", "L01FB01", "ATC 5th", ATC_L01F, (INOTUZUMAB,)),
    (948001, "imatinib; oral", "L01EA01", "ATC 5th", ATC_L01EA, (IMATINIB,)),
    (947768, "dasatinib; oral", "L01EA02", "ATC 5th", ATC_L01EA, (DASATINIB,)),
    (947864, "nilotinib; oral", "L01EA03", "ATC 5th", ATC_L01EA, (NILOTINIB,)),
    (947740, "bosutinib; oral", "L01EA04", "ATC 5th", ATC_L01EA, (BOSUTINIB,)),
    (947738, "ponatinib; oral", "L01EA05", "ATC 5th", ATC_L01EA, (PONATINIB,)),
    (1123676, "venetoclax; oral", "L01XX52", "ATC 5th", ATC_L01, (VENETOCLAX,)),
    (21601435, "cytarabine; systemic", "L01BC01", "ATC 5th", ATC_L01, (CYTARABINE,)),
    (21601431, "fludarabine; systemic", "L01BB05", "ATC 5th", ATC_L01, (FLUDARABINE,)),
    (21601432, "clofarabine; parenteral", "L01BB06", "ATC 5th", ATC_L01, (CLOFARABINE,)),
    (21601423, "methotrexate; systemic", "L01BA01", "ATC 5th", ATC_L01, (METHOTREXATE,)),
    (21601448, "vincristine; parenteral", "L01CA02", "ATC 5th", ATC_L01, (VINCRISTINE,)),
    (21603733, "daunorubicin; parenteral", "L01DB02", "ATC 5th", ATC_L01, (DAUNORUBICIN,)),
    (21601390, "cyclophosphamide; systemic", "L01AA01", "ATC 5th", ATC_L01, (CYCLOPHOSPHAMIDE,)),
    (21603785, "asparaginase; systemic", "L01XX02", "ATC 5th", ATC_L01, (ASPARAGINASE,)),
    (21603800, "pegaspargase; parenteral", "L01XX24", "ATC 5th", ATC_L01, (PEGASPARGASE,)),
    (21601433, "nelarabine; parenteral", "L01BB07", "ATC 5th", ATC_L01, (NELARABINE,)),
    (21601428, "mercaptopurine; oral", "L01BB02", "ATC 5th", ATC_L01, (MERCAPTOPURINE,)),
    (21602730, "dexamethasone; systemic", "H02AB02", "ATC 5th", ATC_H02AB, (DEXAMETHASONE,)),
    (21602735, "prednisone; oral", "H02AB07", "ATC 5th", ATC_H02AB, (PREDNISONE,)),
]
for _aid, _aname, _acode, _cls, _apar, _aings in _ATC:
    _DRUGS.append(_c(_aid, _aname, "Drug", "ATC", _cls, "C", _acode))

_PROC = "Procedure"
_PROCEDURES: list[ConceptRow] = [
    _c(
        CART_THERAPY_PROCEDURE,
        "Infusion of chimeric antigen receptor T-cells",
        _PROC,
        "SNOMED",
        _PROC,
        "S",
        "LOCAL-CART-INFUSION",
    ),
    _c(
        CPT_0537T_CART_HARVEST,
        "Chimeric antigen receptor T-cell (CAR-T) therapy; harvesting of blood-derived T lymphocytes for development of genetically modified autologous CAR-T cells, per day",
        _PROC,
        "CPT4",
        "CPT4",
        "S",
        "0537T",
    ),
    _c(
        CPT_0538T_CART_PREPARATION,
        "Chimeric antigen receptor T-cell (CAR-T) therapy; preparation of blood-derived T lymphocytes for transportation",
        _PROC,
        "CPT4",
        "CPT4",
        "S",
        "0538T",
    ),
    _c(
        CPT_0539T_CART_RECEIPT,
        "Chimeric antigen receptor T-cell (CAR-T) therapy; receipt and preparation of CAR-T cells for administration",
        _PROC,
        "CPT4",
        "CPT4",
        "S",
        "0539T",
    ),
    _c(
        CPT_0540T_CART_ADMINISTRATION,
        "Chimeric antigen receptor T-cell (CAR-T) therapy; CAR-T cell administration, autologous",
        _PROC,
        "CPT4",
        "CPT4",
        "S",
        "0540T",
    ),
    _c(
        PCS_XW033C3,
        "Introduction of Engineered Autologous Chimeric Antigen Receptor T-cell Immunotherapy into Peripheral Vein, Percutaneous Approach, New Technology Group 3",
        _PROC,
        "ICD10PCS",
        "ICD10PCS",
        "S",
        "XW033C3",
    ),
    _c(
        PCS_XW043C3,
        "Introduction of Engineered Autologous Chimeric Antigen Receptor T-cell Immunotherapy into Central Vein, Percutaneous Approach, New Technology Group 3",
        _PROC,
        "ICD10PCS",
        "ICD10PCS",
        "S",
        "XW043C3",
    ),
]
for _cid, _code, _what in [
    (
        PCS_XW033C7,
        "XW033C7",
        "Autologous Engineered Chimeric Antigen Receptor T-cell Immunotherapy into Peripheral Vein",
    ),
    (
        PCS_XW043C7,
        "XW043C7",
        "Autologous Engineered Chimeric Antigen Receptor T-cell Immunotherapy into Central Vein",
    ),
    (PCS_XW033H7, "XW033H7", "Axicabtagene Ciloleucel Immunotherapy into Peripheral Vein"),
    (PCS_XW043H7, "XW043H7", "Axicabtagene Ciloleucel Immunotherapy into Central Vein"),
    (PCS_XW033J7, "XW033J7", "Tisagenlecleucel Immunotherapy into Peripheral Vein"),
    (PCS_XW043J7, "XW043J7", "Tisagenlecleucel Immunotherapy into Central Vein"),
    (PCS_XW033K7, "XW033K7", "Idecabtagene Vicleucel Immunotherapy into Peripheral Vein"),
    (PCS_XW043K7, "XW043K7", "Idecabtagene Vicleucel Immunotherapy into Central Vein"),
    (PCS_XW033M7, "XW033M7", "Brexucabtagene Autoleucel Immunotherapy into Peripheral Vein"),
    (PCS_XW043M7, "XW043M7", "Brexucabtagene Autoleucel Immunotherapy into Central Vein"),
    (PCS_XW033N7, "XW033N7", "Lisocabtagene Maraleucel Immunotherapy into Peripheral Vein"),
    (PCS_XW043N7, "XW043N7", "Lisocabtagene Maraleucel Immunotherapy into Central Vein"),
    (PCS_XW033P7, "XW033P7", "Ciltacabtagene Autoleucel into Peripheral Vein"),
    (PCS_XW043P7, "XW043P7", "Ciltacabtagene Autoleucel into Central Vein"),
]:
    _PROCEDURES.append(
        _c(
            _cid,
            f"Introduction of {_what}, Percutaneous Approach, New Technology Group 7",
            _PROC,
            "ICD10PCS",
            "ICD10PCS",
            "S",
            _code,
            start=_D(2020, 10, 1),
        )
    )
_PROCEDURES += [
    _c(HSCT, "Hemopoietic stem cell transplant", _PROC, "SNOMED", _PROC, "S", "234336002"),
    _c(
        BONE_MARROW_TRANSPLANT,
        "Transplantation of bone marrow",
        _PROC,
        "SNOMED",
        _PROC,
        "S",
        "23719005",
    ),
    _c(PBSC_GRAFT, "Peripheral blood stem cell graft", _PROC, "SNOMED", _PROC, "S", "278257006"),
    _c(
        ALLOGENEIC_BMT,
        "Allogeneic bone marrow transplantation",
        _PROC,
        "SNOMED",
        _PROC,
        "S",
        "58390007",
    ),
    _c(
        AUTOLOGOUS_BMT, "Autologous bone marrow transplant", _PROC, "SNOMED", _PROC, "S", "58776007"
    ),
    _c(
        ALLO_PBSCT,
        "Allogeneic peripheral blood stem cell transplant",
        _PROC,
        "SNOMED",
        _PROC,
        "S",
        "425983008",
    ),
    _c(
        ALLO_BMT_RELATED,
        "Allogeneic related bone marrow transplant",
        _PROC,
        "SNOMED",
        _PROC,
        "S",
        "234328005",
    ),
    _c(
        ALLO_BMT_UNRELATED,
        "Allogeneic unrelated bone marrow transplant",
        _PROC,
        "SNOMED",
        _PROC,
        "S",
        "234329002",
    ),
    _c(
        ALLO_BMT_HAPLO,
        "Allograft of bone marrow from haploidentical donor",
        _PROC,
        "SNOMED",
        _PROC,
        "S",
        "LOCAL-HAPLO",
    ),
    _c(
        CORD_BLOOD_ALLOGRAFT,
        "Allograft of cord blood to bone marrow",
        _PROC,
        "SNOMED",
        _PROC,
        "S",
        "427615008",
    ),
    _c(
        AUTO_PBSCT,
        "Autologous peripheral blood stem cell transplant",
        _PROC,
        "SNOMED",
        _PROC,
        "S",
        "425843002",
    ),
    _c(
        AUTO_HSCT,
        "Transplantation of autologous hematopoietic stem cell",
        _PROC,
        "SNOMED",
        _PROC,
        "S",
        "709115004",
    ),
    _c(
        AUTO_PROGENITOR,
        "Transplantation of autologous progenitor cell",
        _PROC,
        "SNOMED",
        _PROC,
        "S",
        "711429001",
    ),
    _c(
        CPT_38240_ALLO,
        "Hematopoietic progenitor cell (HPC); allogeneic transplantation per donor",
        _PROC,
        "CPT4",
        "CPT4",
        "S",
        "38240",
    ),
    _c(
        CPT_38241_AUTO,
        "Hematopoietic progenitor cell (HPC); autologous transplantation",
        _PROC,
        "CPT4",
        "CPT4",
        "S",
        "38241",
    ),
    _c(CPT_38242_DLI, "Allogeneic lymphocyte infusions", _PROC, "CPT4", "CPT4", "S", "38242"),
    _c(
        ICD9PROC_41_04_AUTO,
        "Autologous hematopoietic stem cell transplant without purging",
        _PROC,
        "ICD9Proc",
        "4-dig billing code",
        "S",
        "41.04",
    ),
    _c(
        ICD9PROC_41_05_ALLO,
        "Allogeneic hematopoietic stem cell transpant without purging",
        _PROC,
        "ICD9Proc",
        "4-dig billing code",
        "S",
        "41.05",
    ),
    _c(
        ICD9PROC_41_08_ALLO,
        "Allogeneic hematopoietic stem cell transplant with purging",
        _PROC,
        "ICD9Proc",
        "4-dig billing code",
        "S",
        "41.08",
    ),
    _c(
        PCS_30243G1_ALLO_DEPRECATED,
        "Transfusion of Nonautologous Bone Marrow into Central Vein, Percutaneous Approach",
        _PROC,
        "ICD10PCS",
        "ICD10PCS",
        None,
        "30243G1",
        end=_D(2021, 9, 30),
        reason="D",
    ),
    _c(
        PCS_30233Y1_ALLO_DEPRECATED,
        "Transfusion of Nonautologous Hematopoietic Stem Cells into Peripheral Vein, Percutaneous Approach",
        _PROC,
        "ICD10PCS",
        "ICD10PCS",
        None,
        "30233Y1",
        end=_D(2021, 9, 30),
        reason="D",
    ),
    _c(
        PCS_30243Y1_ALLO_DEPRECATED,
        "Transfusion of Nonautologous Hematopoietic Stem Cells into Central Vein, Percutaneous Approach",
        _PROC,
        "ICD10PCS",
        "ICD10PCS",
        None,
        "30243Y1",
        end=_D(2021, 9, 30),
        reason="D",
    ),
    _c(
        PCS_30233Y0_AUTO,
        "Transfusion of Autologous Hematopoietic Stem Cells into Peripheral Vein, Percutaneous Approach",
        _PROC,
        "ICD10PCS",
        "ICD10PCS",
        "S",
        "30233Y0",
    ),
    _c(
        PCS_30243Y0_AUTO,
        "Transfusion of Autologous Hematopoietic Stem Cells into Central Vein, Percutaneous Approach",
        _PROC,
        "ICD10PCS",
        "ICD10PCS",
        "S",
        "30243Y0",
    ),
    _c(
        PCS_30233Y3_ALLO,
        "Transfusion of Allogeneic Unrelated Hematopoietic Stem Cells into Peripheral Vein, Percutaneous Approach",
        _PROC,
        "ICD10PCS",
        "ICD10PCS",
        "S",
        "30233Y3",
        start=_D(2021, 10, 1),
    ),
    _c(
        PCS_30243Y3_ALLO,
        "Transfusion of Allogeneic Unrelated Hematopoietic Stem Cells into Central Vein, Percutaneous Approach",
        _PROC,
        "ICD10PCS",
        "ICD10PCS",
        "S",
        "30243Y3",
        start=_D(2021, 10, 1),
    ),
    _c(
        PCS_30233Y2_ALLO,
        "Transfusion of Allogeneic Related Hematopoietic Stem Cells into Peripheral Vein, Percutaneous Approach",
        _PROC,
        "ICD10PCS",
        "ICD10PCS",
        "S",
        "30233Y2",
        start=_D(2021, 10, 1),
    ),
    _c(
        PCS_30243Y4_ALLO,
        "Transfusion of Allogeneic Unspecified Hematopoietic Stem Cells into Central Vein, Percutaneous Approach",
        _PROC,
        "ICD10PCS",
        "ICD10PCS",
        "S",
        "30243Y4",
        start=_D(2021, 10, 1),
    ),
    _c(
        PCS_30233X3_ALLO_CORD,
        "Transfusion of Allogeneic Unrelated Cord Blood Stem Cells into Peripheral Vein, Percutaneous Approach",
        _PROC,
        "ICD10PCS",
        "ICD10PCS",
        "S",
        "30233X3",
        start=_D(2021, 10, 1),
    ),
]

_LAB = "Lab Test"
_MEAS: list[ConceptRow] = [
    _c(
        CD19_CELLS_SPECIMEN,
        "CD19 cells [#/volume] in Specimen",
        "Measurement",
        "LOINC",
        _LAB,
        "S",
        "20592-2",
    ),
    _c(
        CD19_CELLS_PER_100_BLOOD,
        "CD19 cells/100 cells in Blood",
        "Measurement",
        "LOINC",
        _LAB,
        "S",
        "8117-4",
    ),
    _c(
        CD19_CELLS_BLOOD,
        "CD19 cells [#/volume] in Blood",
        "Measurement",
        "LOINC",
        _LAB,
        "S",
        "8116-6",
    ),
    _c(
        BCR_ABL1_PRESENCE,
        "t(9;22)(q34.1;q11)(ABL1,BCR) fusion transcript [Presence] in Blood or Tissue by Molecular genetics method",
        "Measurement",
        "LOINC",
        _LAB,
        "S",
        "21821-4",
    ),
    _c(
        BCR_ABL1_RATIO_IS,
        "t(9;22)(q34.1;q11)(ABL1,BCR) b2a2+b3a2 fusion transcript/control transcript (International Scale) [# Ratio] in Blood or Tissue by Molecular genetics method",
        "Measurement",
        "LOINC",
        _LAB,
        "S",
        "69380-4",
    ),
    _c(
        BCR_ABL1_FISH,
        "t(9;22)(q34.1;q11)(ABL1,BCR) fusion transcript in Blood or Tissue by FISH",
        "Measurement",
        "LOINC",
        _LAB,
        "S",
        "51867-0",
    ),
    _c(
        MRD_B_ALL_FLOW,
        "B-ALL minimal residual disease detection in Bone marrow by Flow cytometry (FC) Narrative",
        "Measurement",
        "LOINC",
        _LAB,
        "S",
        "LOCAL-MRD-B",
    ),
    _c(
        MRD_T_ALL_FLOW,
        "T-ALL minimal residual disease detection in Bone marrow by Flow cytometry (FC) Narrative",
        "Measurement",
        "LOINC",
        _LAB,
        "S",
        "LOCAL-MRD-T",
    ),
    _c(HEMOGLOBIN, "Hemoglobin [Mass/volume] in Blood", "Measurement", "LOINC", _LAB, "S", "718-7"),
    _c(
        LEUKOCYTES,
        "Leukocytes [#/volume] in Blood by Automated count",
        "Measurement",
        "LOINC",
        _LAB,
        "S",
        "6690-2",
    ),
    _c(
        PLATELETS,
        "Platelets [#/volume] in Blood by Automated count",
        "Measurement",
        "LOINC",
        _LAB,
        "S",
        "777-3",
    ),
    _c(
        CREATININE,
        "Creatinine [Mass/volume] in Serum or Plasma",
        "Measurement",
        "LOINC",
        _LAB,
        "S",
        "2160-0",
    ),
    _c(
        GLUCOSE,
        "Glucose [Mass/volume] in Serum or Plasma",
        "Measurement",
        "LOINC",
        _LAB,
        "S",
        "2345-7",
    ),
    _c(BODY_WEIGHT, "Body weight", "Measurement", "LOINC", "Clinical Observation", "S", "29463-7"),
    _c(POSITIVE, "Positive", "Meas Value", "LOINC", "Answer", "S", "LA6576-8"),
    _c(NEGATIVE, "Negative", "Meas Value", "LOINC", "Answer", "S", "LA6577-6"),
    _c(DETECTED, "Detected", "Meas Value", "LOINC", "Answer", "S", "LA11882-0"),
    _c(NOT_DETECTED, "Not detected", "Meas Value", "LOINC", "Answer", "S", "LA11883-8"),
    _c(UNIT_G_DL, "gram per deciliter", "Unit", "UCUM", "Unit", "S", "g/dL"),
    _c(UNIT_MG_DL, "milligram per deciliter", "Unit", "UCUM", "Unit", "S", "mg/dL"),
    _c(UNIT_THOUSAND_PER_UL, "thousand per microliter", "Unit", "UCUM", "Unit", "S", "10*3/uL"),
    _c(UNIT_KG, "kilogram", "Unit", "UCUM", "Unit", "S", "kg"),
    _c(UNIT_PERCENT, "percent", "Unit", "UCUM", "Unit", "S", "%"),
]

_META: list[ConceptRow] = [
    _c(
        CPT_99213_OFFICE_VISIT,
        "Office or other outpatient visit for the evaluation and management of an established patient, low complexity",
        "Procedure",
        "CPT4",
        "CPT4",
        "S",
        "99213",
    ),
    _c(
        CPT_36415_VENIPUNCTURE,
        "Collection of venous blood by venipuncture",
        "Procedure",
        "CPT4",
        "CPT4",
        "S",
        "36415",
    ),
    _c(
        CPT_71046_CHEST_XRAY,
        "Radiologic examination, chest; 2 views",
        "Procedure",
        "CPT4",
        "CPT4",
        "S",
        "71046",
    ),
    _c(
        CPT_93000_ECG,
        "Electrocardiogram, routine ECG with at least 12 leads; with interpretation and report",
        "Procedure",
        "CPT4",
        "CPT4",
        "S",
        "93000",
    ),
    _c(
        CPT_85025_CBC,
        "Blood count; complete (CBC), automated and automated differential WBC count",
        "Procedure",
        "CPT4",
        "CPT4",
        "S",
        "85025",
    ),
    _c(
        CPT_96413_CHEMO_INFUSION,
        "Chemotherapy administration, intravenous infusion technique; up to 1 hour, single or initial substance/drug",
        "Procedure",
        "CPT4",
        "CPT4",
        "S",
        "96413",
    ),
    _c(
        CPT_38221_BONE_MARROW_BIOPSY,
        "Diagnostic bone marrow; biopsy(ies)",
        "Procedure",
        "CPT4",
        "CPT4",
        "S",
        "38221",
    ),
    _c(
        CPT_62270_LUMBAR_PUNCTURE,
        "Spinal puncture, lumbar, diagnostic",
        "Procedure",
        "CPT4",
        "CPT4",
        "S",
        "62270",
    ),
    _c(
        NEVER_SMOKER,
        "Never smoked tobacco",
        "Observation",
        "SNOMED",
        "Clinical Finding",
        "S",
        "LOCAL-NEVER-SMOKER",
    ),
    _c(
        CURRENT_SMOKER,
        "Smokes tobacco daily",
        "Observation",
        "SNOMED",
        "Clinical Finding",
        "S",
        "LOCAL-CURRENT-SMOKER",
    ),
    _c(
        FORMER_SMOKER,
        "Ex-smoker",
        "Observation",
        "SNOMED",
        "Clinical Finding",
        "S",
        "LOCAL-FORMER-SMOKER",
    ),
    _c(MALE, "MALE", "Gender", "Gender", "Gender", "S", "M"),
    _c(FEMALE, "FEMALE", "Gender", "Gender", "Gender", "S", "F"),
    _c(AMERICAN_INDIAN, "American Indian or Alaska Native", "Race", "Race", "Race", "S", "1"),
    _c(ASIAN, "Asian", "Race", "Race", "Race", "S", "2"),
    _c(BLACK, "Black or African American", "Race", "Race", "Race", "S", "3"),
    _c(
        PACIFIC_ISLANDER,
        "Native Hawaiian or Other Pacific Islander",
        "Race",
        "Race",
        "Race",
        "S",
        "4",
    ),
    _c(WHITE, "White", "Race", "Race", "Race", "S", "5"),
    _c(HISPANIC, "Hispanic or Latino", "Ethnicity", "Ethnicity", "Ethnicity", "S", "Hispanic"),
    _c(
        NOT_HISPANIC,
        "Not Hispanic or Latino",
        "Ethnicity",
        "Ethnicity",
        "Ethnicity",
        "S",
        "Not Hispanic",
    ),
    _c(INPATIENT_VISIT, "Inpatient Visit", "Visit", "Visit", "Visit", "S", "IP"),
    _c(OUTPATIENT_VISIT, "Outpatient Visit", "Visit", "Visit", "Visit", "S", "OP"),
    _c(ER_VISIT, "Emergency Room Visit", "Visit", "Visit", "Visit", "S", "ER"),
    _c(
        ER_INPATIENT_VISIT,
        "Emergency Room and Inpatient Visit",
        "Visit",
        "Visit",
        "Visit",
        "S",
        "ERIP",
    ),
    _c(EHR, "EHR", "Type Concept", "Type Concept", "Type Concept", "S", "OMOP4976890"),
    _c(
        EHR_ADMINISTRATION,
        "EHR administration record",
        "Type Concept",
        "Type Concept",
        "Type Concept",
        "S",
        "OMOP4976891",
    ),
    _c(
        EHR_ENCOUNTER_DIAGNOSIS,
        "EHR encounter diagnosis",
        "Type Concept",
        "Type Concept",
        "Type Concept",
        "S",
        "OMOP4822127",
    ),
    _c(REGISTRY, "Registry", "Type Concept", "Type Concept", "Type Concept", "S", "OMOP4976952"),
    _c(
        STANDARD_ALGORITHM,
        "Standard algorithm",
        "Type Concept",
        "Type Concept",
        "Type Concept",
        "S",
        "OMOP4976953",
    ),
    _c(
        EHR_EPISODE_RECORD,
        "EHR episode record",
        "Type Concept",
        "Type Concept",
        "Type Concept",
        "S",
        "OMOP4976901",
    ),
    _c(
        EPISODE_FIRST_OCCURRENCE,
        "Disease First Occurrence",
        "Episode",
        "Episode",
        "Disease Episode",
        "S",
        "OMOP4822083",
    ),
    _c(
        EPISODE_RECURRENCE,
        "Disease Recurrence",
        "Episode",
        "Episode",
        "Disease Episode",
        "S",
        "OMOP4822084",
    ),
    _c(
        EPISODE_REMISSION,
        "Disease Remission",
        "Episode",
        "Episode",
        "Disease Episode",
        "S",
        "OMOP4822085",
    ),
    _c(
        EPISODE_TREATMENT_REGIMEN,
        "Treatment Regimen",
        "Episode",
        "Episode",
        "Treatment Episode",
        "S",
        "OMOP4822086",
    ),
    _c(
        EPISODE_TREATMENT_CYCLE,
        "Treatment Cycle",
        "Episode",
        "Episode",
        "Treatment Episode",
        "S",
        "OMOP4822087",
    ),
    _c(
        EPISODE_OF_CARE,
        "Episode of Care",
        "Episode",
        "Episode",
        "Episode of Care",
        "S",
        "OMOP4822088",
    ),
    _c(
        EPISODE_PROGRESSION,
        "Disease Progression",
        "Episode",
        "Episode",
        "Disease Episode",
        "S",
        "OMOP4833075",
    ),
    _c(DEATH_OBSERVATION, "Death", "Observation", "SNOMED", "Event", "S", "419620001"),
    _c(CDM_V54, "OMOP CDM Version 5.4.0", "Metadata", "CDM", "CDM", "S", "CDM v5.4.0"),
]

# ------------------------------------------------------------------------------------
# Hierarchy ('Is a' child -> parent) among standard / classification concepts
# ------------------------------------------------------------------------------------
_IS_A: list[tuple[int, int]] = [
    (LYMPHOID_LEUKEMIA, ACUTE_LEUKEMIA),  # simplification: one tree for the leukemias
    (ALL, LYMPHOID_LEUKEMIA),
    (ALL, ACUTE_LEUKEMIA),
    (B_ALL, ALL),
    (B_CELL_ALL, B_ALL),
    (PH_POS_ALL, ALL),
    (PH_POS_B_ALL, B_ALL),
    (PH_POS_B_ALL, PH_POS_ALL),
    (PH_NEG_B_ALL, B_ALL),
    (COMMON_ALL, B_ALL),
    (B_ALL_KMT2A, B_ALL),
    (B_ALL_ETV6_RUNX1, B_ALL),
    (B_ALL_HYPERDIPLOID, B_ALL),
    (T_ALL, ALL),
    (ALL_REMISSION, ALL),
    (ALL_REMISSION, LYMPHOID_LEUKEMIA_REMISSION),
    (B_ALL_REMISSION, ALL_REMISSION),
    (ALL_RELAPSE, ALL),
    (ALL_RELAPSE, LYMPHOID_LEUKEMIA_RELAPSE),
    (ALL_REFRACTORY, ALL),
    (CNS_DISORDER_DUE_TO_ALL, ALL),
    (EXTRAMEDULLARY_ALL, ALL),
    (AML, ACUTE_LEUKEMIA),
    (CYTOKINE_RELEASE_SYNDROME, CYTOKINE_RELEASE_SYNDROME),  # placeholder removed below
    (ACUTE_GVHD, ACUTE_GVHD),  # placeholder removed below
    # CAR-T drugs: ingredient > branded product; ATC 5th > ingredient; ATC 4th > 5th
    (KYMRIAH_600M, TISAGENLECLEUCEL),
    (KYMRIAH_250M, TISAGENLECLEUCEL),
    (YESCARTA, AXICABTAGENE),
    (TECARTUS, BREXUCABTAGENE),
    (BREYANZI, LISOCABTAGENE),
    (AUCATZYL, OBECABTAGENE),
    # CAR-T administration procedures under the grouper
    *[(pid, CART_THERAPY_PROCEDURE) for pid in CART_ADMINISTRATION_PROCEDURES],
    # HSCT
    (BONE_MARROW_TRANSPLANT, HSCT),
    (PBSC_GRAFT, HSCT),
    (ALLOGENEIC_BMT, HSCT),
    (AUTOLOGOUS_BMT, HSCT),
    (ALLOGENEIC_BMT, BONE_MARROW_TRANSPLANT),
    (AUTOLOGOUS_BMT, BONE_MARROW_TRANSPLANT),
    (ALLO_PBSCT, ALLOGENEIC_BMT),
    (ALLO_PBSCT, PBSC_GRAFT),
    (ALLO_BMT_RELATED, ALLOGENEIC_BMT),
    (ALLO_BMT_UNRELATED, ALLOGENEIC_BMT),
    (ALLO_BMT_HAPLO, ALLOGENEIC_BMT),
    (CORD_BLOOD_ALLOGRAFT, ALLOGENEIC_BMT),
    (CPT_38240_ALLO, ALLOGENEIC_BMT),
    (ICD9PROC_41_05_ALLO, ALLOGENEIC_BMT),
    (ICD9PROC_41_08_ALLO, ALLOGENEIC_BMT),
    (PCS_30233Y3_ALLO, ALLO_PBSCT),
    (PCS_30243Y3_ALLO, ALLO_PBSCT),
    (PCS_30233Y2_ALLO, ALLO_PBSCT),
    (PCS_30243Y4_ALLO, ALLO_PBSCT),
    (PCS_30233X3_ALLO_CORD, CORD_BLOOD_ALLOGRAFT),
    (AUTO_PBSCT, AUTOLOGOUS_BMT),
    (AUTO_PBSCT, PBSC_GRAFT),
    (AUTO_HSCT, AUTOLOGOUS_BMT),
    (AUTO_PROGENITOR, AUTOLOGOUS_BMT),
    (CPT_38241_AUTO, AUTOLOGOUS_BMT),
    (ICD9PROC_41_04_AUTO, AUTOLOGOUS_BMT),
    (PCS_30233Y0_AUTO, AUTO_PBSCT),
    (PCS_30243Y0_AUTO, AUTO_PBSCT),
]
_IS_A = [(child, parent) for child, parent in _IS_A if child != parent]
for _iid, _cd in CLINICAL_DRUG.items():
    _IS_A.append((_cd, _iid))
for _aid, _an, _ac, _acl, _aparent, _ings in _ATC:
    if _aparent is not None:
        _IS_A.append((_aid, _aparent))
    for _ing in _ings:
        _IS_A.append((_ing, _aid))

#: Source concept -> standard concept ('Maps to', valid)
_MAPS_TO: list[tuple[int, int]] = [
    (ICD10CM_C91_0, ALL),
    (ICD10CM_C91_00, ALL),
    (ICD10CM_C91_01, ALL_REMISSION),
    (ICD10CM_C91_02, ALL_RELAPSE),
    (ICD9CM_204_0, ALL),
    (ICD9CM_204_00, ALL),
    (ICD9CM_204_01, ALL_REMISSION),
    (ICD9CM_204_02, ALL_RELAPSE),
    (ICD10CM_C92_00, AML),
    (ICD10CM_C91_10, CLL),
    (ICD10CM_C83_30, DLBCL),
    (ICD10CM_C95_00, ACUTE_LEUKEMIA),
    (ICD10CM_C79_49, CNS_DISORDER_DUE_TO_ALL),
    (ICD10CM_C79_89, EXTRAMEDULLARY_ALL),
    (ICD10CM_D89_810, ACUTE_GVHD),
    (ICD10CM_G93_89, BRAIN_DISORDER),
    (ICD10CM_Z94_84, BONE_MARROW_TRANSPLANT_PRESENT),
    (ICD10CM_D89_832, CYTOKINE_RELEASE_SYNDROME),
    (HCPCS_Q2040, TISAGENLECLEUCEL),
    (HCPCS_Q2041, AXICABTAGENE),
    (HCPCS_Q2042, TISAGENLECLEUCEL),
    (HCPCS_Q2053, BREXUCABTAGENE),
    (HCPCS_Q2054, LISOCABTAGENE),
    (HCPCS_Q2055, IDECABTAGENE),
    (HCPCS_Q2056, CILTACABTAGENE),
    (HCPCS_Q2058, OBECABTAGENE),
    (HCPCS_J9039_BLINATUMOMAB, BLINATUMOMAB),
    (HCPCS_J9229_INOTUZUMAB, INOTUZUMAB),
    (PCS_30243G1_ALLO_DEPRECATED, ALLOGENEIC_BMT),
    (PCS_30233Y1_ALLO_DEPRECATED, ALLO_PBSCT),
    (PCS_30243Y1_ALLO_DEPRECATED, ALLO_PBSCT),
    *[(_local(n), target) for n, _, _, target in _BACKGROUND_ICD10],
    *[(_local(n), target) for n, _, _, target in _BACKGROUND_ICD9],
]
#: 'Maps to' rows that are invalid (deprecated mapping): Circe must ignore them.
_INVALID_MAPS_TO: list[tuple[int, int]] = [(ICD10CM_C95_00, ALL)]
#: ('Concept replaced by') for upgraded concepts
_REPLACED_BY: list[tuple[int, int]] = [(ALL_UPGRADED_OLD, ALL)]
#: Deliberate stale concept_ancestor rows (ancestor, descendant, level) with an invalid
#: descendant; Circe's "valid descendants only" must drop them.
_STALE_ANCESTRY: list[tuple[int, int, int]] = [
    (ALL, BURKITT_LEUKEMIA_DEPRECATED, 1),
    (ACUTE_LEUKEMIA, BURKITT_LEUKEMIA_DEPRECATED, 2),
    (LYMPHOID_LEUKEMIA, BURKITT_LEUKEMIA_DEPRECATED, 2),
]

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

VOCABULARIES: list[tuple[str, str, str]] = [
    ("None", "OMOP Standardized Vocabularies", "OMOP generated"),
    (
        "SNOMED",
        "Systematic Nomenclature of Medicine - Clinical Terms (IHTSDO)",
        "http://www.snomed.org/",
    ),
    (
        "ICD10CM",
        "International Classification of Diseases, Tenth Revision, Clinical Modification (NCHS)",
        "https://www.cdc.gov/nchs/icd/icd-10-cm/",
    ),
    (
        "ICD9CM",
        "International Classification of Diseases, Ninth Revision, Clinical Modification (NCHS)",
        "https://www.cdc.gov/nchs/icd/icd9cm.htm",
    ),
    (
        "ICD10PCS",
        "ICD-10 Procedure Coding System (CMS)",
        "https://www.cms.gov/medicare/coding-billing/icd-10-codes",
    ),
    (
        "ICD9Proc",
        "International Classification of Diseases, Ninth Revision, Clinical Modification, Volume 3 (NCHS)",
        "https://www.cdc.gov/nchs/icd/icd9cm.htm",
    ),
    ("CPT4", "Current Procedural Terminology version 4 (AMA)", "https://www.ama-assn.org/"),
    (
        "HCPCS",
        "Healthcare Common Procedure Coding System (CMS)",
        "https://www.cms.gov/medicare/coding-billing/healthcare-common-procedure-system",
    ),
    ("RxNorm", "RxNorm (NLM)", "https://www.nlm.nih.gov/research/umls/rxnorm/"),
    ("ATC", "WHO Anatomic Therapeutic Chemical Classification", "https://www.whocc.no/"),
    (
        "LOINC",
        "Logical Observation Identifiers Names and Codes (Regenstrief Institute)",
        "https://loinc.org/",
    ),
    ("UCUM", "Unified Code for Units of Measure (Regenstrief Institute)", "https://ucum.org/"),
    ("Gender", "OMOP Gender", "OMOP generated"),
    ("Race", "Race and Ethnicity Code Set (USBC)", "OMOP generated"),
    ("Ethnicity", "OMOP Ethnicity", "OMOP generated"),
    ("Visit", "OMOP Visit", "OMOP generated"),
    ("Type Concept", "OMOP Type Concept", "OMOP generated"),
    ("Episode", "OMOP Episode", "OMOP generated"),
    ("CDM", "OMOP Common DataModel", "OMOP generated"),
    ("Domain", "OMOP Domain", "OMOP generated"),
    ("Vocabulary", "OMOP Vocabulary", "OMOP generated"),
    ("Concept Class", "OMOP Concept Class", "OMOP generated"),
    ("Relationship", "OMOP Relationship", "OMOP generated"),
]

#: (relationship_id, name, is_hierarchical, defines_ancestry, reverse)
RELATIONSHIPS: list[tuple[str, str, str, str, str]] = [
    ("Maps to", "Non-standard to Standard map (OMOP)", "0", "0", "Mapped from"),
    ("Mapped from", "Standard to Non-standard map (OMOP)", "0", "0", "Maps to"),
    ("Is a", "Is a", "1", "1", "Subsumes"),
    ("Subsumes", "Subsumes", "1", "1", "Is a"),
    ("Concept replaced by", "Concept replaced by (OMOP)", "0", "0", "Concept replaces"),
    ("Concept replaces", "Concept replaces (OMOP)", "0", "0", "Concept replaced by"),
]


def _metadata_concepts(
    base: int, kind: str, names: Iterable[tuple[str, str]]
) -> tuple[list[ConceptRow], dict[str, int]]:
    rows, ids = [], {}
    for i, (key, name) in enumerate(names):
        cid = _local(base + i)
        ids[key] = cid
        rows.append(_c(cid, name, "Metadata", kind, kind, None, key[:50]))
    return rows, ids


@lru_cache(maxsize=1)
def _all() -> tuple[tuple[ConceptRow, ...], dict[str, dict[str, int]]]:
    clinical = _CONDITIONS + _DRUGS + _PROCEDURES + _MEAS + _META
    domains = sorted({r.domain_id for r in clinical} | {"Metadata"})
    classes = sorted(
        {r.concept_class_id for r in clinical}
        | {"Domain", "Vocabulary", "Concept Class", "Relationship"}
    )
    meta_rows: list[ConceptRow] = []
    ids: dict[str, dict[str, int]] = {}
    # Append-only blocks: 9000 domains, 9100 vocabularies, 9200 relationships, 9300+
    # concept classes. Blocks are sorted by name so ids only depend on the set of names.
    for base, kind, names in (
        (9000, "Domain", [(d, d) for d in domains]),
        (9100, "Vocabulary", [(v[0], v[1]) for v in VOCABULARIES]),
        (9200, "Relationship", [(r[0], r[1]) for r in RELATIONSHIPS]),
        (9300, "Concept Class", [(c, c) for c in classes]),
    ):
        rows, got = _metadata_concepts(base, kind, names)
        meta_rows += rows
        ids[kind] = got
    concepts = tuple(clinical + meta_rows)
    seen: set[int] = set()
    for row in concepts:
        if row.concept_id in seen:
            raise AssertionError(f"duplicate concept_id {row.concept_id} in synthetic vocabulary")
        seen.add(row.concept_id)
    return concepts, ids


def concepts() -> tuple[ConceptRow, ...]:
    """All concept rows, in a fixed order."""
    return _all()[0]


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


def maps_to() -> dict[int, int]:
    """Valid 'Maps to' of every source concept (standard concepts map to themselves)."""
    out = {r.concept_id: r.concept_id for r in concepts() if r.standard_concept == "S"}
    out.update(dict(_MAPS_TO))
    return out


def _ancestry() -> list[tuple[int, int, int, int]]:
    """Transitive closure of 'Is a' over standard / classification concepts."""
    index = concept_index()
    parents: dict[int, list[int]] = defaultdict(list)
    for child, parent in _IS_A:
        for cid in (child, parent):
            row = index.get(cid)
            if row is None or row.standard_concept not in ("S", "C") or row.invalid_reason:
                raise AssertionError(f"'Is a' edge uses non-standard or unknown concept {cid}")
        parents[child].append(parent)
    rows: list[tuple[int, int, int, int]] = []
    for row in concepts():
        if row.standard_concept not in ("S", "C") or row.invalid_reason:
            continue
        # BFS upwards for the minimum, longest path by DFS with memo for the maximum
        dist_min: dict[int, int] = {row.concept_id: 0}
        queue = deque([row.concept_id])
        while queue:
            node = queue.popleft()
            for par in parents.get(node, ()):
                if par not in dist_min:
                    dist_min[par] = dist_min[node] + 1
                    queue.append(par)
        for anc, dmin in dist_min.items():
            rows.append((anc, row.concept_id, dmin, _longest(row.concept_id, anc, parents)))
    for anc, desc, level in _STALE_ANCESTRY:
        rows.append((anc, desc, level, level))
    return sorted(rows)


def _longest(node: int, target: int, parents: dict[int, list[int]]) -> int:
    if node == target:
        return 0
    best = -1
    for par in parents.get(node, ()):
        sub = _longest(par, target, parents)
        if sub >= 0:
            best = max(best, sub + 1)
    return best


_DATE = pa.date32()


def vocabulary_tables() -> dict[str, pa.Table]:
    """The seven vocabulary tables as Arrow tables with CDM column names and types.

    Returns
    -------
    dict
        ``concept``, ``concept_ancestor``, ``concept_relationship``, ``vocabulary``,
        ``domain``, ``concept_class`` and ``relationship``; ids are int64, dates date32.
    """
    rows, meta = _all()
    concept = pa.table(
        {
            "concept_id": pa.array([r.concept_id for r in rows], pa.int64()),
            "concept_name": [r.concept_name[:255] for r in rows],
            "domain_id": [r.domain_id for r in rows],
            "vocabulary_id": [r.vocabulary_id for r in rows],
            "concept_class_id": [r.concept_class_id for r in rows],
            "standard_concept": pa.array([r.standard_concept for r in rows], pa.string()),
            "concept_code": [r.concept_code for r in rows],
            "valid_start_date": pa.array([r.valid_start_date for r in rows], _DATE),
            "valid_end_date": pa.array([r.valid_end_date for r in rows], _DATE),
            "invalid_reason": pa.array([r.invalid_reason for r in rows], pa.string()),
        }
    )
    anc = _ancestry()
    concept_ancestor = pa.table(
        {
            "ancestor_concept_id": pa.array([a[0] for a in anc], pa.int64()),
            "descendant_concept_id": pa.array([a[1] for a in anc], pa.int64()),
            "min_levels_of_separation": pa.array([a[2] for a in anc], pa.int32()),
            "max_levels_of_separation": pa.array([a[3] for a in anc], pa.int32()),
        }
    )
    rel: list[tuple[int, int, str, dt.date, dt.date, str | None]] = []
    for src, dst in sorted(maps_to().items()):
        rel.append((src, dst, "Maps to", VALID_START, VALID_END, None))
        rel.append((dst, src, "Mapped from", VALID_START, VALID_END, None))
    for src, dst in _INVALID_MAPS_TO:
        end = dt.date(2019, 9, 30)
        rel.append((src, dst, "Maps to", VALID_START, end, "D"))
        rel.append((dst, src, "Mapped from", VALID_START, end, "D"))
    for src, dst in _REPLACED_BY:
        rel.append((src, dst, "Concept replaced by", VALID_START, VALID_END, None))
        rel.append((dst, src, "Concept replaces", VALID_START, VALID_END, None))
    for child, parent in sorted(set(_IS_A)):
        rel.append((child, parent, "Is a", VALID_START, VALID_END, None))
        rel.append((parent, child, "Subsumes", VALID_START, VALID_END, None))
    rel.sort(key=lambda r: (r[0], r[1], r[2]))
    concept_relationship = pa.table(
        {
            "concept_id_1": pa.array([r[0] for r in rel], pa.int64()),
            "concept_id_2": pa.array([r[1] for r in rel], pa.int64()),
            "relationship_id": [r[2] for r in rel],
            "valid_start_date": pa.array([r[3] for r in rel], _DATE),
            "valid_end_date": pa.array([r[4] for r in rel], _DATE),
            "invalid_reason": pa.array([r[5] for r in rel], pa.string()),
        }
    )
    vocabulary = pa.table(
        {
            "vocabulary_id": [v[0] for v in VOCABULARIES],
            "vocabulary_name": [v[1] for v in VOCABULARIES],
            "vocabulary_reference": [v[2] for v in VOCABULARIES],
            "vocabulary_version": [VOCABULARY_VERSION] * len(VOCABULARIES),
            "vocabulary_concept_id": pa.array(
                [meta["Vocabulary"][v[0]] for v in VOCABULARIES], pa.int64()
            ),
        }
    )
    doms = sorted(meta["Domain"])
    domain = pa.table(
        {
            "domain_id": doms,
            "domain_name": doms,
            "domain_concept_id": pa.array([meta["Domain"][d] for d in doms], pa.int64()),
        }
    )
    classes = sorted(meta["Concept Class"])
    concept_class = pa.table(
        {
            "concept_class_id": classes,
            "concept_class_name": classes,
            "concept_class_concept_id": pa.array(
                [meta["Concept Class"][c] for c in classes], pa.int64()
            ),
        }
    )
    relationship = pa.table(
        {
            "relationship_id": [r[0] for r in RELATIONSHIPS],
            "relationship_name": [r[1] for r in RELATIONSHIPS],
            "is_hierarchical": [r[2] for r in RELATIONSHIPS],
            "defines_ancestry": [r[3] for r in RELATIONSHIPS],
            "reverse_relationship_id": [r[4] for r in RELATIONSHIPS],
            "relationship_concept_id": pa.array(
                [meta["Relationship"][r[0]] for r in RELATIONSHIPS], pa.int64()
            ),
        }
    )
    return {
        "concept": concept,
        "concept_ancestor": concept_ancestor,
        "concept_class": concept_class,
        "concept_relationship": concept_relationship,
        "domain": domain,
        "relationship": relationship,
        "vocabulary": vocabulary,
    }


def descendants(concept_id: int) -> set[int]:
    """Valid standard descendants of ``concept_id`` (itself included), Circe-style."""
    index = concept_index()
    anc = _ancestry()
    return {d for a, d, _, _ in anc if a == concept_id and index[d].invalid_reason is None}
