-- Cleaned measurement events in a concept set, one row per (set, event): macros/concept_set_events.sql.
{{ concept_set_events('measurement', 'stg_cdm__measurement', has_values=true) }}
