-- Persons with relapsed/refractory disease before the index infusion: a relapse or
-- refractory code before it, or at least var('rr_min_prior_lines') prior lines of therapy.
select person_id
from {{ ref('int__cart_course') }}
where last_rr_code_date is not null
   or prior_lines >= {{ var('rr_min_prior_lines') }}
