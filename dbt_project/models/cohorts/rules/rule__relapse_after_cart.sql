-- Persons with a relapse after the index infusion (relapse/refractory code or new line).
select person_id from {{ ref('int__cart_course') }} where relapse_date is not null
