-- Observation periods with a start not after their end.
with source as (
    select * from {{ source('cdm', 'observation_period') }}
),

final as (
    select
        observation_period_id,
        person_id,
        observation_period_start_date,
        observation_period_end_date
    from source
    where observation_period_start_date <= observation_period_end_date
)

select * from final
