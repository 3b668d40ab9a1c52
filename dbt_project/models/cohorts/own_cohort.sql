-- OMOP cohort rows: a person is in a cohort when they pass every rule of it; the cohort
-- starts at the cohort's start date and ends at the end of follow-up (death or last
-- observation).
with flags as (
    select * from {{ ref('cohort_flags') }}
),

dates as (
    select
        followup.person_id,
        course.cart_date,
        course.relapse_date,
        salvage.salvage_start_date,
        followup.end_of_followup_date
    from {{ ref('int__person_followup') }} as followup
    left join {{ ref('int__cart_course') }} as course
        on course.person_id = followup.person_id
    left join {{ ref('int__salvage_after_relapse') }} as salvage
        on salvage.person_id = followup.person_id
),

{% for cohort in cohort_definitions() %}
cohort_{{ cohort['id'] }} as (
    select
        cast({{ cohort['id'] }} as {{ dbt.type_bigint() }}) as cohort_definition_id,
        flags.person_id as subject_id,
        dates.{{ cohort['start'] }} as cohort_start_date,
        dates.end_of_followup_date as cohort_end_date
    from flags
    inner join dates on dates.person_id = flags.person_id
    where {% for rule in cohort['rules'] %}flags.{{ rule }} = 1{% if not loop.last %} and {% endif %}{% endfor %}
),
{% endfor %}

final as (
    {% for cohort in cohort_definitions() %}
    select * from cohort_{{ cohort['id'] }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from final
