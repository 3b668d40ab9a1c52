-- Concept set items naming a concept the connected vocabulary does not have. Such an item
-- resolves to nothing; the build warns (test on this model) and `cohort-etl concept-sets
-- validate` names the set and the concept.
with items as (
    select * from {{ ref('concept_set_items') }}
),

concept as (
    select * from {{ ref('stg_cdm__concept') }}
),

final as (
    select items.concept_set_name, items.concept_id
    from items
    where not exists (
        select 1 from concept where concept.concept_id = items.concept_id
    )
)

select * from final
