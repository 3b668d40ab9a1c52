-- Resolved concept sets: included expansion minus excluded expansion (Circe semantics).
-- match_column says which CDM column the concept is matched against: standard concepts
-- match *_concept_id, every other concept (source codes) matches *_source_concept_id.
-- item_concept_id is the (lowest) included item the concept came from: for drug sets it
-- names the ingredient, used as the agent of a regimen.
with expanded as (
    select * from {{ ref('concept_set_item_concepts') }}
),

concept as (
    select * from {{ ref('stg_cdm__concept') }}
),

included as (
    select concept_set_name, concept_id, min(item_concept_id) as item_concept_id
    from expanded
    where not is_excluded
    group by concept_set_name, concept_id
),

excluded as (
    select distinct concept_set_name, concept_id
    from expanded
    where is_excluded
),

final as (
    select
        included.concept_set_name,
        included.concept_id,
        included.item_concept_id,
        concept.concept_name,
        concept.vocabulary_id,
        concept.standard_concept,
        case when concept.standard_concept = 'S' then 'standard' else 'source' end as match_column
    from included
    inner join concept
        on concept.concept_id = included.concept_id
    where not exists (
        select 1
        from excluded
        where excluded.concept_set_name = included.concept_set_name
          and excluded.concept_id = included.concept_id
    )
)

select * from final
