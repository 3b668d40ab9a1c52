-- Disease status evidence, one row per person, date and status: remission, relapse or
-- refractory codes (standard SNOMED concepts, or ICD-10-CM / ICD-9-CM source codes such as
-- C91.01 / C91.02 matched through *_source_concept_id).
with events as (
    select * from {{ ref('int__condition_events') }}
    where concept_set_name in ('all_in_remission', 'all_in_relapse', 'all_refractory')
),

final as (
    select
        person_id,
        start_date as status_date,
        case concept_set_name
            when 'all_in_remission' then 'remission'
            when 'all_in_relapse' then 'relapse'
            else 'refractory'
        end as status,
        count(*) as n_records
    from events
    group by person_id, start_date, concept_set_name
)

select * from final
