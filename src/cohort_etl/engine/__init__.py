"""The study engine: one spec model (:mod:`cohort_etl.studies.spec`), one engine
(:class:`Study`), typed results (:mod:`cohort_etl.engine.results`), two doors
(``cohort-etl run`` reads the mart the spec names, ``cohort-etl analyze`` a file)."""

from cohort_etl.engine.data import read_dataset
from cohort_etl.engine.results import SCHEMA_VERSION, StudyResults
from cohort_etl.engine.study import CurveSet, KMCurve, Study, StudyOutput

__all__ = [
    "SCHEMA_VERSION",
    "CurveSet",
    "KMCurve",
    "Study",
    "StudyOutput",
    "StudyResults",
    "read_dataset",
]
