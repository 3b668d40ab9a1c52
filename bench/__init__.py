"""Benchmarks (`make bench`): speed and peak memory, never asserted in tests."""
