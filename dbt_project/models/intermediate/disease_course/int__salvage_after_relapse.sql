-- One row per person who relapsed after their first CAR-T infusion (int__cart_course):
--   * salvage line: the first line of therapy starting on or after the relapse date, and
--     its modality (a CAR-T line after relapse is a reinfusion);
--   * CR: the first remission code after the salvage start, within var('cr_window_days');
--   * second relapse (only after a CR): the first relapse code after the CR, or the first
--     later line started after the CR, whichever is earlier;
--   * relapse site and CD19 status from evidence recorded on the day of a relapse or
--     refractory code dated within var('relapse_evidence_days') after the relapse: CNS
--     involvement, then extramedullary involvement, then a bone marrow assessment, else
--     unknown; CD19 from a CD19 lab with a positive / negative value on such a day;
--   * BCR-ABL1 from a Ph+ diagnosis or a positive BCR-ABL1 lab up to the relapse.
with course as (
    select * from {{ ref('int__cart_course') }}
    where relapse_date is not null
),

lines as (
    select * from {{ ref('int__lines_of_therapy') }}
),

status as (
    select * from {{ ref('int__disease_status_events') }}
),

events as (
    select * from {{ ref('int__concept_set_events') }}
),

transplants as (
    select * from {{ ref('int__hsct') }}
),

diagnoses as (
    select * from {{ ref('int__all_diagnoses') }}
),

salvage_line_number as (
    select course.person_id, min(lines.line_number) as line_number
    from course
    inner join lines
        on lines.person_id = course.person_id
       and lines.line_start_date >= course.relapse_date
    group by course.person_id
),

salvage as (
    select
        lines.person_id,
        lines.line_number as salvage_line_number,
        lines.line_start_date as salvage_start_date,
        case lines.modality when 'cart' then 'cart_reinfusion' else lines.modality end
            as salvage_modality
    from lines
    inner join salvage_line_number
        on salvage_line_number.person_id = lines.person_id
       and salvage_line_number.line_number = lines.line_number
),

remission as (
    select salvage.person_id, min(status.status_date) as cr_date
    from salvage
    inner join status
        on status.person_id = salvage.person_id
       and status.status = 'remission'
       and status.status_date > salvage.salvage_start_date
       and status.status_date
           <= {{ add_days('salvage.salvage_start_date', var('cr_window_days')) }}
    group by salvage.person_id
),

relapse_after_cr as (
    select remission.person_id, min(status.status_date) as relapse_code_date
    from remission
    inner join status
        on status.person_id = remission.person_id
       and status.status in ('relapse', 'refractory')
       and status.status_date > remission.cr_date
    group by remission.person_id
),

line_after_cr as (
    select remission.person_id, min(lines.line_start_date) as next_line_date
    from remission
    inner join salvage on salvage.person_id = remission.person_id
    inner join lines
        on lines.person_id = remission.person_id
       and lines.line_number > salvage.salvage_line_number
       and lines.line_start_date > remission.cr_date
    group by remission.person_id
),

relapse_codes as (
    select course.person_id, status.status_date
    from course
    inner join status
        on status.person_id = course.person_id
       and status.status in ('relapse', 'refractory')
       and status.status_date >= course.relapse_date
       and status.status_date
           <= {{ add_days('course.relapse_date', var('relapse_evidence_days')) }}
),

site_evidence as (
    select
        relapse_codes.person_id,
        max(case when events.concept_set_name = 'cns_involvement' then 1 else 0 end) as cns,
        max(case when events.concept_set_name = 'extramedullary_involvement' then 1 else 0 end)
            as extramedullary,
        max(case when events.concept_set_name = 'bone_marrow_assessment' then 1 else 0 end)
            as marrow
    from relapse_codes
    inner join events
        on events.person_id = relapse_codes.person_id
       and events.start_date = relapse_codes.status_date
       and events.concept_set_name in (
           'cns_involvement', 'extramedullary_involvement', 'bone_marrow_assessment'
       )
    group by relapse_codes.person_id
),

cd19_labs as (
    select
        relapse_codes.person_id,
        case
            when events.value_as_concept_id in ({{ var('value_positive_concepts') | join(', ') }})
                then 'positive'
            else 'negative'
        end as result,
        row_number() over (
            partition by relapse_codes.person_id
            order by relapse_codes.status_date, events.event_id
        ) as nearness_rank
    from relapse_codes
    inner join events
        on events.person_id = relapse_codes.person_id
       and events.concept_set_name = 'cd19_labs'
       and events.start_date = relapse_codes.status_date
       and events.value_as_concept_id in (
           {{ (var('value_positive_concepts') + var('value_negative_concepts')) | join(', ') }}
       )
),

bcr_abl1 as (
    select course.person_id, 1 as bcr_abl1_positive
    from course
    inner join events
        on events.person_id = course.person_id
       and events.concept_set_name = 'bcr_abl1_labs'
       and events.start_date <= course.relapse_date
       and events.value_as_concept_id in ({{ var('value_positive_concepts') | join(', ') }})
    union
    select course.person_id, 1 as bcr_abl1_positive
    from course
    inner join diagnoses
        on diagnoses.person_id = course.person_id
       and diagnoses.first_ph_positive_date <= course.relapse_date
),

prior_allo as (
    select distinct course.person_id, 1 as prior_hsct
    from course
    inner join transplants
        on transplants.person_id = course.person_id
       and transplants.hsct_type = 'allogeneic'
       and transplants.hsct_date < course.relapse_date
),

final as (
    select
        course.person_id,
        course.cart_date,
        course.relapse_date,
        course.allo_hsct_date as consolidation_hsct_date,
        salvage.salvage_line_number,
        salvage.salvage_start_date,
        coalesce(salvage.salvage_modality, 'none') as salvage_modality,
        remission.cr_date,
        {{ earliest('relapse_after_cr.relapse_code_date', 'line_after_cr.next_line_date') }}
            as second_relapse_date,
        case
            when site_evidence.cns = 1 then 'cns'
            when site_evidence.extramedullary = 1 then 'extramedullary'
            when site_evidence.marrow = 1 then 'bone_marrow'
            else 'unknown'
        end as relapse_site,
        coalesce(cd19_labs.result, 'unknown') as cd19_status,
        coalesce(bcr_abl1.bcr_abl1_positive, 0) as bcr_abl1_positive,
        coalesce(prior_allo.prior_hsct, 0) as prior_hsct
    from course
    left join salvage on salvage.person_id = course.person_id
    left join remission on remission.person_id = course.person_id
    left join relapse_after_cr on relapse_after_cr.person_id = course.person_id
    left join line_after_cr on line_after_cr.person_id = course.person_id
    left join site_evidence on site_evidence.person_id = course.person_id
    left join cd19_labs
        on cd19_labs.person_id = course.person_id
       and cd19_labs.nearness_rank = 1
    left join bcr_abl1 on bcr_abl1.person_id = course.person_id
    left join prior_allo on prior_allo.person_id = course.person_id
)

select * from final
