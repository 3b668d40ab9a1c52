-- One row per person who died: the earliest recorded death date.
with source as (
    select * from {{ source('cdm', 'death') }}
),

final as (
    select
        person_id,
        min(death_date) as death_date
    from source
    group by person_id
)

select * from final
