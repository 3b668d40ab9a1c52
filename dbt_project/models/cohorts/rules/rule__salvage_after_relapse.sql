-- Persons who started a line of therapy on or after the relapse (salvage).
select person_id from {{ ref('int__salvage_after_relapse') }} where salvage_modality <> 'none'
