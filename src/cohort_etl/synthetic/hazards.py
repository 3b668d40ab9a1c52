"""The hazard model after CAR-T, written once and used twice.

:meth:`cohort_etl.synthetic.natural_history.Simulator.after_cart` calls these functions
for one patient at a time (arrays of length one) to write the demo CDM;
:func:`cohort_etl.synthetic.truth_hsct.hsct_truth` calls them on large arrays to compute
the counterfactual truths of the HSCT comparison. All times are days since the CAR-T
infusion; every event time is drawn by inverse transform from an Exp(1) ``target`` so two
counterfactual worlds can share their random numbers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cohort_etl.synthetic.params import SynthParams

FloatArray = NDArray[np.float64]

#: relapse site after CAR-T and its probabilities
RELAPSE_SITES = ("marrow", "cns", "emd", "unknown")
RELAPSE_SITE_PROBS = [0.72, 0.12, 0.09, 0.07]
#: CD19 status at relapse and its probabilities
CD19_STATUSES = ("positive", "negative", "unknown")
CD19_STATUS_PROBS = [0.69, 0.22, 0.09]
SALVAGE_MODALITIES = ("reinfusion", "mab", "chemo_tki", "chemo")
#: relapse of non-responders (progression) is dated uniformly in these days
NR_RELAPSE_DAYS = (28, 45)
#: first day a responder can relapse; relapse hazard falls to 30% after two years
RELAPSE_FROM_DAY = 28.0
LATE_DAY = 730.0
LATE_RELAPSE_FACTOR = 0.3
RELAPSE_BURDEN_COEF = 0.2
#: death hazard multiplier after relapse without salvage
NO_SALVAGE_HR_OS = 1.5
#: hazard ratios apply only to this HSCT kind
EFFECTIVE_HSCT = "allogeneic"


def _broadcast(*args: ArrayLike) -> list[FloatArray]:
    """Float arrays of one common shape (at least one dimension)."""
    arrays = [np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in args]
    return [np.array(x) for x in np.broadcast_arrays(*arrays)]


def piecewise_time(target: ArrayLike, starts: ArrayLike, rates: ArrayLike) -> FloatArray:
    """Vectorised :func:`~cohort_etl.synthetic.natural_history.draw_time`.

    Parameters
    ----------
    target : array_like, shape (n,)
        Exp(1) draws (cumulative hazard to reach).
    starts, rates : array_like, shape (n, k)
        Segment start days (non-decreasing along each row; ``inf`` pads unused segments)
        and the rate per day from each start until the next.

    Returns
    -------
    ndarray, shape (n,)
        First time the cumulative hazard reaches ``target`` (``inf`` if never). The
        arithmetic is the same, operation for operation, as the scalar version.
    """
    tgt = np.asarray(target, dtype=np.float64)
    s = np.asarray(starts, dtype=np.float64)
    r = np.asarray(rates, dtype=np.float64)
    out = np.full(tgt.shape, np.inf)
    done = np.zeros(tgt.shape, dtype=bool)
    cum = np.zeros(tgt.shape)
    k = s.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(k):
            end = s[:, i + 1] if i + 1 < k else np.full(tgt.shape, np.inf)
            ri = r[:, i]
            live = ~done & (ri > 0) & np.isfinite(s[:, i])
            inc = ri * (end - s[:, i])
            hit = live & (cum + inc >= tgt)
            out[hit] = (s[:, i] + (tgt - cum) / ri)[hit]
            done |= hit
            cum = np.where(live & ~hit, cum + inc, cum)
    return out


def relapse_time_responder(
    params: SynthParams, target: ArrayLike, burden: ArrayLike, hsct_day: ArrayLike, hr: ArrayLike
) -> FloatArray:
    """Relapse day of CAR-T responders.

    ``relapse_rate`` per year times ``exp(0.2 (burden - 1))`` from day 28, times ``hr``
    (``hsct_hr_relapse`` for an allogeneic HSCT, 1 otherwise) from ``hsct_day`` on (``inf``:
    no HSCT), times 0.3 from day 730. ``hsct_day`` must lie in (28, 730) when finite.
    """
    tgt, b, h, hr_ = _broadcast(target, burden, hsct_day, hr)
    r0 = params.relapse_rate / 365.25 * np.exp(RELAPSE_BURDEN_COEF * (b - 1))
    fin = np.isfinite(h)
    late = r0 * LATE_RELAPSE_FACTOR
    starts = np.stack(
        [np.full_like(b, RELAPSE_FROM_DAY), np.where(fin, h, LATE_DAY), np.where(fin, LATE_DAY, h)],
        axis=1,
    )
    rates = np.stack(
        [r0, np.where(fin, r0 * hr_, late), np.where(fin, late * hr_, 0.0)],
        axis=1,
    )
    return piecewise_time(tgt, starts, rates)


def death_time_before_relapse(
    params: SynthParams,
    target: ArrayLike,
    age: ArrayLike,
    burden: ArrayLike,
    responder: ArrayLike,
    hsct_day: ArrayLike,
    hr: ArrayLike,
) -> FloatArray:
    """Day of death in the absence of relapse.

    ``death_rate`` (``nr_death_rate`` for non-responders) per year times
    ``exp(death_coef_age10 (age - 30) / 10 + death_coef_burden (burden - 1))``, times ``hr``
    (``hsct_hr_os`` for an allogeneic HSCT, 1 otherwise) from ``hsct_day`` on.
    """
    tgt, a, b, h, hr_, resp_f = _broadcast(target, age, burden, hsct_day, hr, responder)
    resp = resp_f > 0
    lp = params.death_coef_age10 * (a - 30) / 10 + params.death_coef_burden * (b - 1)
    d0 = np.where(resp, params.death_rate, params.nr_death_rate) / 365.25 * np.exp(lp)
    starts = np.stack([np.zeros_like(a), h], axis=1)
    rates = np.stack([d0, np.where(np.isfinite(h), d0 * hr_, 0.0)], axis=1)
    return piecewise_time(tgt, starts, rates)


def salvage_probabilities(
    params: SynthParams, cd19_negative: ArrayLike, ph: ArrayLike, b_lineage: ArrayLike
) -> FloatArray:
    """Choice probabilities of the salvage modalities (columns as ``SALVAGE_MODALITIES``)."""
    neg = np.atleast_1d(np.asarray(cd19_negative, dtype=bool))
    ph_ = np.asarray(ph, dtype=bool) * np.ones(neg.shape, dtype=bool)
    b = np.asarray(b_lineage, dtype=bool) * np.ones(neg.shape, dtype=bool)
    s = params.salvage
    probs = np.stack(
        [
            np.where(neg | ~b, 0.0, s.p_reinfusion),
            np.where(b, s.p_mab, 0.0),
            np.where(ph_, s.p_chemo_tki, 0.0),
            np.full(neg.shape, s.p_chemo),
        ],
        axis=1,
    )
    return probs / probs.sum(axis=1, keepdims=True)


def salvage_cr_probability(params: SynthParams, modality: ArrayLike, site: ArrayLike) -> FloatArray:
    """Complete-remission probability of a salvage (``modality`` index, ``site`` index)."""
    s = params.salvage
    base = np.array([s.cr_reinfusion, s.cr_mab, s.cr_chemo_tki, s.cr_chemo])
    factor = np.array([1.0, s.cr_factor_cns, s.cr_factor_emd, 1.0])
    pcr = base[np.asarray(modality)] * factor[np.asarray(site)]
    return np.minimum(pcr, 0.97)


def post_relapse_hr(
    params: SynthParams, salvaged: ArrayLike, modality: ArrayLike, cr: ArrayLike
) -> FloatArray:
    """Death hazard multiplier after relapse.

    No salvage: 1.5; chemotherapy alone: ``chemo_alone_hr_os``; complete remission after
    salvage: times ``salvage_cr_hr_os``.
    """
    sal = np.atleast_1d(np.asarray(salvaged, dtype=bool))
    chemo = np.asarray(modality) == SALVAGE_MODALITIES.index("chemo")
    cr_ = np.asarray(cr, dtype=bool)
    treated = np.where(chemo, params.chemo_alone_hr_os, 1.0) * np.where(
        cr_, params.salvage_cr_hr_os, 1.0
    )
    return np.where(sal, treated, NO_SALVAGE_HR_OS)


def death_time_after_relapse(params: SynthParams, target: ArrayLike, hr: ArrayLike) -> FloatArray:
    """Days from relapse to death: ``post_relapse_death_rate`` per year times ``hr``."""
    h = np.atleast_1d(np.asarray(hr, dtype=np.float64))
    rate = params.post_relapse_death_rate / 365.25 * h
    return piecewise_time(target, np.zeros((h.size, 1)), rate[:, None])


def choose(u: ArrayLike, probs: ArrayLike) -> NDArray[np.int64]:
    """Index chosen by uniform ``u`` from (row-wise) probabilities, as ``Simulator.pick``."""
    x = np.atleast_1d(np.asarray(u, dtype=np.float64))
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1:
        p = np.broadcast_to(p / p.sum(), (x.size, p.size))
    acc = np.zeros(x.size)
    out = np.full(x.size, p.shape[1] - 1, dtype=np.int64)
    found = np.zeros(x.size, dtype=bool)
    for j in range(p.shape[1]):
        acc = acc + p[:, j]
        hit = ~found & (x < acc)
        out[hit] = j
        found |= hit
    return out
