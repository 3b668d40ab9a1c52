-- One row per person who relapsed after their first CAR-T infusion (int__cart_course):
--   * salvage line: the first line of therapy starting on or after the relapse date, and
--     its modality (a CAR-T line after relapse is a reinfusion); its response comes from
--     int__salvage_lines: CR only up to the start of the next line or the end of
--     var('cr_window_days'), whichever is first; failure_date when no CR by then;
--   * second relapse (only after a CR): the first relapse code after the CR, or the first
--     later line started after the CR, whichever is earlier;
--   * relapse site from evidence on "work-up days" (see site_evidence below):
--     isolated_marrow, isolated_cns, isolated_non_cns_emd, combined (marrow and an
--     extramedullary site) or unknown; extramedullary_site says which extramedullary
--     site is involved, isolated or combined: cns (CNS involvement, with or without other
--     extramedullary sites), non_cns, none (marrow only) or unknown. The seed's "CNS vs
--     non-CNS EMD" comparison is extramedullary_site cns vs non_cns;
--   * CD19 status from a CD19 lab with a positive / negative value on a work-up day;
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

salvage_lines as (
    select * from {{ ref('int__salvage_lines') }}
),

salvage as (
    select
        person_id,
        line_number as salvage_line_number,
        line_start_date as salvage_start_date,
        modality as salvage_modality,
        line_end_date as salvage_line_end_date,
        best_response as salvage_best_response,
        failure_date as salvage_failure_date
    from salvage_lines
    where salvage_line = 1
),

second_line as (
    select person_id, modality as second_line_modality, cr_date as second_line_cr_date
    from salvage_lines
    where salvage_line = 2
),

remission as (
    select person_id, cr_date
    from salvage_lines
    where salvage_line = 1 and cr_date is not null
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

-- Work-up days of the relapse, where site and CD19 evidence is read:
--   (a) coded: days of a relapse / refractory code within var('relapse_evidence_days')
--       after the relapse date (any evidence recorded that day counts; a bone marrow
--       assessment that day is marrow involvement);
--   (b) uncoded, after a remission: when a remission code lies between the CAR-T infusion
--       and the relapse date, days after the last such code, up to the relapse date and
--       at most var('relapse_evidence_days') before it (a relapse seen only through its
--       salvage line is dated at the line start, after its work-up). Only positive
--       evidence counts there: CNS or extramedullary involvement codes, a CD19 lab with a
--       positive / negative value, or a detected MRD (marrow involvement).
-- A non-responder to CAR-T has no remission to relapse from: (a) only.
relapse_codes as (
    select course.person_id, status.status_date as workup_date, 1 as coded
    from course
    inner join status
        on status.person_id = course.person_id
       and status.status in ('relapse', 'refractory')
       and status.status_date >= course.relapse_date
       and status.status_date
           <= {{ add_days('course.relapse_date', var('relapse_evidence_days')) }}
),

last_remission as (
    select course.person_id, course.relapse_date, max(status.status_date) as remission_date
    from course
    inner join status
        on status.person_id = course.person_id
       and status.status = 'remission'
       and status.status_date > course.cart_date
       and status.status_date < course.relapse_date
    group by course.person_id, course.relapse_date
),

uncoded_days as (
    select distinct last_remission.person_id, events.start_date as workup_date, 0 as coded
    from last_remission
    inner join events
        on events.person_id = last_remission.person_id
       and events.start_date > last_remission.remission_date
       and events.start_date
           >= {{ add_days('last_remission.relapse_date', -var('relapse_evidence_days')) }}
       and events.start_date <= last_remission.relapse_date
       and (
           events.concept_set_name in ('cns_involvement', 'extramedullary_involvement')
           or (
               events.concept_set_name = 'mrd'
               and events.value_as_concept_id in ({{ var('value_positive_concepts') | join(', ') }})
           )
           or (
               events.concept_set_name = 'cd19_labs'
               and events.value_as_concept_id in (
                   {{ (var('value_positive_concepts') + var('value_negative_concepts')) | join(', ') }}
               )
           )
       )
),

workup_days as (
    select person_id, workup_date, max(coded) as coded
    from (
        select * from relapse_codes
        union all
        select * from uncoded_days
    ) as days
    group by person_id, workup_date
),

site_evidence as (
    select
        workup_days.person_id,
        max(case when events.concept_set_name = 'cns_involvement' then 1 else 0 end) as cns,
        max(case when events.concept_set_name = 'extramedullary_involvement' then 1 else 0 end)
            as extramedullary,
        max(
            case
                when events.concept_set_name = 'bone_marrow_assessment'
                    and workup_days.coded = 1 then 1
                when events.concept_set_name = 'mrd'
                    and workup_days.coded = 0
                    and events.value_as_concept_id
                        in ({{ var('value_positive_concepts') | join(', ') }}) then 1
                else 0
            end
        ) as marrow
    from workup_days
    inner join events
        on events.person_id = workup_days.person_id
       and events.start_date = workup_days.workup_date
       and events.concept_set_name in (
           'cns_involvement', 'extramedullary_involvement', 'bone_marrow_assessment', 'mrd'
       )
    group by workup_days.person_id
),

cd19_labs as (
    select
        workup_days.person_id,
        case
            when events.value_as_concept_id in ({{ var('value_positive_concepts') | join(', ') }})
                then 'positive'
            else 'negative'
        end as result,
        row_number() over (
            partition by workup_days.person_id
            order by workup_days.workup_date, events.event_id
        ) as nearness_rank
    from workup_days
    inner join events
        on events.person_id = workup_days.person_id
       and events.concept_set_name = 'cd19_labs'
       and events.start_date = workup_days.workup_date
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
        salvage.salvage_line_end_date,
        salvage.salvage_best_response,
        salvage.salvage_failure_date,
        remission.cr_date,
        second_line.second_line_modality,
        second_line.second_line_cr_date,
        {{ earliest('relapse_after_cr.relapse_code_date', 'line_after_cr.next_line_date') }}
            as second_relapse_date,
        case
            when site_evidence.marrow = 1
                and (site_evidence.cns = 1 or site_evidence.extramedullary = 1)
                then 'combined'
            when site_evidence.cns = 1 then 'isolated_cns'
            when site_evidence.extramedullary = 1 then 'isolated_non_cns_emd'
            when site_evidence.marrow = 1 then 'isolated_marrow'
            else 'unknown'
        end as relapse_site,
        case
            when site_evidence.cns = 1 then 'cns'
            when site_evidence.extramedullary = 1 then 'non_cns'
            when site_evidence.marrow = 1 then 'none'
            else 'unknown'
        end as extramedullary_site,
        coalesce(cd19_labs.result, 'unknown') as cd19_status,
        coalesce(bcr_abl1.bcr_abl1_positive, 0) as bcr_abl1_positive,
        coalesce(prior_allo.prior_hsct, 0) as prior_hsct
    from course
    left join salvage on salvage.person_id = course.person_id
    left join second_line on second_line.person_id = course.person_id
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
