"""Propensity scores, greedy nearest-neighbour matching and covariate balance.

- :class:`PropensityModel` (``propensity``): logistic PS, unpenalized or L1 with CV.
- :class:`NearestNeighborMatcher` (``matcher``): greedy 1:k matching with calipers.
- :func:`balance_table` (``balance``): SMDs and variance ratios before / after.
- :func:`run_matching` and :data:`PRESETS` (``presets``): cohortmethod / trinetx / matchit.
"""

from cohort_etl.matching.balance import balance_table, imbalanced, max_abs_smd
from cohort_etl.matching.matcher import MatchResult, NearestNeighborMatcher, greedy_match_1d
from cohort_etl.matching.presets import (
    PRESETS,
    MatchingRun,
    make_matcher,
    make_propensity_model,
    run_matching,
)
from cohort_etl.matching.propensity import (
    PropensityDiagnostics,
    PropensityModel,
    PropensityWarning,
)

__all__ = [
    "PRESETS",
    "MatchResult",
    "MatchingRun",
    "NearestNeighborMatcher",
    "PropensityDiagnostics",
    "PropensityModel",
    "PropensityWarning",
    "balance_table",
    "greedy_match_1d",
    "imbalanced",
    "make_matcher",
    "make_propensity_model",
    "max_abs_smd",
    "run_matching",
]
