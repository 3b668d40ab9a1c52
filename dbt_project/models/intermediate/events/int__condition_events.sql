-- Cleaned condition events in a concept set, one row per (set, event): macros/concept_set_events.sql.
{{ concept_set_events('condition', 'stg_cdm__condition_occurrence') }}
