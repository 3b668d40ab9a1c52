-- Persons (with an ALL diagnosis) never diagnosed with T-cell ALL: CD19 CAR-T targets
-- B-lineage disease.
select person_id
from {{ ref('int__all_diagnoses') }}
where first_t_all_date is null
