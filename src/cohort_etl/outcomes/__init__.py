"""Outcome statistics: Kaplan-Meier, log-rank, Cox, binary outcomes, competing risks."""
