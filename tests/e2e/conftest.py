"""End-to-end tests read the demo runs of tests/demo.py (fixtures registered in
tests/conftest.py); the helpers are re-exported here for the test modules."""

from __future__ import annotations

from tests.demo import CLI, DemoRun, run_cli

__all__ = ["CLI", "DemoRun", "run_cli"]
