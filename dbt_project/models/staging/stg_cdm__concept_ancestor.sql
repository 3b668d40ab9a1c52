select
    ancestor_concept_id,
    descendant_concept_id,
    min_levels_of_separation,
    max_levels_of_separation
from {{ source('cdm', 'concept_ancestor') }}
