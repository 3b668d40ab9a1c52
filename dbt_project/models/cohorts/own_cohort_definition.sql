-- OMOP cohort_definition rows for the cohorts in macros/cohort_definitions.sql (every CDM
-- v5.4 column: subjects are persons; no initiation date, builds are not dated).
{% for cohort in cohort_definitions() %}
select
    cast({{ cohort['id'] }} as {{ dbt.type_bigint() }}) as cohort_definition_id,
    cast('{{ cohort['name'] }}' as {{ dbt.type_string() }}) as cohort_definition_name,
    cast('{{ cohort['description'] }}' as {{ dbt.type_string() }}) as cohort_definition_description,
    cast({{ var('concept_standard_algorithm') }} as {{ dbt.type_bigint() }}) as definition_type_concept_id,
    cast('rules: {{ cohort['rules'] | join(', ') }}' as {{ dbt.type_string() }}) as cohort_definition_syntax,
    cast({{ var('concept_domain_person') }} as {{ dbt.type_bigint() }}) as subject_concept_id,
    cast(null as date) as cohort_initiation_date
{% if not loop.last %}union all{% endif %}
{% endfor %}
