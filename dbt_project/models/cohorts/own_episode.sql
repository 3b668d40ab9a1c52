-- OMOP episode rows (oncology conventions), ids derived from person_id and a number n
-- (episode_id_of: var('episode_id_offset') + person_id * 1000 + n), so they are stable
-- between builds:
--   * n = 0: one Disease First Occurrence episode (32528) per person with ALL, from the
--     first ALL diagnosis to the end of follow-up;
--   * n = line number (1-799): one Treatment Regimen episode (32531) per line of therapy,
--     episode_number = line number, the disease episode as parent, the line's HemOnc
--     regimen (episode_line_regimens, 0 when the vocabulary has none) as object. An HSCT
--     has no episode of its own: it is part of the line it consolidates
--     (int__hsct_placement), whose episode ends no earlier than the transplant and links
--     its procedure records (episode_event);
--   * n = 800 + k: the k-th relapse after the first CAR-T infusion (1: int__cart_course's
--     relapse date; 2: the relapse after a salvage CR, int__salvage_after_relapse), Disease
--     Recurrence (32529) when a remission episode precedes it, else Disease Progression
--     (32677: the disease never remitted after the infusion);
--   * n = 900 + k: the k-th remission after the infusion (Disease Remission, 32530): the
--     first remission code after the infusion and before the relapse, and the CR of the
--     salvage line (int__salvage_after_relapse.cr_date).
-- A relapse episode ends at the next remission, a remission episode at the next relapse,
-- else both at the end of follow-up. Disease episodes have the ALL concept as object.
with diagnoses as (
    select * from {{ ref('int__all_diagnoses') }}
),

followup as (
    select * from {{ ref('int__person_followup') }}
),

lines as (
    select lines.*, regimens.regimen_concept_id
    from {{ ref('int__lines_of_therapy') }} as lines
    inner join diagnoses on diagnoses.person_id = lines.person_id
    inner join {{ ref('episode_line_regimens') }} as regimens
        on regimens.person_id = lines.person_id
       and regimens.line_number = lines.line_number
),

placed_hsct as (
    select person_id, line_number, max(hsct_date) as last_hsct_date
    from {{ ref('int__hsct_placement') }}
    where line_number is not null
    group by person_id, line_number
),

course as (
    select * from {{ ref('int__cart_course') }}
),

salvage as (
    select * from {{ ref('int__salvage_after_relapse') }}
),

status as (
    select * from {{ ref('int__disease_status_events') }}
),

cart_remission as (
    select course.person_id, min(status.status_date) as remission_date
    from course
    inner join status
        on status.person_id = course.person_id
       and status.status = 'remission'
       and status.status_date > course.cart_date
       and (course.relapse_date is null or status.status_date < course.relapse_date)
    group by course.person_id
),

status_changes as (
    select person_id, 'remission' as kind, remission_date as start_date,
        'remission after CAR-T' as source_value
    from cart_remission
    union all
    select person_id, 'remission', cr_date, 'remission after salvage'
    from salvage
    where cr_date is not null
    union all
    select course.person_id, 'relapse', course.relapse_date,
        'relapse after CAR-T: ' || course.relapse_evidence
    from course
    where course.relapse_date is not null
    union all
    select person_id, 'relapse', second_relapse_date, 'relapse after salvage CR'
    from salvage
    where second_relapse_date is not null
),

numbered as (
    select
        status_changes.*,
        row_number() over (
            partition by person_id, kind order by start_date
        ) as kind_number
    from status_changes
),

ended as (
    select
        numbered.person_id,
        numbered.kind,
        numbered.kind_number,
        numbered.start_date,
        numbered.source_value,
        min(later.start_date) as next_change_date,
        max(case when earlier.kind = 'remission' then 1 else 0 end) as after_remission
    from numbered
    left join numbered as later
        on later.person_id = numbered.person_id
       and later.kind <> numbered.kind
       and later.start_date > numbered.start_date
    left join numbered as earlier
        on earlier.person_id = numbered.person_id
       and earlier.kind <> numbered.kind
       and earlier.start_date < numbered.start_date
    group by
        numbered.person_id, numbered.kind, numbered.kind_number, numbered.start_date,
        numbered.source_value
),

