-- Persons with an allogeneic HSCT after the index infusion, within
-- var('hsct_exposure_window_days') and before any relapse (arm hsct_plus).
select person_id from {{ ref('int__cart_course') }} where allo_hsct_date is not null
