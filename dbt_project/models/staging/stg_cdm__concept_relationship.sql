-- Valid 'Maps to' relationships only: the ones Circe's includeMapped follows.
select
    concept_id_1,
    concept_id_2,
    relationship_id,
    invalid_reason
from {{ source('cdm', 'concept_relationship') }}
where relationship_id = 'Maps to'
  and invalid_reason is null
