"""Study specs (YAML, pydantic); the engine that executes them is :mod:`cohort_etl.engine`."""
