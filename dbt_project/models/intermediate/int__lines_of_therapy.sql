-- Lines of therapy (DESIGN.md). Within a segment the first exposure starts line 1; agents
-- started within var('regimen_window_days') of a line's start form its regimen; the first
-- later exposure of an agent outside that regimen starts the next line (recursively).
-- Gaps over var('line_gap_days') and CAR-T infusions already cut segments.
with recursive segments as (
    select * from {{ ref('int__treatment_segments') }}
),

line_starts as (
    select
        person_id,
        segment_number,
        1 as line_in_segment,
        min(start_day) as line_start_day
    from segments
    group by person_id, segment_number

    union all

    select
        line_starts.person_id,
        line_starts.segment_number,
        line_starts.line_in_segment + 1,
        (
            select min(candidate.start_day)
            from segments as candidate
            where candidate.person_id = line_starts.person_id
              and candidate.segment_number = line_starts.segment_number
              and candidate.start_day > line_starts.line_start_day + {{ var('regimen_window_days') }}
              and not exists (
                  select 1
                  from segments as regimen
                  where regimen.person_id = candidate.person_id
                    and regimen.segment_number = candidate.segment_number
                    and regimen.agent_key = candidate.agent_key
                    and regimen.start_day >= line_starts.line_start_day
                    and regimen.start_day
                        <= line_starts.line_start_day + {{ var('regimen_window_days') }}
              )
        )
    from line_starts
    where line_starts.line_start_day is not null
),

starts as (
    select person_id, segment_number, line_start_day
    from line_starts
    where line_start_day is not null
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
