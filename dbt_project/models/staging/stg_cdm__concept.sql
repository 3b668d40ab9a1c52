-- Vocabulary concepts (all of them: validity is applied where Circe semantics need it).
select
    concept_id,
    concept_name,
    domain_id,
    vocabulary_id,
    concept_class_id,
    standard_concept,
    concept_code,
    invalid_reason
from {{ source('cdm', 'concept') }}
