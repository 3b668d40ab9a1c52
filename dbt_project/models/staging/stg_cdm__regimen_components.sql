-- HemOnc regimens and their antineoplastic components: valid relationships of
-- var('hemonc_component_relationships') from a valid HemOnc 'Regimen' concept, each
-- component resolved to the ingredient it maps to (a valid 'Maps to'; a component without
-- one stands for itself). Empty on a CDM whose vocabulary has no HemOnc.
with regimens as (
    select concept_id
    from {{ source('cdm', 'concept') }}
    where vocabulary_id = 'HemOnc'
      and concept_class_id = 'Regimen'
      and invalid_reason is null
),

links as (
    select concept_id_1 as regimen_concept_id, concept_id_2 as component_concept_id
    from {{ source('cdm', 'concept_relationship') }}
    where invalid_reason is null
      and relationship_id in (
          {%- for relationship in var('hemonc_component_relationships') %}
          '{{ relationship }}'{{ ',' if not loop.last }}
          {%- endfor %}
      )
),

maps_to as (
    select * from {{ ref('stg_cdm__concept_relationship') }}
),

final as (
    select distinct
        links.regimen_concept_id,
        coalesce(maps_to.concept_id_2, links.component_concept_id) as ingredient_concept_id
    from links
    inner join regimens on regimens.concept_id = links.regimen_concept_id
    left join maps_to on maps_to.concept_id_1 = links.component_concept_id
)

select * from final
