-- One row per person with an ALL diagnosis (everyone any cohort, episode or mart can
-- hold): demographics, last observation date, death and end of follow-up (the death date
-- when the person died, else the end of their last observation period).
with person as (
    select person.*
    from {{ ref('stg_cdm__person') }} as person
    inner join {{ ref('int__all_diagnoses') }} as diagnoses
        on diagnoses.person_id = person.person_id
),

observation as (
    select person_id, max(observation_period_end_date) as observation_end_date
    from {{ ref('stg_cdm__observation_period') }}
    group by person_id
),

death as (
    select * from {{ ref('stg_cdm__death') }}
),

final as (
    select
        person.person_id,
        person.year_of_birth,
        person.gender_concept_id,
        person.race_concept_id,
        person.ethnicity_concept_id,
        case person.gender_concept_id
            when {{ var('concept_female') }} then 'female'
            when {{ var('concept_male') }} then 'male'
            else 'unknown'
        end as sex,
        case person.race_concept_id
            when {{ var('concept_race_white') }} then 'white'
            when {{ var('concept_race_black') }} then 'black'
            when {{ var('concept_race_asian') }} then 'asian'
            when 0 then 'unknown'
            else 'other'
        end as race,
        case person.ethnicity_concept_id
            when {{ var('concept_hispanic') }} then 'hispanic'
            when {{ var('concept_not_hispanic') }} then 'not_hispanic'
            else 'unknown'
        end as ethnicity,
        observation.observation_end_date,
        death.death_date,
        coalesce(death.death_date, observation.observation_end_date) as end_of_followup_date
    from person
    left join observation
        on observation.person_id = person.person_id
    left join death
        on death.person_id = person.person_id
)

select * from final
