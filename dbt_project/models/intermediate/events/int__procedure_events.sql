-- Cleaned procedure events in a concept set, one row per (set, event): macros/concept_set_events.sql.
{{ concept_set_events('procedure', 'stg_cdm__procedure_occurrence') }}
