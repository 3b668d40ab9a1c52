"""Synthetic OMOP CDM v5.4 with known ground truth (the embedded default and the tests).

``vocabulary``: the concept slice (real OMOP ids, local ids >= 2,000,000,000).
``generator``: vectorised person-chunk generator writing the CDM and ``synthetic_truth``.
"""
