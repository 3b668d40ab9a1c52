"""Negative- and positive-control outcomes with known true effects of allogeneic HSCT.

Negative controls are conditions with no plausible causal link to a transplant (true
hazard ratio 1). Positive controls are built on negative controls the way OHDSI
MethodEvaluation's ``synthesizePositiveControls`` does: extra outcomes are injected into
exposed person-time of the negative control's patients until the hazard there is the
target ratio times the original one, so a positive control keeps the negative control's
events (and its systematic error) and adds a known effect.

Hazards (per person, from time zero = the CAR-T infusion):

- negative control ``k``: ``lambda_k`` before exposure, ``lambda_k exp(b_k)`` after it;
- positive control on ``k`` with target HR ``theta``: the first of the negative control's
  event and an injected event with hazard ``lambda_k (theta - 1) exp(b_k)`` after exposure,
  i.e. ``lambda_k theta exp(b_k)`` in exposed time.

``b_k`` is the injected systematic error of outcome ``k``: 0 by default; with
``bias_sd > 0`` or ``bias_mean != 0`` it is drawn once per negative control from
``N(bias_mean, bias_sd^2)`` (the switch that makes a known systematic error, e.g. detection
bias from the closer follow-up of transplanted patients). True effects stay 1 and
``theta``: the bias is the error an estimate should show and calibration should remove.

Every draw comes from its own random stream ``default_rng([seed, 7])`` (biases first, then
one unit exponential per person and outcome in the order of :data:`CONTROL_OUTCOMES`), so
adding controls never changes any other row of the synthetic CDM.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from cohort_etl.errors import InputDataError
from cohort_etl.synthetic.vocabulary import EHR_ENCOUNTER_DIAGNOSIS

FloatArray = NDArray[np.float64]
DAYS_PER_YEAR = 365.25
LOCAL_BASE = 2_000_000_000
#: local-range block of the control concepts (see docs/synthetic.md)
CONTROL_LOCAL_START = 5_000


@dataclass(frozen=True)
class ControlOutcome:
    """One control outcome: a condition concept with a known true effect of HSCT."""

    key: str
    name: str
    concept_id: int
    concept_code: str
    kind: Literal["negative", "positive"]
    true_hr: float
    rate_per_year: float
    #: key of the negative control a positive control is built on
    base: str | None = None


def _local(n: int) -> int:
    return LOCAL_BASE + CONTROL_LOCAL_START + n


# (key, name, rate per person-year); ids 2_000_005_001.. in this order, never renumber.
_NEGATIVE: tuple[tuple[str, str, float], ...] = (
    ("ingrowing_nail", "Ingrowing nail", 0.06),
    ("myopia", "Myopia", 0.05),
    ("presbyopia", "Presbyopia", 0.04),
    ("astigmatism", "Astigmatism", 0.04),
    ("cerumen_impaction", "Impacted cerumen", 0.08),
    ("dental_caries", "Dental caries", 0.10),
    ("seborrheic_keratosis", "Seborrheic keratosis", 0.05),
    ("acne_vulgaris", "Acne vulgaris", 0.06),
    ("tinea_pedis", "Tinea pedis", 0.07),
    ("onychomycosis", "Onychomycosis", 0.05),
    ("plantar_fasciitis", "Plantar fasciitis", 0.05),
    ("hallux_valgus", "Hallux valgus", 0.03),
    ("ganglion_cyst", "Ganglion cyst", 0.03),
    ("trigger_finger", "Trigger finger", 0.03),
    ("carpal_tunnel", "Carpal tunnel syndrome", 0.04),
    ("ankle_sprain", "Sprain of ankle", 0.06),
    ("lumbar_strain", "Strain of lumbar region", 0.07),
    ("epidermoid_cyst", "Epidermoid cyst of skin", 0.04),
    ("benign_nevus", "Benign melanocytic nevus", 0.05),
    ("allergic_rhinitis", "Allergic rhinitis", 0.08),
    ("allergic_conjunctivitis", "Allergic conjunctivitis", 0.05),
    ("otitis_externa", "Otitis externa", 0.05),
    ("hemorrhoids", "Hemorrhoids", 0.06),
    ("varicose_veins", "Varicose veins of lower extremity", 0.03),
    ("knee_osteoarthritis", "Osteoarthritis of knee", 0.04),
    ("rotator_cuff", "Rotator cuff syndrome", 0.03),
    ("bursitis", "Bursitis", 0.04),
    ("chalazion", "Chalazion", 0.03),
    ("pityriasis_versicolor", "Pityriasis versicolor", 0.03),
    ("lateral_epicondylitis", "Lateral epicondylitis", 0.03),
)
#: ingrowing nail has a real standard concept (OHDSI's classic negative control)
_REAL_IDS = {"ingrowing_nail": (139099, "400097005")}
#: positive controls: (base negative control, target HR); MethodEvaluation uses 1.5, 2, 4
_POSITIVE: tuple[tuple[str, float], ...] = (
    ("dental_caries", 1.5),
    ("dental_caries", 2.0),
    ("dental_caries", 4.0),
    ("allergic_rhinitis", 1.5),
    ("allergic_rhinitis", 2.0),
    ("allergic_rhinitis", 4.0),
)


def _build() -> tuple[ControlOutcome, ...]:
    out = []
    for i, (key, name, rate) in enumerate(_NEGATIVE, start=1):
        cid, code = _REAL_IDS.get(key, (_local(i), f"LOCAL-NC-{i:02d}"))
        out.append(ControlOutcome(f"nc_{key}", name, cid, code, "negative", 1.0, rate))
    rates = {f"nc_{k}": r for k, _, r in _NEGATIVE}
    names = {f"nc_{k}": n for k, n, _ in _NEGATIVE}
    for j, (base, hr) in enumerate(_POSITIVE, start=1):
        base_key = f"nc_{base}"
        out.append(
            ControlOutcome(
                key=f"pc_{base}_hr{hr:g}".replace(".", "_"),
                name=f"Synthetic positive control: {names[base_key]}, true HR {hr:g}",
                concept_id=_local(100 + j),
                concept_code=f"LOCAL-PC-{j:02d}",
                kind="positive",
                true_hr=hr,
                rate_per_year=rates[base_key],
                base=base_key,
            )
        )
    return tuple(out)


#: every control outcome, negative controls first
CONTROL_OUTCOMES: tuple[ControlOutcome, ...] = _build()
NEGATIVE_CONTROLS = tuple(c for c in CONTROL_OUTCOMES if c.kind == "negative")
POSITIVE_CONTROLS = tuple(c for c in CONTROL_OUTCOMES if c.kind == "positive")


def draw_biases(
    rng: np.random.Generator,
    bias_mean: float,
    bias_sd: float,
    outcomes: Sequence[ControlOutcome] = CONTROL_OUTCOMES,
) -> dict[str, float]:
    """Injected log-scale systematic error per outcome (positive controls inherit their
    negative control's). Draws ``len(negative controls)`` normals, even when sd is 0."""
    if bias_sd < 0 or not math.isfinite(bias_mean):
        raise InputDataError(f"control bias: need sd >= 0 and a finite mean, got {bias_sd!r}")
    negatives = [c for c in outcomes if c.kind == "negative"]
    z = rng.standard_normal(len(negatives))
    out = {c.key: float(bias_mean + bias_sd * zi) for c, zi in zip(negatives, z, strict=True)}
    for c in outcomes:
        if c.kind == "positive":
            assert c.base is not None
            out[c.key] = out[c.base]
    return out


def _first_time(
    unit: FloatArray, rate_before: float, rate_after: FloatArray | float, exposure: FloatArray
) -> FloatArray:
    """Solve H(t) = unit for a piecewise-constant hazard switching at ``exposure``."""
    h_at_switch = rate_before * exposure
    with np.errstate(invalid="ignore", divide="ignore"):
        before = unit / rate_before if rate_before > 0 else np.full_like(unit, np.inf)
        after = exposure + (unit - h_at_switch) / rate_after
    return np.where(unit <= h_at_switch, before, after)


def draw_control_events(
    rng: np.random.Generator,
    exposure_day: FloatArray,
    follow_up_days: FloatArray,
    biases: dict[str, float],
    outcomes: Sequence[ControlOutcome] = CONTROL_OUTCOMES,
) -> dict[str, FloatArray]:
    """Day (from time zero) of each person's first event of each control outcome.

    Parameters
    ----------
    rng
        The controls' own random stream.
    exposure_day
        Day the exposure (allogeneic HSCT) starts; ``inf`` for persons never exposed.
    follow_up_days
        Days of follow-up; later events are not observed (NaN).
    biases
        Injected log-scale systematic error per outcome key (:func:`draw_biases`).

    Returns
    -------
    dict
        Outcome key -> float array, NaN where no event is observed.
    """
    e = np.asarray(exposure_day, dtype=float)
    f = np.asarray(follow_up_days, dtype=float)
    if e.shape != f.shape or (f < 0).any() or (e < 0).any():
        raise InputDataError("control events: exposure and follow-up days must be >= 0")
    out: dict[str, FloatArray] = {}
    raw: dict[str, FloatArray] = {}
    for c in outcomes:
        lam = c.rate_per_year / DAYS_PER_YEAR
        u = rng.standard_exponential(e.size)
        b = math.exp(biases.get(c.key, 0.0))
        if c.kind == "negative":
            t = _first_time(u, lam, lam * b, e)
        else:
            assert c.base is not None and c.true_hr > 1
            extra = e + u / (lam * (c.true_hr - 1.0) * b)
            t = np.minimum(raw[c.base], extra)
        raw[c.key] = t
        out[c.key] = np.where(t <= f, t, np.nan)
    return out


@dataclass(frozen=True)
class ControlRows:
    """Condition rows of the control outcomes and their truth (``parameters`` rows)."""

    table: pa.Table
    parameters: list[tuple[str, str]]


def add_control_conditions(
    seed: int,
    bias_mean: float,
    bias_sd: float,
    truth: pa.Table,
    conditions: pa.Table,
) -> ControlRows:
    """Append the control outcomes' first occurrences to the subset's condition rows.

    The population is the study-A population of the generator (categories ``core`` and
    ``auto_hsct``); time zero is the CAR-T date, exposure starts at an allogeneic HSCT
    (at any time after CAR-T), follow-up ends at ``end_of_followup``. Row ids continue
    after the largest existing ``condition_occurrence_id`` so no existing row changes.
    """
    cols = truth.select(["person_id", "category", "car_t_date", "hsct_date", "hsct_type",
                         "end_of_followup"]).to_pydict()  # fmt: skip
    keep = [
        i
        for i, cat in enumerate(cols["category"])
        if cat in ("core", "auto_hsct") and cols["car_t_date"][i] is not None
    ]
    epoch = dt.date(1970, 1, 1)

    def days(d: dt.date) -> int:
        return (d - epoch).days

    person = np.array([cols["person_id"][i] for i in keep], dtype=np.int64)
    zero = np.array([days(cols["car_t_date"][i]) for i in keep], dtype=np.int64)
    end = np.array([days(cols["end_of_followup"][i]) for i in keep], dtype=np.int64)
    exposure = np.array(
        [
            days(cols["hsct_date"][i]) - days(cols["car_t_date"][i])
            if cols["hsct_type"][i] == "allogeneic" and cols["hsct_date"][i] is not None
            else np.inf
            for i in keep
        ],
        dtype=float,
    )
    rng = np.random.default_rng([seed, 7])
    biases = draw_biases(rng, bias_mean, bias_sd)
    events = draw_control_events(rng, np.maximum(exposure, 0.0), (end - zero).astype(float),
                                 biases)  # fmt: skip
    rows: list[tuple[int, int, int, str]] = []
    params: list[tuple[str, str]] = []
    for c in CONTROL_OUTCOMES:
        t = events[c.key]
        hit = ~np.isnan(t)
        day_of = zero[hit] + np.maximum(np.ceil(t[hit]), 1).astype(np.int64)
        rows += [
            (int(p), int(d), c.concept_id, c.concept_code)
            for p, d in zip(person[hit], day_of, strict=True)
        ]
        params += [
            (f"control.{c.key}.concept_id", str(c.concept_id)),
            (f"control.{c.key}.kind", c.kind),
            (f"control.{c.key}.true_hr", f"{c.true_hr:g}"),
            (f"control.{c.key}.log_bias", repr(biases[c.key])),
            (f"control.{c.key}.persons_with_event", str(int(hit.sum()))),
        ]
    rows.sort()
    ids = conditions.column("condition_occurrence_id").to_numpy()
    first = int(ids.max()) + 1 if len(ids) else 1
    n = len(rows)
    new = {
        "condition_occurrence_id": np.arange(first, first + n, dtype=np.int64),
        "person_id": np.array([r[0] for r in rows], dtype=np.int64),
        "condition_concept_id": np.array([r[2] for r in rows], dtype=np.int64),
        "condition_start_date": np.array([r[1] for r in rows], dtype=np.int64),
        "condition_type_concept_id": np.full(n, EHR_ENCOUNTER_DIAGNOSIS, dtype=np.int64),
        "condition_source_value": [r[3] for r in rows],
        "condition_source_concept_id": np.array([r[2] for r in rows], dtype=np.int64),
    }
    arrays = []
    for fld in conditions.schema:
        if fld.name in new:
            value = new[fld.name]
            if pa.types.is_date32(fld.type):
                arrays.append(
                    pa.array(np.asarray(value, dtype=np.int32), pa.int32()).cast(fld.type)
                )
            else:
                arrays.append(pa.array(value).cast(fld.type))
        else:
            arrays.append(pa.nulls(n, fld.type))
    extra = pa.Table.from_arrays(arrays, schema=conditions.schema)
    return ControlRows(pa.concat_tables([conditions, extra]), params)
