-- Treatment exposures cut into segments that no line of therapy crosses: a gap of more than
-- var('line_gap_days') after everything before it; a CAR-T infusion (a line of its own:
-- bridging before it stays in the previous line, anything after it starts a new one); and
-- a relapse or refractory code dated after the previous exposure started (treatment after
-- a documented relapse is a new line even when it repeats the same agents).
with exposures as (
    select * from {{ ref('int__treatment_exposures') }}
),

relapse_codes as (
    select distinct person_id, {{ day_number('status_date') }} as status_day
    from {{ ref('int__disease_status_events') }}
    where status in ('relapse', 'refractory')
),

ordered as (
    select
        exposures.*,
        row_number() over (
            partition by person_id order by start_day, agent_key, end_day
        ) as exposure_rank,
        max(end_day) over (
            partition by person_id order by start_day, agent_key, end_day
            rows between unbounded preceding and 1 preceding
        ) as previous_max_end_day,
        lag(agent_class) over (
            partition by person_id order by start_day, agent_key, end_day
        ) as previous_agent_class,
        lag(start_day) over (
            partition by person_id order by start_day, agent_key, end_day
        ) as previous_start_day
    from exposures
),

relapse_cut as (
    select distinct ordered.person_id, ordered.exposure_rank
    from ordered
    inner join relapse_codes
        on relapse_codes.person_id = ordered.person_id
       and relapse_codes.status_day > ordered.previous_start_day
       and relapse_codes.status_day <= ordered.start_day
),

flagged as (
    select
        ordered.*,
        case
            when previous_max_end_day is null then 1
            when start_day - previous_max_end_day > {{ var('line_gap_days') }} then 1
            when agent_class = 'cart' or previous_agent_class = 'cart' then 1
            when relapse_cut.person_id is not null then 1
            else 0
        end as starts_segment
    from ordered
    left join relapse_cut
        on relapse_cut.person_id = ordered.person_id
       and relapse_cut.exposure_rank = ordered.exposure_rank
),

final as (
    select
        person_id,
        agent_class,
        agent_key,
        start_day,
        end_day,
        cast(sum(starts_segment) over (
            partition by person_id order by exposure_rank
            rows between unbounded preceding and current row
        ) as integer) as segment_number
    from flagged
)

select * from final
