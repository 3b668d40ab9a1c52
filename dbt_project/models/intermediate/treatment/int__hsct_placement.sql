-- Each transplant placed in the line-of-therapy sequence (DESIGN.md): conditioning was
-- absorbed into the transplant and consolidation is not a new line, so an HSCT belongs to
-- the line it consolidates, the latest line started before the transplant day (a line
-- starting on or after that day is post-transplant therapy). After a relapse, that is the
-- relapse (salvage) line; without intervening relapse therapy, the line that led to the
-- remission (e.g. the CAR-T line). A transplant with no earlier line has line_number null:
-- it is kept here, but no episode can contain it.
with transplants as (
    select * from {{ ref('int__hsct') }}
),

lines as (
    select person_id, line_number, line_start_date
    from {{ ref('int__lines_of_therapy') }}
),

latest_line as (
    select
        transplants.person_id,
        transplants.hsct_type,
        transplants.transplant_number,
        max(lines.line_number) as line_number
    from transplants
    inner join lines
        on lines.person_id = transplants.person_id
       and lines.line_start_date < transplants.hsct_date
    group by transplants.person_id, transplants.hsct_type, transplants.transplant_number
),

final as (
    select
        transplants.person_id,
        transplants.hsct_type,
        transplants.transplant_number,
        transplants.hsct_date,
        latest_line.line_number,
        lines.line_start_date
    from transplants
    left join latest_line
        on latest_line.person_id = transplants.person_id
       and latest_line.hsct_type = transplants.hsct_type
       and latest_line.transplant_number = transplants.transplant_number
    left join lines
        on lines.person_id = latest_line.person_id
       and lines.line_number = latest_line.line_number
)

select * from final
