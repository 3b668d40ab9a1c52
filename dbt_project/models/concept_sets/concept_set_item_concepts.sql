-- Circe expansion of every concept set item, before exclusions are subtracted
-- (macros/circe.sql, the same SQL `cohort-etl concept-sets resolve` runs).
{{ circe_item_concepts(
    ref('concept_set_items'),
    ref('stg_cdm__concept'),
    ref('stg_cdm__concept_ancestor'),
    ref('stg_cdm__concept_relationship')
) }}
