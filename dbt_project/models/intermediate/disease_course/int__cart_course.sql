-- One row per person with a CAR-T infusion on or after their first ALL diagnosis: the first
-- such infusion (the index of study A), the treatment history before it, and what followed:
--   * relapse_date: the first relapse or refractory code after the infusion, or the start of
--     a new line of therapy after it, whichever is earlier (DESIGN.md). Lymphodepletion and
--     HSCT conditioning were absorbed earlier, so neither counts;
--   * allo_hsct_date: the first allogeneic HSCT after the infusion, within
--     var('hsct_exposure_window_days') and before any relapse (consolidation);
--   * allo_hsct_any_date: the same without the window (target-trial "never" strategy).
with diagnoses as (
    select * from {{ ref('int__all_diagnoses') }}
),

infusions as (
    select * from {{ ref('int__cart_infusions') }}
),

status as (
    select * from {{ ref('int__disease_status_events') }}
),

lines as (
    select * from {{ ref('int__lines_of_therapy') }}
),

transplants as (
    select * from {{ ref('int__hsct') }}
),

first_infusion as (
    select
        infusions.person_id,
        min(infusions.infusion_number) as infusion_number
    from infusions
    inner join diagnoses
        on diagnoses.person_id = infusions.person_id
       and infusions.infusion_date >= diagnoses.first_all_date
    group by infusions.person_id
),

index_infusion as (
    select
        infusions.person_id,
        infusions.infusion_date as cart_date,
        infusions.product_concept_id,
        diagnoses.first_all_date
    from infusions
    inner join first_infusion
        on first_infusion.person_id = infusions.person_id
       and first_infusion.infusion_number = infusions.infusion_number
    inner join diagnoses
        on diagnoses.person_id = infusions.person_id
),

rr_code_before as (
    select index_infusion.person_id, max(status.status_date) as last_rr_code_date
    from index_infusion
    inner join status
        on status.person_id = index_infusion.person_id
       and status.status in ('relapse', 'refractory')
       and status.status_date < index_infusion.cart_date
    group by index_infusion.person_id
),

lines_before as (
    select index_infusion.person_id, count(*) as prior_lines
    from index_infusion
    inner join lines
        on lines.person_id = index_infusion.person_id
       and lines.line_start_date < index_infusion.cart_date
    group by index_infusion.person_id
),

allo_before as (
    select index_infusion.person_id, min(transplants.hsct_date) as first_allo_hsct_date
    from index_infusion
    inner join transplants
        on transplants.person_id = index_infusion.person_id
       and transplants.hsct_type = 'allogeneic'
       and transplants.hsct_date < index_infusion.cart_date
    group by index_infusion.person_id
),

relapse_code_after as (
    select index_infusion.person_id, min(status.status_date) as relapse_code_date
    from index_infusion
    inner join status
        on status.person_id = index_infusion.person_id
       and status.status in ('relapse', 'refractory')
       and status.status_date > index_infusion.cart_date
    group by index_infusion.person_id
),

new_line_after as (
    select index_infusion.person_id, min(lines.line_start_date) as new_line_date
    from index_infusion
    inner join lines
        on lines.person_id = index_infusion.person_id
       and lines.line_start_date > index_infusion.cart_date
    group by index_infusion.person_id
),

with_relapse as (
    select
        index_infusion.*,
        coalesce(lines_before.prior_lines, 0) as prior_lines,
        rr_code_before.last_rr_code_date,
        allo_before.first_allo_hsct_date as prior_allo_hsct_date,
        relapse_code_after.relapse_code_date,
        new_line_after.new_line_date,
        {{ earliest('relapse_code_after.relapse_code_date', 'new_line_after.new_line_date') }}
            as relapse_date
    from index_infusion
    left join lines_before on lines_before.person_id = index_infusion.person_id
    left join rr_code_before on rr_code_before.person_id = index_infusion.person_id
    left join allo_before on allo_before.person_id = index_infusion.person_id
    left join relapse_code_after on relapse_code_after.person_id = index_infusion.person_id
    left join new_line_after on new_line_after.person_id = index_infusion.person_id
),

consolidation as (
    select with_relapse.person_id, min(transplants.hsct_date) as allo_hsct_date
    from with_relapse
    inner join transplants
        on transplants.person_id = with_relapse.person_id
       and transplants.hsct_type = 'allogeneic'
       and transplants.hsct_date > with_relapse.cart_date
       and transplants.hsct_date
           <= {{ add_days('with_relapse.cart_date', var('hsct_exposure_window_days')) }}
       and (with_relapse.relapse_date is null or transplants.hsct_date < with_relapse.relapse_date)
    group by with_relapse.person_id
),

-- any allogeneic HSCT after the infusion and before relapse, also after the window: it
-- ends the "never transplanted" strategy of the target-trial emulation
consolidation_any as (
    select with_relapse.person_id, min(transplants.hsct_date) as allo_hsct_any_date
    from with_relapse
    inner join transplants
        on transplants.person_id = with_relapse.person_id
       and transplants.hsct_type = 'allogeneic'
       and transplants.hsct_date > with_relapse.cart_date
       and (with_relapse.relapse_date is null or transplants.hsct_date < with_relapse.relapse_date)
    group by with_relapse.person_id
),

final as (
    select
        with_relapse.*,
        case
            when with_relapse.relapse_code_date is null and with_relapse.new_line_date is null
                then null
            when with_relapse.new_line_date is null then 'code'
            when with_relapse.relapse_code_date is null then 'new_line'
            when with_relapse.relapse_code_date < with_relapse.new_line_date then 'code'
            when with_relapse.relapse_code_date > with_relapse.new_line_date then 'new_line'
            else 'code_and_new_line'
        end as relapse_evidence,
        consolidation.allo_hsct_date,
        consolidation_any.allo_hsct_any_date
    from with_relapse
    left join consolidation on consolidation.person_id = with_relapse.person_id
    left join consolidation_any on consolidation_any.person_id = with_relapse.person_id
)

select * from final
