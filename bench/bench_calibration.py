"""Empirical calibration by simulation: coverage of positive controls' true HR (recorded).

Not a speed benchmark: it records the measured coverage of 200 simulated studies with and
without an injected systematic error (see cohort_etl.diagnostics.simulation); the tests
assert the same property on fewer replicates.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from cohort_etl.diagnostics.simulation import calibration_coverage

REPLICATES = 200


def run() -> list[dict[str, Any]]:
    out = []
    for name, mean, sd in (("bias N(0.3, 0.15^2)", 0.3, 0.15), ("no bias", 0.0, 0.0)):
        start = time.perf_counter()
        res = calibration_coverage(2026, REPLICATES, bias_mean=mean, bias_sd=sd)
        out.append(
            {
                "name": f"calibration coverage, {name}",
                "seconds": round(time.perf_counter() - start, 2),
                **dataclasses.asdict(res),
            }
        )
    return out
