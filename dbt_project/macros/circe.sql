{#- Circe concept-set semantics, written once: the dbt models concept_set_item_concepts and
    concept_set_concepts call these macros, and `cohort-etl concept-sets resolve`
    (src/cohort_etl/concept_sets/resolve.py) renders this same file with plain Jinja, so
    the two cannot drift. Keep it plain Jinja: no ref(), var(), dbt.* or adapter calls;
    the callers pass relation names (or CTE names) in.

    circe_item_concepts: every concept an item expands to, before exclusions:
      * the item's own concept, if the vocabulary has it and it is valid (code items name a
        (vocabulary_id, concept_code) instead of an id);
      * with includeDescendants: its descendants through concept_ancestor, valid ones only
        (invalid_reason is null);
      * with includeMapped: source concepts whose valid 'Maps to' points at any of the above.
    Columns: concept_set_name, item_concept_id, is_excluded, concept_id. -#}
{% macro circe_item_concepts(items, concept, concept_ancestor, concept_relationship) %}
with circe_items as (
    select
        seed_items.concept_set_name,
        coalesce(seed_items.concept_id, item_concept.concept_id) as concept_id,
        seed_items.is_excluded,
        seed_items.include_descendants,
        seed_items.include_mapped
    from {{ items }} as seed_items
    left join {{ concept }} as item_concept
        on seed_items.concept_id is null
       and item_concept.vocabulary_id = seed_items.vocabulary_id
       and item_concept.concept_code = seed_items.concept_code
    where seed_items.concept_id is not null or item_concept.concept_id is not null
),

circe_item_itself as (
    select
        circe_items.concept_set_name,
        circe_items.concept_id as item_concept_id,
        circe_items.is_excluded,
        circe_items.include_mapped,
        valid.concept_id
    from circe_items
    inner join {{ concept }} as valid
        on valid.concept_id = circe_items.concept_id
    where valid.invalid_reason is null
),

circe_descendants as (
    select
        circe_items.concept_set_name,
        circe_items.concept_id as item_concept_id,
        circe_items.is_excluded,
        circe_items.include_mapped,
        valid.concept_id
    from circe_items
    inner join {{ concept_ancestor }} as ancestry
        on ancestry.ancestor_concept_id = circe_items.concept_id
    inner join {{ concept }} as valid
        on valid.concept_id = ancestry.descendant_concept_id
    where circe_items.include_descendants
      and valid.invalid_reason is null
),

circe_hierarchy as (
    select * from circe_item_itself
    union
    select * from circe_descendants
),

circe_mapped as (
    select
        circe_hierarchy.concept_set_name,
        circe_hierarchy.item_concept_id,
        circe_hierarchy.is_excluded,
        circe_hierarchy.include_mapped,
        maps_to.concept_id_1 as concept_id
    from circe_hierarchy
    inner join {{ concept_relationship }} as maps_to
        on maps_to.concept_id_2 = circe_hierarchy.concept_id
       and maps_to.relationship_id = 'Maps to'
       and maps_to.invalid_reason is null
    where circe_hierarchy.include_mapped
)

select concept_set_name, item_concept_id, is_excluded, concept_id from circe_hierarchy
union
select concept_set_name, item_concept_id, is_excluded, concept_id from circe_mapped
{% endmacro %}

{#- circe_concepts: the resolved sets, included expansion minus excluded expansion.
    match_column says which CDM column a concept is matched against: standard concepts
    match *_concept_id, every other concept (source codes) matches *_source_concept_id.
    item_concept_id is the (lowest) included item the concept came from: for drug sets it
    names the ingredient, used as the agent of a regimen.
    Columns: concept_set_name, concept_id, item_concept_id, concept_name, vocabulary_id,
    concept_code, standard_concept, match_column. -#}
{% macro circe_concepts(item_concepts, concept) %}
with circe_included as (
    select concept_set_name, concept_id, min(item_concept_id) as item_concept_id
    from {{ item_concepts }}
    where not is_excluded
    group by concept_set_name, concept_id
),

circe_excluded as (
    select distinct concept_set_name, concept_id
    from {{ item_concepts }}
    where is_excluded
)

select
    circe_included.concept_set_name,
    circe_included.concept_id,
    circe_included.item_concept_id,
    resolved.concept_name,
    resolved.vocabulary_id,
    resolved.concept_code,
    resolved.standard_concept,
    case when resolved.standard_concept = 'S' then 'standard' else 'source' end as match_column
from circe_included
inner join {{ concept }} as resolved
    on resolved.concept_id = circe_included.concept_id
where not exists (
    select 1
    from circe_excluded
    where circe_excluded.concept_set_name = circe_included.concept_set_name
      and circe_excluded.concept_id = circe_included.concept_id
)
{% endmacro %}
