-- One row per line of therapy started on or after the relapse after the first CAR-T
-- infusion (int__cart_course), with its best response. salvage_line 1 is the salvage line
-- of study B, 2 the next line, and so on.
--   * line_end_date: the start of the next line, or the end of the response window
--     (var('cr_window_days') after the line start), whichever is first;
--   * cr_date: the first remission code after the line start, up to line_end_date (a CR
--     reached on a later line is not credited to this one);
--   * failure_date (no CR by the end of the line), for lines without a CR: the first
--     relapse / refractory code after the start, up to line_end_date; else line_end_date
--     when it was reached inside follow-up (the next line started, or the whole window
--     was observed without a remission code); null otherwise (follow-up ended first);
--   * best_response: complete_remission, no_remission (failure_date set) or not_evaluable.
with course as (
    select person_id, relapse_date
    from {{ ref('int__cart_course') }}
    where relapse_date is not null
),

lines as (
    select * from {{ ref('int__lines_of_therapy') }}
),

status as (
    select * from {{ ref('int__disease_status_events') }}
),

followup as (
    select person_id, end_of_followup_date from {{ ref('int__person_followup') }}
),

after_relapse as (
    select
        lines.person_id,
        lines.line_number,
        lines.line_start_date,
        case lines.modality when 'cart' then 'cart_reinfusion' else lines.modality end
            as modality,
        cast(row_number() over (
            partition by lines.person_id order by lines.line_number
        ) as integer) as salvage_line
    from lines
    inner join course
        on course.person_id = lines.person_id
       and lines.line_start_date >= course.relapse_date
),

bounded as (
    select
        this_line.*,
        next_line.line_start_date as next_line_start_date,
        {{ earliest(
            'next_line.line_start_date',
            add_days('this_line.line_start_date', var('cr_window_days'))
        ) }} as line_end_date
    from after_relapse as this_line
    left join after_relapse as next_line
        on next_line.person_id = this_line.person_id
       and next_line.salvage_line = this_line.salvage_line + 1
),

remission as (
    select bounded.person_id, bounded.salvage_line, min(status.status_date) as cr_date
    from bounded
    inner join status
        on status.person_id = bounded.person_id
       and status.status = 'remission'
       and status.status_date > bounded.line_start_date
       and status.status_date <= bounded.line_end_date
    group by bounded.person_id, bounded.salvage_line
),

failure_code as (
    select bounded.person_id, bounded.salvage_line, min(status.status_date) as code_date
    from bounded
    inner join status
        on status.person_id = bounded.person_id
       and status.status in ('relapse', 'refractory')
       and status.status_date > bounded.line_start_date
       and status.status_date <= bounded.line_end_date
    group by bounded.person_id, bounded.salvage_line
),

final as (
    select
        bounded.person_id,
        bounded.salvage_line,
        bounded.line_number,
        bounded.modality,
        bounded.line_start_date,
        bounded.next_line_start_date,
        bounded.line_end_date,
        remission.cr_date,
        case
            when remission.cr_date is not null then null
            when failure_code.code_date is not null then failure_code.code_date
            when bounded.line_end_date <= followup.end_of_followup_date
                then bounded.line_end_date
        end as failure_date,
        case
            when remission.cr_date is not null then 'complete_remission'
            when failure_code.code_date is not null
                or bounded.line_end_date <= followup.end_of_followup_date
                then 'no_remission'
            else 'not_evaluable'
        end as best_response
    from bounded
    inner join followup on followup.person_id = bounded.person_id
    left join remission
        on remission.person_id = bounded.person_id
       and remission.salvage_line = bounded.salvage_line
    left join failure_code
        on failure_code.person_id = bounded.person_id
       and failure_code.salvage_line = bounded.salvage_line
)

select * from final
