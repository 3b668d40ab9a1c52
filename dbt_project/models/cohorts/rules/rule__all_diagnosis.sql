-- Persons with any ALL diagnosis (concept set all_leukemia: SNOMED 134305 and valid
-- descendants, plus ICD-10-CM / ICD-9-CM codes mapped to them).
select person_id from {{ ref('int__all_diagnoses') }}
