"""The OMOP CDM v5.4 specification as data, and DDL per dialect."""
