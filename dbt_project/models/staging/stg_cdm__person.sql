-- One row per person: demographics used as baseline covariates.
with source as (
    select * from {{ source('cdm', 'person') }}
),

final as (
    select
        person_id,
        gender_concept_id,
        year_of_birth,
        coalesce(month_of_birth, 7) as month_of_birth,
        race_concept_id,
        ethnicity_concept_id
    from source
)

select * from final
