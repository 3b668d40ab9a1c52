-- Circe expansion of every concept set item, before exclusions are subtracted:
--   * the item's own concept, if the vocabulary has it and it is valid (items from
--     code_items.csv name a (vocabulary_id, concept_code) instead of an id);
--   * with includeDescendants: its descendants through concept_ancestor, valid ones only
--     (invalid_reason is null);
--   * with includeMapped: source concepts whose valid 'Maps to' points at any of the above.
with seed_items as (
    select * from {{ ref('concept_set_items') }}
),

concept as (
    select * from {{ ref('stg_cdm__concept') }}
),

items as (
    select
        seed_items.concept_set_name,
        coalesce(seed_items.concept_id, concept.concept_id) as concept_id,
        seed_items.is_excluded,
        seed_items.include_descendants,
        seed_items.include_mapped
    from seed_items
    left join concept
        on seed_items.concept_id is null
       and concept.vocabulary_id = seed_items.vocabulary_id
       and concept.concept_code = seed_items.concept_code
    where seed_items.concept_id is not null or concept.concept_id is not null
),

concept_ancestor as (
    select * from {{ ref('stg_cdm__concept_ancestor') }}
),

maps_to as (
    select * from {{ ref('stg_cdm__concept_relationship') }}
),

item_itself as (
    select
        items.concept_set_name,
        items.concept_id as item_concept_id,
        items.is_excluded,
        items.include_mapped,
        concept.concept_id
    from items
    inner join concept
        on concept.concept_id = items.concept_id
    where concept.invalid_reason is null
),

descendants as (
    select
        items.concept_set_name,
        items.concept_id as item_concept_id,
        items.is_excluded,
        items.include_mapped,
        concept.concept_id
    from items
    inner join concept_ancestor
        on concept_ancestor.ancestor_concept_id = items.concept_id
    inner join concept
        on concept.concept_id = concept_ancestor.descendant_concept_id
    where items.include_descendants
      and concept.invalid_reason is null
),

hierarchy as (
    select * from item_itself
    union
    select * from descendants
),

mapped as (
    select
        hierarchy.concept_set_name,
        hierarchy.item_concept_id,
        hierarchy.is_excluded,
        hierarchy.include_mapped,
        maps_to.concept_id_1 as concept_id
    from hierarchy
    inner join maps_to
        on maps_to.concept_id_2 = hierarchy.concept_id
    where hierarchy.include_mapped
),

final as (
    select concept_set_name, item_concept_id, is_excluded, concept_id from hierarchy
    union
    select concept_set_name, item_concept_id, is_excluded, concept_id from mapped
)

select * from final
