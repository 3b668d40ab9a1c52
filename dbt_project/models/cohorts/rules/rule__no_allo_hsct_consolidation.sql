-- Persons with a CAR-T course and no consolidating allogeneic HSCT (arm hsct_minus).
select person_id from {{ ref('int__cart_course') }} where allo_hsct_date is null
