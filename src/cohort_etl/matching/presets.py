"""Named matching set-ups mimicking reference tools, and a one-call matching pipeline.

``cohortmethod``
    OHDSI CohortMethod defaults: L1-regularized PS with cross-validated lambda
    (approximating Cyclops), 1:1 greedy matching on the logit PS with a caliper of 0.2 SD
    of the logit PS over everyone ("standardized logit"), deterministic closest-pair-first
    order (our reading of its greedy matcher, not checked against CohortMethod itself),
    pooled-SD SMDs.
``trinetx``
    TriNetX: unpenalized logistic PS, 1:1 greedy nearest neighbour without replacement,
    caliper 0.1 pooled SD of the PS, treated units processed in a seeded random order (the
    reproducible equivalent of TriNetX's shuffle), pooled-SD SMDs.
``matchit``
    R MatchIt ``method = "nearest"`` defaults: glm logit PS, ATT, no replacement, largest
    PS first (ties in data order), no caliper (a caliper is in SD of the PS); MatchIt's SMD
    (treated SD).
``matchit451``
    ``matchit`` plus MatchIt 4.5.1's integer-``abs()`` defect, reproducing that release's
    matches exactly (see :class:`~cohort_etl.matching.matcher.NearestNeighborMatcher`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cohort_etl.errors import SpecError
from cohort_etl.matching.balance import balance_table
from cohort_etl.matching.matcher import MatchResult, NearestNeighborMatcher
from cohort_etl.matching.propensity import PropensityModel


@dataclass(frozen=True)
class MatchingPreset:
    """Parameters of the PS model and the matcher, and the SMD convention."""

    name: str
    propensity: dict[str, Any]
    matcher: dict[str, Any]
    smd_method: str


PRESETS: dict[str, MatchingPreset] = {
    "cohortmethod": MatchingPreset(
        "cohortmethod",
        {"penalty": "l1", "n_folds": 10},
        {"ratio": 1, "caliper": 0.2, "caliper_scale": "sd_logit", "order": "closest"},
        "pooled",
    ),
    "trinetx": MatchingPreset(
        "trinetx",
        {"penalty": "none"},
        {"ratio": 1, "caliper": 0.1, "caliper_scale": "pooled_sd", "order": "random"},
        "pooled",
    ),
    "matchit": MatchingPreset(
        "matchit",
        {"penalty": "none"},
        {"ratio": 1, "caliper": None, "caliper_scale": "sd_ps", "order": "largest"},
        "matchit",
    ),
    "matchit451": MatchingPreset(
        "matchit451",
        {"penalty": "none"},
        {
            "ratio": 1,
            "caliper": None,
            "caliper_scale": "sd_ps",
            "order": "largest",
            "legacy_int_abs": True,
        },
        "matchit",
    ),
}


def get_preset(name: str) -> MatchingPreset:
    """Look a preset up by name (:class:`SpecError` if unknown)."""
    if name not in PRESETS:
        raise SpecError(f"unknown matching preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


def make_matcher(name: str, seed: int | None = None, **overrides: Any) -> NearestNeighborMatcher:
    """A :class:`NearestNeighborMatcher` configured by a preset, with overrides.

    ``seed`` is required when the resulting order is ``"random"`` (``trinetx``).
    """
    params = {**get_preset(name).matcher, **overrides}
    unknown = set(params) - set(NearestNeighborMatcher.__init__.__code__.co_varnames)
    if unknown:
        raise SpecError(f"unknown matching option(s): {sorted(unknown)}")
    if seed is not None:
        params["seed"] = seed
    return NearestNeighborMatcher(**params)


def make_propensity_model(
    name: str, covariates: list[str], seed: int = 0, **overrides: Any
) -> PropensityModel:
    """A :class:`PropensityModel` configured by a preset, with overrides."""
    params = {**get_preset(name).propensity, **overrides}
    unknown = set(params) - set(PropensityModel.__init__.__code__.co_varnames)
    if unknown:
        raise SpecError(f"unknown propensity option(s): {sorted(unknown)}")
    return PropensityModel(list(covariates), seed=seed, **params)


@dataclass
class MatchingRun:
    """Everything a matched analysis needs downstream.

    Attributes
    ----------
    model
        The fitted propensity model.
    result
        The matching result.
    balance
        :func:`balance_table` with the preset's SMD convention (``distance`` row first).
    matched_data
        The matched rows of the input with columns ``ps``, ``logit_ps``, ``set_id`` and
        ``match_weight`` added (``set_id`` is the matched set; with replacement a control
        row appears once per set it belongs to).
    preset
        Preset name.
    """

    model: PropensityModel
    result: MatchResult
    balance: pd.DataFrame
    matched_data: pd.DataFrame
    preset: str
    settings: dict[str, Any] = field(default_factory=dict)


def run_matching(
    data: pd.DataFrame,
    treatment: str,
    covariates: list[str],
    preset: str = "matchit",
    seed: int = 0,
    propensity_overrides: dict[str, Any] | None = None,
    matcher_overrides: dict[str, Any] | None = None,
) -> MatchingRun:
    """Fit the PS model, match and compute balance with one preset.

    Parameters
    ----------
    data
        One row per person.
    treatment
        0/1 treatment column.
    covariates
        PS covariates (also the balance covariates).
    preset
        A name from :data:`PRESETS`.
    seed
        Seed for CV folds and random matching order.
    propensity_overrides, matcher_overrides
        Parameters replacing the preset's.

    Returns
    -------
    MatchingRun
    """
    spec = get_preset(preset)
    model = make_propensity_model(preset, covariates, seed=seed, **(propensity_overrides or {}))
    model.fit(data, treatment)
    matcher = make_matcher(preset, seed=seed, **(matcher_overrides or {}))
    matcher.fit(model.ps_, data[treatment].to_numpy(), logit_ps=model.logit_ps_, data=data)
    res = matcher.result_
    balance = balance_table(
        data,
        treatment,
        covariates,
        res.weights,
        categorical=model.categorical,
        method="matchit" if spec.smd_method == "matchit" else "pooled",
        extra={"distance": res.distance},
    )
    frame = data.reset_index(drop=True).assign(
        ps=model.ps_, logit_ps=model.logit_ps_, match_weight=res.weights
    )
    pairs = res.pairs()
    if len(pairs):
        t_part = pairs.drop_duplicates("set_id")[["set_id", "treated_row"]].rename(
            columns={"treated_row": "row"}
        )
        c_part = pairs[["set_id", "control_row"]].rename(columns={"control_row": "row"})
        members = pd.concat([t_part, c_part], ignore_index=True).sort_values(
            ["set_id", "row"], kind="stable"
        )
        matched = frame.iloc[members["row"].to_numpy()].reset_index(drop=True)
        matched.insert(0, "set_id", members["set_id"].to_numpy())
    else:
        matched = frame.iloc[np.array([], dtype=np.int64)].assign(
            set_id=np.array([], dtype=np.int64)
        )
    return MatchingRun(model, res, balance, matched, preset, dict(res.settings))