disease as (
    select
        cast({{ episode_id_of('diagnoses.person_id', 0) }} as {{ dbt.type_bigint() }}) as episode_id,
        diagnoses.person_id,
        cast({{ var('concept_episode_disease') }} as {{ dbt.type_bigint() }}) as episode_concept_id,
        diagnoses.first_all_date as episode_start_date,
        cast(null as {{ dbt.type_timestamp() }}) as episode_start_datetime,
        followup.end_of_followup_date as episode_end_date,
        cast(null as {{ dbt.type_timestamp() }}) as episode_end_datetime,
        cast(null as {{ dbt.type_bigint() }}) as episode_parent_id,
        cast(null as integer) as episode_number,
        cast({{ var('concept_all') }} as {{ dbt.type_bigint() }}) as episode_object_concept_id,
        cast({{ var('concept_standard_algorithm') }} as {{ dbt.type_bigint() }})
            as episode_type_concept_id,
        cast('ALL' as {{ dbt.type_string() }}) as episode_source_value,
        cast(0 as {{ dbt.type_bigint() }}) as episode_source_concept_id
    from diagnoses
    inner join followup on followup.person_id = diagnoses.person_id
),

regimens as (
    select
        cast({{ episode_id_of('lines.person_id', 'lines.line_number') }} as {{ dbt.type_bigint() }}) as episode_id,
        lines.person_id,
        cast({{ var('concept_episode_treatment_regimen') }} as {{ dbt.type_bigint() }})
            as episode_concept_id,
        lines.line_start_date as episode_start_date,
        cast(null as {{ dbt.type_timestamp() }}) as episode_start_datetime,
        case
            when placed_hsct.last_hsct_date > lines.line_end_date then placed_hsct.last_hsct_date
            else lines.line_end_date
        end as episode_end_date,
        cast(null as {{ dbt.type_timestamp() }}) as episode_end_datetime,
        cast({{ episode_id_of('lines.person_id', 0) }} as {{ dbt.type_bigint() }}) as episode_parent_id,
        cast(lines.line_number as integer) as episode_number,
        cast(lines.regimen_concept_id as {{ dbt.type_bigint() }}) as episode_object_concept_id,
        cast({{ var('concept_standard_algorithm') }} as {{ dbt.type_bigint() }})
            as episode_type_concept_id,
        cast(substr(lines.modality || ': ' || lines.regimen, 1, 50) as {{ dbt.type_string() }})
            as episode_source_value,
        cast(0 as {{ dbt.type_bigint() }}) as episode_source_concept_id
    from lines
    left join placed_hsct
        on placed_hsct.person_id = lines.person_id
       and placed_hsct.line_number = lines.line_number
),

disease_status as (
    select
        cast(
            {{ episode_id_of('ended.person_id', "case when ended.kind = 'relapse' then 800 else 900 end + ended.kind_number") }}
            as {{ dbt.type_bigint() }}
        ) as episode_id,
        ended.person_id,
        cast(
            case
                when ended.kind = 'remission' then {{ var('concept_episode_remission') }}
                when ended.after_remission = 1 then {{ var('concept_episode_recurrence') }}
                else {{ var('concept_episode_progression') }}
            end as {{ dbt.type_bigint() }}
        ) as episode_concept_id,
        ended.start_date as episode_start_date,
        cast(null as {{ dbt.type_timestamp() }}) as episode_start_datetime,
        case
            when ended.next_change_date is not null then ended.next_change_date
            when followup.end_of_followup_date < ended.start_date then ended.start_date
            else followup.end_of_followup_date
        end as episode_end_date,
        cast(null as {{ dbt.type_timestamp() }}) as episode_end_datetime,
        cast({{ episode_id_of('ended.person_id', 0) }} as {{ dbt.type_bigint() }}) as episode_parent_id,
        cast(ended.kind_number as integer) as episode_number,
        cast({{ var('concept_all') }} as {{ dbt.type_bigint() }}) as episode_object_concept_id,
        cast({{ var('concept_standard_algorithm') }} as {{ dbt.type_bigint() }})
            as episode_type_concept_id,
        cast(ended.source_value as {{ dbt.type_string() }}) as episode_source_value,
        cast(0 as {{ dbt.type_bigint() }}) as episode_source_concept_id
    from ended
    inner join followup on followup.person_id = ended.person_id
),

final as (
    select * from disease
    union all
    select * from regimens
    union all
    select * from disease_status
)

select * from final
