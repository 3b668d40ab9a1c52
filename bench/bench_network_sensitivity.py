"""The network's sensitivity analyses pooled over 36 small sites against R.

tests/network/test_sensitivity_r.py checks every sensitivity analysis (unmatched, naive
ever-treated, landmark with and without the event-free rule, time-varying; unadjusted and
adjusted) pooled from three sites' likelihood profiles against R's site-stratified
``coxph`` in ``make test``. The same union split into 36 small sites (zero-event groups,
sites with nobody in the landmark population) takes 10-45 minutes on 2 cores with three
passes of 36 packages, so it runs here: ``python -m bench network_sensitivity``. It fails
(AssertionError) if any analysis is off R by 1e-3 or more after the last pass, and records
the largest difference per analysis. Needs R with survival.

Measured once (2026-11-30, 2 cores shared with other jobs): passed in 43 min; the
differences are in docs/network.md.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any


def run() -> list[dict[str, Any]]:
    from tests.network.test_sensitivity_r import check_36_small_sites

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-netsens-") as tmp:
        diffs = check_36_small_sites(Path(tmp))
    seconds = round(time.perf_counter() - start, 1)
    return [
        {
            "bench": "network_sensitivity_36_sites",
            "analysis": k,
            "abs_diff_vs_r": v,
            "seconds": seconds,
        }  # fmt: skip
        for k, v in sorted(diffs.items())
    ]
