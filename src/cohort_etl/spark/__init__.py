"""cohort-etl on Spark: a local Spark session (dbt-spark's ``session`` method), the database
layer over it, and a loader that registers a folder of Parquet or CSV CDM tables as a Spark
database. Needs the ``spark`` extra (pyspark) and Java 17; see docs/spark.md."""
