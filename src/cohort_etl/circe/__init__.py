"""Circe (OHDSI / ATLAS) cohort definitions of the project's cohorts.

``cohorts``: the cohort list of the dbt project; ``expression``: the Circe expression of
each cohort's rules; ``export``: ``cohort-etl cohorts export --format circe``; ``sql``: run
an expression through OHDSI Circe's own SQL (ohdsi-circepy) on DuckDB.
"""
