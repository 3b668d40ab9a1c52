-- OMOP episode rows: one disease episode per person with ALL (Disease First Occurrence,
-- object = ALL) and one Treatment Regimen episode (32531) per line of therapy, with
-- episode_number = line number and the disease episode as parent. Ids are derived from
-- person_id and line number (episode_id_of: var('episode_id_offset') + person_id * 1000 +
-- line, 0 for the disease episode), so they are stable between builds. An HSCT has no episode of
-- its own: it is part of the line it consolidates (int__hsct_placement), whose episode ends
-- no earlier than the transplant and links its procedure records (episode_event).
with diagnoses as (
    select * from {{ ref('int__all_diagnoses') }}
),

followup as (
    select * from {{ ref('int__person_followup') }}
),

lines as (
    select lines.*
    from {{ ref('int__lines_of_therapy') }} as lines
    inner join diagnoses on diagnoses.person_id = lines.person_id
),

placed_hsct as (
    select person_id, line_number, max(hsct_date) as last_hsct_date
    from {{ ref('int__hsct_placement') }}
    where line_number is not null
    group by person_id, line_number
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
        cast(0 as {{ dbt.type_bigint() }}) as episode_object_concept_id,
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

final as (
    select * from disease
    union all
    select * from regimens
)

select * from final
