-- Haematopoietic stem cell transplant procedure records, one row per procedure_occurrence,
-- numbered into transplants: a record within var('hsct_collapse_days') of the previous
-- record of the same type belongs to the same transplant. int__hsct collapses them;
-- episode_event links each record to the line the transplant consolidates.
with records as (
    select
        person_id,
        start_date,
        event_id,
        case concept_set_name when 'hsct_allogeneic' then 'allogeneic' else 'autologous' end
            as hsct_type,
        {{ day_number('start_date') }} as start_day
    from {{ ref('int__procedure_events') }}
    where concept_set_name in ('hsct_allogeneic', 'hsct_autologous')
),

ordered as (
    select
        records.*,
        lag(start_day) over (
            partition by person_id, hsct_type order by start_day, event_id
        ) as previous_day
    from records
),

final as (
    select
        person_id,
        hsct_type,
        event_id,
        start_date,
        cast(sum(
            case
                when previous_day is null or start_day - previous_day > {{ var('hsct_collapse_days') }}
                    then 1
                else 0
            end
        ) over (
            partition by person_id, hsct_type order by start_day, event_id
            rows between unbounded preceding and current row
        ) as integer) as transplant_number
    from ordered
)

select * from final
