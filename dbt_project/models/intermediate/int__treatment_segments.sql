-- Treatment exposures cut into segments that no line of therapy crosses: a gap of more than
-- var('line_gap_days') after everything before it, and a CAR-T infusion (a line of its
-- own: bridging before it stays in the previous line, anything after it starts a new one).
with exposures as (
    select * from {{ ref('int__treatment_exposures') }}
),

ordered as (
    select
        exposures.*,
        max(end_day) over (
            partition by person_id order by start_day, agent_key
            rows between unbounded preceding and 1 preceding
        ) as previous_max_end_day,
        lag(agent_class) over (
            partition by person_id order by start_day, agent_key
        ) as previous_agent_class
    from exposures
),

flagged as (
    select
        ordered.*,
        case
            when previous_max_end_day is null then 1
            when start_day - previous_max_end_day > {{ var('line_gap_days') }} then 1
            when agent_class = 'cart' or previous_agent_class = 'cart' then 1
            else 0
        end as starts_segment
    from ordered
),

final as (
    select
        person_id,
        agent_class,
        agent_key,
        start_day,
        end_day,
        cast(sum(starts_segment) over (
            partition by person_id order by start_day, agent_key
            rows between unbounded preceding and current row
        ) as integer) as segment_number
    from flagged
)

select * from final
