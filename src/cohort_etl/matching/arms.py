"""Match the two arms of a study: propensity model + matching + balance in one call.

The engine (:mod:`cohort_etl.engine`) calls :func:`match_arms` on rows with a 0/1
``_treated`` column; what could not be estimated comes back as flags, bad data as an
:class:`~cohort_etl.errors.InputDataError` naming the column.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cohort_etl.errors import NotEstimable

if TYPE_CHECKING:
    from cohort_etl.studies.spec import Matching

#: the 0/1 treated-arm column the engine adds to the data
TREAT = "_treated"


@dataclass
class MatchedArms:
    """What :func:`match_arms` found: the matched rows (None when matching was not
    possible), the matching summary, the balance table, the propensity scores of every
    input row, and not-estimable flags ``(section, reason)``."""

    matched: pd.DataFrame | None
    info: dict[str, Any]
    balance: pd.DataFrame | None = None
    ps: np.ndarray | None = None
    flags: list[tuple[str, str]] = field(default_factory=list)


def match_arms(
    data: pd.DataFrame,
    covariates: list[str],
    matching: Matching,
    *,
    categorical: list[str] | None = None,
) -> MatchedArms:
    """Propensity model + matching + balance on rows with a 0/1 ``_treated`` column
    (both arms non-empty; the caller checks). Separation in the PS model or no pair
    within the caliper give ``matched=None`` and a flag; bad data (missing values)
    raise :class:`InputDataError` naming the column."""
    from cohort_etl.matching.presets import run_matching

    m = matching
    info: dict[str, Any] = {}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = run_matching(
                data,
                TREAT,
                covariates,
                preset=m.preset,
                seed=m.seed,
                propensity_overrides={
                    **m.propensity_overrides(),
                    **({"categorical": categorical} if categorical else {}),
                },
                matcher_overrides=m.matcher_overrides(),
            )
    except NotEstimable as exc:  # bad input (InputDataError) is raised, not recorded
        reason = f"propensity model / matching not estimable: {exc}"
        return MatchedArms(None, info, flags=[("matching", reason)])
    model, res = run.model, run.result
    diag = model.diagnostics_
    info.update(
        {
            "settings": run.settings,
            "caliper_absolute": res.caliper,
            "n_after": {"treated": res.n_treated_matched, "control": res.n_control_matched},
            "n_sets": int((res.match_matrix >= 0).any(axis=1).sum()),
            "reason": res.reason,
            "propensity_model": {
                "method": model.method_,
                "lambda": model.lambda_,
                "converged": model.converged_,
                "coefficients": model.coef_.to_dict(),
                "auc": diag.auc,
                "equipoise": diag.equipoise,
                "treated_share": diag.treated_share,
                "warnings": sorted({*diag.warnings, *(str(w.message) for w in caught)}),
            },
            "max_abs_smd_before": float(run.balance["smd_before"].abs().max()),
            "max_abs_smd_after": float(run.balance["smd_after"].abs().max()),
            "smd_method": "matchit" if m.preset.startswith("matchit") else "pooled",
        }
    )
    got = MatchedArms(run.matched_data, info, run.balance, np.asarray(model.ps_))
    if res.reason:
        got.matched = None
        got.flags.append(("matching", res.reason))
    return got
