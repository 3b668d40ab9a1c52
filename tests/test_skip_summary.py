"""The loud end-of-run line for tests skipped for a missing system package."""

from __future__ import annotations

from tests.conftest import skipped_groups


def test_skip_reasons_are_grouped() -> None:
    reasons = [
        "Rscript is not installed on this machine",
        "Rscript is not installed on this machine",
        "needs Debian chromium (.ci/run installs it)",
        "Spark tests need java (apt-get install openjdk-17-jre-headless)",
        "some other reason",
    ]
    assert skipped_groups(reasons) == {"R oracle": 2, "browser (Chromium)": 1, "Spark (Java)": 1}
