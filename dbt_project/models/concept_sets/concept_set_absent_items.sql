-- Concept set items naming a concept the connected vocabulary does not have (by id, or by
-- vocabulary and code for code items). Such an item resolves to nothing; the build warns
-- (test on this model) and `cohort-etl concept-sets validate` names the set and concept.
with items as (
    select * from {{ ref('concept_set_items') }}
),

concept as (
    select * from {{ ref('stg_cdm__concept') }}
),

final as (
    select items.concept_set_name, items.concept_id, items.vocabulary_id, items.concept_code
    from items
    where not exists (
        select 1 from concept
        where concept.concept_id = items.concept_id
           or (
               items.concept_id is null
               and concept.vocabulary_id = items.vocabulary_id
               and concept.concept_code = items.concept_code
           )
    )
)

select * from final
