-- Haematopoietic stem cell transplants: allogeneic and autologous procedure records of one
-- transplant (within var('hsct_collapse_days') of the previous record of the same type)
-- collapse to one row.
with records as (
    select
        person_id,
        start_date,
        event_id,
        case concept_set_name when 'hsct_allogeneic' then 'allogeneic' else 'autologous' end
            as hsct_type,
        {{ day_number('start_date') }} as start_day
    from {{ ref('int__concept_set_events') }}
    where concept_set_name in ('hsct_allogeneic', 'hsct_autologous')
      and domain = 'procedure'
),

ordered as (
    select
        records.*,
        lag(start_day) over (
            partition by person_id, hsct_type order by start_day, event_id
        ) as previous_day
    from records
),

numbered as (
    select
        ordered.*,
        sum(
            case
                when previous_day is null or start_day - previous_day > {{ var('hsct_collapse_days') }}
                    then 1
                else 0
            end
        ) over (
            partition by person_id, hsct_type order by start_day, event_id
            rows between unbounded preceding and current row
        ) as transplant_number
    from ordered
),

final as (
    select
        person_id,
        hsct_type,
        cast(transplant_number as integer) as transplant_number,
        min(start_date) as hsct_date
    from numbered
    group by person_id, hsct_type, transplant_number
)

select * from final
