{#- Every cleaned event of one CDM domain that falls in a concept set, one row per (set,
    event). Standard concepts match the event's *_concept_id, source concepts its
    *_source_concept_id (Circe; DESIGN.md), so a source code kept with concept_id 0 still
    counts. One model per domain (int__<domain>_events) so that a cohort reads only the
    tables its criteria name, as Circe's SQL does: the CAR-T index cohort never scans
    measurement or observation. int__concept_set_events is their union for models that
    need several domains. -#}
{% macro concept_set_events(domain, staging_model, has_values=false) %}
with concept_sets as (
    select * from {{ ref('concept_set_concepts') }}
),

events as (
    select
        event_id,
        person_id,
        concept_id,
        source_concept_id,
        start_date,
        end_date,
        {% if has_values -%}
        cast(value_as_number as {{ dbt.type_float() }}) as value_as_number,
        cast(value_as_concept_id as {{ dbt.type_bigint() }}) as value_as_concept_id
        {%- else -%}
        cast(null as {{ dbt.type_float() }}) as value_as_number,
        cast(null as {{ dbt.type_bigint() }}) as value_as_concept_id
        {%- endif %}
    from {{ ref(staging_model) }}
),

matched as (
    select events.*, concept_sets.concept_set_name, concept_sets.item_concept_id
    from events
    inner join concept_sets
        on concept_sets.concept_id = events.concept_id
       and concept_sets.match_column = 'standard'
    union all
    select events.*, concept_sets.concept_set_name, concept_sets.item_concept_id
    from events
    inner join concept_sets
        on concept_sets.concept_id = events.source_concept_id
       and concept_sets.match_column = 'source'
),

final as (
    select
        concept_set_name,
        cast('{{ domain }}' as {{ dbt.type_string() }}) as domain,
        event_id,
        person_id,
        concept_id,
        source_concept_id,
        start_date,
        end_date,
        value_as_number,
        value_as_concept_id,
        min(item_concept_id) as item_concept_id
    from matched
    group by
        concept_set_name, event_id, person_id, concept_id, source_concept_id,
        start_date, end_date, value_as_number, value_as_concept_id
)

select * from final
{% endmacro %}
