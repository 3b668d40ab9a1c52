"""cohort-etl: OMOP CDM v5.4 -> ALL CAR-T treatment-line cohorts -> matched outcomes."""

__version__ = "0.1.0"
