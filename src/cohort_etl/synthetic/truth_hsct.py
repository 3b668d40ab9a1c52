"""Counterfactual truth of the study-A comparison (allogeneic HSCT after CAR-T).

The generator's parameter ``hsct_hr_os`` is a *direct* effect: the death hazard before
relapse is multiplied by it from the HSCT date on. What an observational analysis of
overall survival can recover is a *total* effect, which also contains the effect of HSCT
on relapse (``hsct_hr_relapse``) and the high mortality after relapse. This module
computes such total effects by simulating each patient twice, with and without the
transplant, through the very same hazard functions the generator uses
(:mod:`cohort_etl.synthetic.hazards`), sharing the random numbers between the two worlds.
The estimands are defined in docs/synthetic.md ("True HSCT effects").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cohort_etl.synthetic import hazards as hz
from cohort_etl.synthetic.params import SynthParams, day

#: counterfactual patients simulated per world
N_SIMULATED = 200_000
#: administrative end of follow-up of the estimands (the study's 5-year horizon)
HORIZON_DAYS = 1826.0
#: late transplants (outside the study window) happen with this probability
P_LATE_HSCT = 0.05
#: horizons (days) of the survival and cumulative-incidence truths of the strategy contrast
STRATEGY_HORIZONS = ((1, 365.0), (5, 1826.0))


@dataclass(frozen=True)
class StrategyTruth:
    """Truth of the target-trial strategy contrast (docs/synthetic.md).

    Strategy *within grace*: every core CAR-T patient in complete remission after the
    infusion gets the allogeneic HSCT on a day drawn from the generator's transplant-timing
    distribution (inside the grace period = ``hsct_window_days``) if alive and relapse-free
    that day; non-responders are never eligible. Strategy *never*: no allogeneic HSCT.
    Population: all core CAR-T patients; time zero: the infusion.

    Attributes
    ----------
    os_hr : float
        Marginal hazard ratio of death (within grace vs never), Cox on the two
        counterfactual worlds to 5 years.
    os_hr_study_followup : float
        The same with the study's follow-up: each simulated patient censored as the
        generator censors a CAR-T patient (infusion date spread over the calendar window
        like the generator's, loss to follow-up, data cut-off), at most 5 years. The
        strategy's hazard ratio is not constant over time (no difference before the
        transplants, a growing one after), so a Cox HR depends on the follow-up; this is
        the value a Cox model on the generated data estimates.
    os_survival : dict
        ``{(years, strategy): survival}`` for years 1 and 5, strategy ``within_grace`` /
        ``never``.
    relapse_cif : dict
        Cumulative incidence of relapse (death before relapse competing), same keys.
    rfs : dict
        Relapse-free survival, same keys.
    grace_days : int
    """

    os_hr: float
    os_hr_study_followup: float
    os_survival: dict[tuple[int, str], float]
    relapse_cif: dict[tuple[int, str], float]
    rfs: dict[tuple[int, str], float]
    grace_days: int

    def as_rows(self) -> list[tuple[str, str]]:
        rows = [
            ("truth.hsct_os_hr_strategy", f"{self.os_hr:.6f}"),
            ("truth.hsct_os_hr_strategy_study_followup", f"{self.os_hr_study_followup:.6f}"),
            ("truth.hsct_strategy_grace_days", str(self.grace_days)),
        ]
        for label, table in (
            ("os_surv", self.os_survival),
            ("relapse_cif", self.relapse_cif),
            ("rfs", self.rfs),
        ):
            for years, _ in STRATEGY_HORIZONS:
                a, b = table[(years, "within_grace")], table[(years, "never")]
                rows += [
                    (f"truth.hsct_{label}_{years}y_within_grace", f"{a:.6f}"),
                    (f"truth.hsct_{label}_{years}y_never", f"{b:.6f}"),
                    (f"truth.hsct_{label}_{years}y_difference", f"{a - b:.6f}"),
                ]
        return rows


@dataclass(frozen=True)
class CoreCovariates:
    """Baseline covariates of the core CAR-T patients (age in years, burden, Ph+)."""

    age: NDArray[np.float64]
    burden: NDArray[np.float64]
    ph: NDArray[np.bool_]


@dataclass(frozen=True)
class HsctTruth:
    """True hazard ratios (overall survival, HSCT vs none) of the study-A comparison.

    Attributes
    ----------
    os_hr_itt : float
        Intention-to-transplant total effect among CAR-T responders planned for an
        allogeneic HSCT inside the window: HSCT at the planned day if still alive and
        relapse-free, versus never; time from the CAR-T infusion, 5-year horizon.
    os_hr_att : float
        The same contrast among those of them who are alive and relapse-free at the
        planned day (those who actually receive the transplant: the design's HSCT+ arm),
        i.e. the effect in the treated, free of immortal-time and response bias.
    relapse_hr_itt : float
        Cause-specific hazard ratio of relapse in the intention-to-transplant population.
    p_planned : float
        Share of core CAR-T patients in the intention-to-transplant population.
    p_transplanted : float
        Share of core CAR-T patients who receive the HSCT inside the window.
    n_simulated : int
        Simulated patients per world.
    """

    os_hr_itt: float
    os_hr_att: float
    relapse_hr_itt: float
    p_planned: float
    p_transplanted: float
    n_simulated: int
    strategy: StrategyTruth | None = None

    def as_rows(self) -> list[tuple[str, str]]:
        """``truth.*`` rows for the ``synthetic_truth.parameters`` table."""
        return [
            ("truth.hsct_os_hr_itt", f"{self.os_hr_itt:.6f}"),
            ("truth.hsct_os_hr_att", f"{self.os_hr_att:.6f}"),
            ("truth.hsct_relapse_hr_itt", f"{self.relapse_hr_itt:.6f}"),
            ("truth.hsct_p_planned", f"{self.p_planned:.6f}"),
            ("truth.hsct_p_transplanted", f"{self.p_transplanted:.6f}"),
            ("truth.hsct_n_simulated", str(self.n_simulated)),
            ("truth.hsct_horizon_days", str(int(HORIZON_DAYS))),
        ] + (self.strategy.as_rows() if self.strategy is not None else [])


def cox_hr_binary(
    time: NDArray[np.float64], event: NDArray[np.bool_], x: NDArray[np.bool_]
) -> float:
    """Cox partial-likelihood hazard ratio of a binary covariate (Breslow ties).

    Used only on simulated counterfactual data. Ties are frequent there: a patient who
    dies before the planned transplant dies on the same day in both worlds. Newton-Raphson
    on the log hazard ratio from 0; ``nan`` when no event or all events in one arm.
    """
    ev_times, inverse = np.unique(time[event], return_inverse=True)
    d = np.bincount(inverse, minlength=ev_times.size).astype(np.float64)
    d1 = np.bincount(inverse, weights=x[event].astype(np.float64), minlength=ev_times.size)
    if d.sum() == 0 or d1.sum() in (0.0, d.sum()):
        return math.nan
    # numbers at risk (time >= t) by arm at each distinct event time
    t1 = np.sort(time[x])
    t0 = np.sort(time[~x])
    n1 = (t1.size - np.searchsorted(t1, ev_times, side="left")).astype(np.float64)
    n0 = (t0.size - np.searchsorted(t0, ev_times, side="left")).astype(np.float64)
    beta = 0.0
    for _ in range(50):
        w = math.exp(beta)
        p1 = n1 * w / (n1 * w + n0)
        score = float(np.sum(d1 - d * p1))
        info = float(np.sum(d * p1 * (1 - p1)))
        step = score / info
        beta += step
        if abs(step) < 1e-12:
            break
    return math.exp(beta)


def _uniform_int(u: NDArray[np.float64], a: int, b: int) -> NDArray[np.float64]:
    return a + np.minimum((u * (b - a + 1)).astype(np.int64), b - a).astype(np.float64)


def _world(
    params: SynthParams,
    hsct_day: NDArray[np.float64],
    cov: CoreCovariates,
    responder: NDArray[np.bool_],
    draws: dict[str, NDArray[np.float64]],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(relapse day, death day) of every simulated patient given the HSCT days."""
    relapse = np.where(
        responder,
        hz.relapse_time_responder(
            params, draws["e_relapse"], cov.burden, hsct_day, params.hsct_hr_relapse
        ),
        _uniform_int(draws["u_nr"], *hz.NR_RELAPSE_DAYS),
    )
    death_pre = hz.death_time_before_relapse(
        params, draws["e_death"], cov.age, cov.burden, responder, hsct_day, params.hsct_hr_os
    )
    relapsed = death_pre > relapse
    # salvage after relapse (core patients are B-lineage)
    site = hz.choose(draws["u_site"], hz.RELAPSE_SITE_PROBS)
    cd19 = hz.choose(draws["u_cd19"], hz.CD19_STATUS_PROBS)
    salvaged = draws["u_gets"] < params.salvage.p_salvage
    probs = hz.salvage_probabilities(
        params, cd19 == hz.CD19_STATUSES.index("negative"), cov.ph, True
    )
    modality = hz.choose(draws["u_modality"], probs)
    cr_s = salvaged & (draws["u_cr"] < hz.salvage_cr_probability(params, modality, site))
    hr_post = hz.post_relapse_hr(params, salvaged, modality, cr_s)
    death_post = relapse + hz.death_time_after_relapse(params, draws["e_post"], hr_post)
    death = np.where(relapsed, death_post, death_pre)
    return np.where(relapsed, relapse, np.inf), death


def hsct_truth(params: SynthParams, covariates: CoreCovariates, n: int = N_SIMULATED) -> HsctTruth:
    """True hazard ratios of allogeneic HSCT after CAR-T, by counterfactual simulation.

    Parameters
    ----------
    params : SynthParams
        The generator's parameters (hazards, HSCT decision model, true effects).
    covariates : CoreCovariates
        Baseline covariates of the generated core CAR-T patients; the simulated
        population resamples them, so the truth refers to the generated cohort's mix.
    n : int
        Simulated patients per world.

    Returns
    -------
    HsctTruth
        Deterministic given ``params.seed`` and ``covariates``.
    """
    if covariates.age.size == 0:
        return HsctTruth(math.nan, math.nan, math.nan, math.nan, math.nan, 0)
    rng = np.random.default_rng([params.seed, 7])
    idx = rng.integers(0, covariates.age.size, n)
    cov = CoreCovariates(covariates.age[idx], covariates.burden[idx], covariates.ph[idx])
    responder = rng.random(n) < params.p_cr_after_cart
    mrd_neg = responder & (rng.random(n) < params.p_mrd_negative_given_cr)
    logit = (
        params.hsct_intercept
        + params.hsct_coef_age10 * (cov.age - 30) / 10
        + params.hsct_coef_burden * (cov.burden - 1)
        + params.hsct_coef_mrd_negative * mrd_neg
        + params.hsct_coef_ph * cov.ph
    )
    decided = responder & (rng.random(n) < 1 / (1 + np.exp(-logit)))
    late = rng.random(n) < P_LATE_HSCT
    planned_day = np.clip(
        rng.lognormal(math.log(params.hsct_median_days), 0.35, n),
        40,
        params.hsct_window_days - 5,
    )
    planned = decided & ~late
    names = ("e_relapse", "e_death", "e_post")
    draws = {k: rng.exponential(1.0, n) for k in names}
    for k in ("u_nr", "u_site", "u_cd19", "u_gets", "u_modality", "u_cr"):
        draws[k] = rng.random(n)
    never = np.full(n, np.inf)
    rel0, death0 = _world(params, never, cov, responder, draws)
    rel1, death1 = _world(params, np.where(planned, planned_day, np.inf), cov, responder, draws)
    transplanted = planned & (np.minimum(rel0, death0) >= planned_day)

    def hr(t0: NDArray[np.float64], t1: NDArray[np.float64], who: NDArray[np.bool_]) -> float:
        time = np.concatenate([t0[who], t1[who]])
        arm = np.concatenate([np.zeros(who.sum(), bool), np.ones(who.sum(), bool)])
        event = time <= HORIZON_DAYS
        return cox_hr_binary(np.minimum(time, HORIZON_DAYS), event, arm)

    # relapse: death before relapse censors (cause-specific hazard)
    strategy = _strategy_truth(
        params, cov, responder, planned_day, draws, rel0, death0, hr_of=cox_hr_binary
    )
    r0 = np.where(rel0 <= death0, rel0, np.inf)
    r1 = np.where(rel1 <= death1, rel1, np.inf)
    stop0 = np.minimum(np.minimum(rel0, death0), HORIZON_DAYS)
    stop1 = np.minimum(np.minimum(rel1, death1), HORIZON_DAYS)
    who = planned
    time = np.concatenate([stop0[who], stop1[who]])
    event = np.concatenate([r0[who] <= HORIZON_DAYS, r1[who] <= HORIZON_DAYS])
    arm = np.concatenate([np.zeros(who.sum(), bool), np.ones(who.sum(), bool)])
    return HsctTruth(
        os_hr_itt=hr(death0, death1, planned),
        os_hr_att=hr(death0, death1, transplanted),
        relapse_hr_itt=cox_hr_binary(time, event, arm),
        p_planned=float(planned.mean()),
        p_transplanted=float(transplanted.mean()),
        n_simulated=n,
        strategy=strategy,
    )


def _strategy_truth(
    params: SynthParams,
    cov: CoreCovariates,
    responder: NDArray[np.bool_],
    planned_day: NDArray[np.float64],
    draws: dict[str, NDArray[np.float64]],
    rel0: NDArray[np.float64],
    death0: NDArray[np.float64],
    hr_of: Any,
) -> StrategyTruth:
    """The strategy contrast of :class:`StrategyTruth` on the simulated population.

    ``planned_day`` is the generator's transplant-timing draw (lognormal around
    ``hsct_median_days``, clipped to [40, window - 5]); the *never* world (``rel0``,
    ``death0``) shares every random number with the *within grace* world.
    """
    rel1, death1 = _world(params, np.where(responder, planned_day, np.inf), cov, responder, draws)
    n = death0.size
    time = np.minimum(np.concatenate([death0, death1]), HORIZON_DAYS)
    event = np.concatenate([death0, death1]) <= HORIZON_DAYS
    arm = np.concatenate([np.zeros(n, bool), np.ones(n, bool)])
    # the study's follow-up (as natural_history.Simulator.patient draws it for CAR-T
    # patients), from its own stream so the other truths do not change
    frng = np.random.default_rng([params.seed, 8])
    lo = day(params.first_cart_date)
    cutoff = day(params.cutoff_date)
    entry = lo + ((cutoff - 45 - lo) * np.sqrt(frng.random(n))).astype(np.int64)
    ltfu = frng.exponential(365.25 / params.loss_to_followup_rate, n)
    censor = np.minimum(np.minimum(cutoff - entry, 30 + ltfu), HORIZON_DAYS)
    both = np.concatenate([death0, death1])
    cens2 = np.concatenate([censor, censor])
    hr_followup = hr_of(np.minimum(both, cens2), both <= cens2, arm)
    surv: dict[tuple[int, str], float] = {}
    cif: dict[tuple[int, str], float] = {}
    rfs: dict[tuple[int, str], float] = {}
    for years, h in STRATEGY_HORIZONS:
        for name, rel, death in (("within_grace", rel1, death1), ("never", rel0, death0)):
            surv[(years, name)] = float(np.mean(death > h))
            cif[(years, name)] = float(np.mean((rel <= h) & (rel <= death)))
            rfs[(years, name)] = float(np.mean(np.minimum(rel, death) > h))
    return StrategyTruth(
        os_hr=hr_of(time, event, arm),
        os_hr_study_followup=hr_followup,
        os_survival=surv,
        relapse_cif=cif,
        rfs=rfs,
        grace_days=int(params.hsct_window_days),
    )


def covariates_of(
    age: Sequence[float], burden: Sequence[int], ph: Sequence[bool]
) -> CoreCovariates:
    """:class:`CoreCovariates` from per-patient lists."""
    return CoreCovariates(
        np.asarray(age, dtype=np.float64),
        np.asarray(burden, dtype=np.float64),
        np.asarray(ph, dtype=bool),
    )
