-- One row per person with an ALL diagnosis (every cohort's first rule) and a 0/1 flag per
-- cohort rule (tuva-style): the cohorts and their attrition are computed from these
-- flags; cohort_attrition counts the persons in the CDM separately.
with person as (
    select person_id from {{ ref('int__all_diagnoses') }}
),

{% for rule in cohort_rule_names() %}
{{ rule }} as (
    select distinct person_id from {{ ref('rule__' ~ rule) }}
),
{% endfor %}

final as (
    select
        person.person_id
        {%- for rule in cohort_rule_names() %},
        case when {{ rule }}.person_id is null then 0 else 1 end as {{ rule }}
        {%- endfor %}
    from person
    {%- for rule in cohort_rule_names() %}
    left join {{ rule }} on {{ rule }}.person_id = person.person_id
    {%- endfor %}
)

select * from final
