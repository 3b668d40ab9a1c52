-- Cleaned drug events in a concept set, one row per (set, event): macros/concept_set_events.sql.
{{ concept_set_events('drug', 'stg_cdm__drug_exposure') }}
