-- Resolved concept sets: included expansion minus excluded expansion, Circe semantics
-- (macros/circe.sql, the same SQL `cohort-etl concept-sets resolve` runs).
{{ circe_concepts(ref('concept_set_item_concepts'), ref('stg_cdm__concept')) }}
