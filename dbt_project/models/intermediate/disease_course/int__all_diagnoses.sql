-- One row per person with any ALL diagnosis: first diagnosis date and subtype flags.
with events as (
    select * from {{ ref('int__condition_events') }}
),

final as (
    select
        person_id,
        min(case when concept_set_name = 'all_leukemia' then start_date end) as first_all_date,
        min(case when concept_set_name = 'b_all' then start_date end) as first_b_all_date,
        min(case when concept_set_name = 't_all' then start_date end) as first_t_all_date,
        min(case when concept_set_name = 'ph_positive_all' then start_date end)
            as first_ph_positive_date,
        min(case when concept_set_name = 'cns_involvement' then start_date end)
            as first_cns_involvement_date
    from events
    where concept_set_name in ('all_leukemia', 'b_all', 't_all', 'ph_positive_all', 'cns_involvement')
    group by person_id
)

select * from final
where first_all_date is not null
