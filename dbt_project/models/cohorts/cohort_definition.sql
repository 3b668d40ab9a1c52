-- OMOP cohort_definition rows for the cohorts in macros/cohort_definitions.sql.
{% for cohort in cohort_definitions() %}
select
    cast({{ cohort['id'] }} as {{ dbt.type_bigint() }}) as cohort_definition_id,
    cast('{{ cohort['name'] }}' as {{ dbt.type_string() }}) as cohort_definition_name,
    cast('{{ cohort['description'] }}' as {{ dbt.type_string() }}) as cohort_definition_description,
    cast({{ var('concept_standard_algorithm') }} as {{ dbt.type_bigint() }}) as definition_type_concept_id,
    cast('rules: {{ cohort['rules'] | join(', ') }}' as {{ dbt.type_string() }}) as cohort_definition_syntax
{% if not loop.last %}union all{% endif %}
{% endfor %}
