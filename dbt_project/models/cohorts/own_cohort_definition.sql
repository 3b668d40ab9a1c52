-- OMOP cohort_definition rows for the cohorts in macros/cohort_definitions.sql, every CDM
-- v5.4 column. Subjects are persons (subject_concept_id: the Person domain's concept).
-- cohort_initiation_date, when the cohort rows were instantiated, is the release date of
-- the CDM they were built from (cdm_source.cdm_release_date, the latest if several rows):
-- the same CDM always gives the same date, never "today". Null when the CDM has no
-- cdm_source table (the data-quality stage does not require one).
{%- set cdm_source = source('cdm', 'cdm_source') -%}
{%- set has_cdm_source = execute and adapter.get_relation(
    database=cdm_source.database, schema=cdm_source.schema, identifier=cdm_source.identifier
) is not none %}
with release as (
{%- if has_cdm_source %}
    select max(cdm_release_date) as cdm_release_date from {{ cdm_source }}
{%- else %}
    select cast(null as date) as cdm_release_date
{%- endif %}
)
{% for cohort in cohort_definitions() %}
select
    cast({{ cohort['id'] }} as {{ dbt.type_bigint() }}) as cohort_definition_id,
    cast('{{ cohort['name'] }}' as {{ dbt.type_string() }}) as cohort_definition_name,
    cast('{{ cohort['description'] }}' as {{ dbt.type_string() }}) as cohort_definition_description,
    cast({{ var('concept_standard_algorithm') }} as {{ dbt.type_bigint() }}) as definition_type_concept_id,
    cast('rules: {{ cohort['rules'] | join(', ') }}' as {{ dbt.type_string() }}) as cohort_definition_syntax,
    cast({{ var('concept_domain_person') }} as {{ dbt.type_bigint() }}) as subject_concept_id,
    cast(release.cdm_release_date as date) as cohort_initiation_date
from release
{% if not loop.last %}union all{% endif %}
{% endfor %}
