-- Persons with a CD19 CAR-T infusion (drug or administration procedure) on or after their
-- first ALL diagnosis.
select person_id from {{ ref('int__cart_course') }}
