-- Attrition per cohort: after each rule (in order), the persons still in and the persons
-- that rule removed. Rule 0 is every person in the CDM.
with flags as (
    select * from {{ ref('cohort_flags') }}
),

cdm_persons as (
    select count(*) as n from {{ ref('stg_cdm__person') }}
),

{% for cohort in cohort_definitions() %}
counts_{{ cohort['id'] }} as (
    select
        max(cdm_persons.n) as remaining_0
        {%- for rule in cohort['rules'] %},
        coalesce(sum(case when {% for earlier in cohort['rules'][:loop.index] %}{{ earlier }} = 1{% if not loop.last %} and {% endif %}{% endfor %} then 1 else 0 end), 0) as remaining_{{ loop.index }}
        {%- endfor %}
    from cdm_persons
    left join flags on 1 = 1
),

steps_{{ cohort['id'] }} as (
    select 0 as rule_number, 'persons in the CDM' as rule_name,
        remaining_0 as persons_remaining, 0 as persons_removed
    from counts_{{ cohort['id'] }}
    {%- for rule in cohort['rules'] %}
    union all
    select {{ loop.index }}, '{{ rule }}',
        remaining_{{ loop.index }}, remaining_{{ loop.index0 }} - remaining_{{ loop.index }}
    from counts_{{ cohort['id'] }}
    {%- endfor %}
),
{% endfor %}

final as (
    {% for cohort in cohort_definitions() %}
    select
        cast({{ cohort['id'] }} as {{ dbt.type_bigint() }}) as cohort_definition_id,
        cast('{{ cohort['name'] }}' as {{ dbt.type_string() }}) as cohort_definition_name,
        cast(rule_number as integer) as rule_number,
        cast(rule_name as {{ dbt.type_string() }}) as rule_name,
        cast(persons_remaining as {{ dbt.type_bigint() }}) as persons_remaining,
        cast(persons_removed as {{ dbt.type_bigint() }}) as persons_removed
    from steps_{{ cohort['id'] }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from final
