-- One row per person in the CDM with a 0/1 flag per cohort rule (tuva-style): the
-- cohorts and their attrition are computed from these flags.
with person as (
    select person_id from {{ ref('stg_cdm__person') }}
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
