-- Cleaned observation events in a concept set, one row per (set, event): macros/concept_set_events.sql.
{{ concept_set_events('observation', 'stg_cdm__observation', has_values=true) }}
