-- Lines of therapy (DESIGN.md). Within a segment the first exposure starts line 1; agents
-- started within var('regimen_window_days') of a line's start form its regimen; the first
-- later exposure of an agent outside that regimen starts the next line. Gaps over
-- var('line_gap_days'), CAR-T infusions and relapse codes already cut segments.
-- The "next line start if a line started on day d" is a function of d alone (pointers
-- below, plain joins); the line starts are the chain of pointers from the segment's first
-- day, followed by a recursive CTE that only joins (portable and index-free).
with recursive segments as (
    select * from {{ ref('int__treatment_segments') }}
),

start_days as (
    select distinct person_id, segment_number, start_day
    from segments
),

regimen_agents as (
    select distinct
        start_days.person_id,
        start_days.segment_number,
        start_days.start_day as from_day,
        segments.agent_key
    from start_days
    inner join segments
        on segments.person_id = start_days.person_id
       and segments.segment_number = start_days.segment_number
       and segments.start_day >= start_days.start_day
       and segments.start_day <= start_days.start_day + {{ var('regimen_window_days') }}
),

candidates as (
    select
        start_days.person_id,
        start_days.segment_number,
        start_days.start_day as from_day,
        segments.start_day as candidate_day,
        segments.agent_key
    from start_days
    inner join segments
        on segments.person_id = start_days.person_id
       and segments.segment_number = start_days.segment_number
       and segments.start_day > start_days.start_day + {{ var('regimen_window_days') }}
),

pointers as (
    select
        candidates.person_id,
        candidates.segment_number,
        candidates.from_day,
        min(candidates.candidate_day) as next_day
    from candidates
    left join regimen_agents
        on regimen_agents.person_id = candidates.person_id
       and regimen_agents.segment_number = candidates.segment_number
       and regimen_agents.from_day = candidates.from_day
       and regimen_agents.agent_key = candidates.agent_key
    where regimen_agents.agent_key is null
    group by candidates.person_id, candidates.segment_number, candidates.from_day
),

line_starts as (
    select person_id, segment_number, min(start_day) as line_start_day
    from segments
    group by person_id, segment_number

    union all

    select pointers.person_id, pointers.segment_number, pointers.next_day
    from line_starts
    inner join pointers
        on pointers.person_id = line_starts.person_id
       and pointers.segment_number = line_starts.segment_number
       and pointers.from_day = line_starts.line_start_day
),

starts as (
    select distinct person_id, segment_number, line_start_day
    from line_starts
),

assigned as (
    select
        segments.person_id,
        segments.agent_class,
        segments.agent_key,
        segments.start_day,
        segments.end_day,
        max(starts.line_start_day) as line_start_day
    from segments
    inner join starts
        on starts.person_id = segments.person_id
       and starts.segment_number = segments.segment_number
       and starts.line_start_day <= segments.start_day
    group by
        segments.person_id, segments.agent_class, segments.agent_key,
        segments.start_day, segments.end_day
),

agents as (
    select distinct person_id, line_start_day, agent_key
    from assigned
),

regimens as (
    select
        person_id,
        line_start_day,
        {{ dbt.listagg('agent_key', "'+'", 'order by agent_key') }} as regimen
    from agents
    group by person_id, line_start_day
),

lines as (
    select
        person_id,
        line_start_day,
        max(end_day) as line_end_day,
        max(case when agent_class = 'cart' then 1 else 0 end) as has_cart,
        max(case when agent_class = 'blinatumomab' then 1 else 0 end) as has_blinatumomab,
        max(case when agent_class = 'inotuzumab' then 1 else 0 end) as has_inotuzumab,
        max(case when agent_class = 'tki' then 1 else 0 end) as has_tki,
        max(case when agent_class = 'chemotherapy' then 1 else 0 end) as has_chemotherapy
    from assigned
    group by person_id, line_start_day
),

final as (
    select
        lines.person_id,
        cast(row_number() over (
            partition by lines.person_id order by lines.line_start_day
        ) as integer) as line_number,
        {{ day_to_date('lines.line_start_day') }} as line_start_date,
        {{ day_to_date('lines.line_end_day') }} as line_end_date,
        regimens.regimen,
        lines.has_cart,
        lines.has_blinatumomab,
        lines.has_inotuzumab,
        lines.has_tki,
        lines.has_chemotherapy,
        case
            when lines.has_cart = 1 then 'cart'
            when lines.has_blinatumomab = 1 or lines.has_inotuzumab = 1
                then 'monoclonal_antibody'
            when lines.has_tki = 1 then 'chemotherapy_tki'
            else 'chemotherapy'
        end as modality
    from lines
    inner join regimens
        on regimens.person_id = lines.person_id
       and regimens.line_start_day = lines.line_start_day
)

select * from final
