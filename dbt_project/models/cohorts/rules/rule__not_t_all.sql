-- Persons never diagnosed with T-cell ALL (CD19 CAR-T targets B-lineage disease).
select person.person_id
from {{ ref('stg_cdm__person') }} as person
where not exists (
    select 1 from {{ ref('int__all_diagnoses') }} as diagnoses
    where diagnoses.person_id = person.person_id
      and diagnoses.first_t_all_date is not null
)
