"""Study diagnostics: pass/fail checks per estimate, negative and positive controls, and
empirical calibration (OHDSI CohortMethod / EmpiricalCalibration definitions).

- :func:`diagnose_estimate` (``checks``): balance, equipoise, MDRR, EASE, PH test, share
  matched, immortal-time flag, each with value, threshold and verdict; the one entry point
  for every design (published matched design, sensitivity reruns, target-trial emulation).
- :class:`DiagnosticThresholds` (``checks``): CohortMethod's defaults, overridable.
- :func:`fit_null`, :class:`EmpiricalNull`, :class:`ErrorModel`, :func:`fit_error_model`
  (``calibration``): empirical null, calibrated p-values and CIs, EASE.
- :func:`e_value_hr`, :func:`mdrr` (``checks``).
- :func:`calibration_plot` (``plots``).
"""

from cohort_etl.diagnostics.calibration import (
    CalibratedEstimate,
    EmpiricalNull,
    ErrorModel,
    expected_absolute_systematic_error,
    fit_error_model,
    fit_null,
    traditional_p,
)
from cohort_etl.diagnostics.checks import (
    Diagnostic,
    DiagnosticThresholds,
    EstimateDiagnostics,
    EValue,
    diagnose_estimate,
    e_value_hr,
    mdrr,
)

__all__ = [
    "CalibratedEstimate",
    "Diagnostic",
    "DiagnosticThresholds",
    "EValue",
    "EmpiricalNull",
    "ErrorModel",
    "EstimateDiagnostics",
    "diagnose_estimate",
    "e_value_hr",
    "expected_absolute_systematic_error",
    "fit_error_model",
    "fit_null",
    "mdrr",
    "traditional_p",
]
