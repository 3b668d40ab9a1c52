-- Every cleaned CDM event that falls in a concept set, one row per (set, domain, event).
-- Standard concepts match the event's *_concept_id, source concepts its *_source_concept_id
-- (Circe; DESIGN.md), so a source code kept with concept_id 0 still counts.
{%- set domains = [
    ('condition', 'stg_cdm__condition_occurrence', false),
    ('drug', 'stg_cdm__drug_exposure', false),
    ('procedure', 'stg_cdm__procedure_occurrence', false),
    ('measurement', 'stg_cdm__measurement', true),
    ('observation', 'stg_cdm__observation', true),
] %}
with concept_sets as (
    select * from {{ ref('concept_set_concepts') }}
),

{% for domain, model, has_values in domains %}
{{ domain }}_events as (
    select
        '{{ domain }}' as domain,
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
    from {{ ref(model) }}
),

{{ domain }}_matched as (
    select {{ domain }}_events.*, concept_sets.concept_set_name, concept_sets.item_concept_id
    from {{ domain }}_events
    inner join concept_sets
        on concept_sets.concept_id = {{ domain }}_events.concept_id
       and concept_sets.match_column = 'standard'
    union all
    select {{ domain }}_events.*, concept_sets.concept_set_name, concept_sets.item_concept_id
    from {{ domain }}_events
    inner join concept_sets
        on concept_sets.concept_id = {{ domain }}_events.source_concept_id
       and concept_sets.match_column = 'source'
),

{% endfor %}
unioned as (
    {% for domain, model, has_values in domains %}
    select * from {{ domain }}_matched
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        concept_set_name,
        domain,
        event_id,
        person_id,
        concept_id,
        source_concept_id,
        start_date,
        end_date,
        value_as_number,
        value_as_concept_id,
        min(item_concept_id) as item_concept_id
    from unioned
    group by
        concept_set_name, domain, event_id, person_id, concept_id, source_concept_id,
        start_date, end_date, value_as_number, value_as_concept_id
)

select * from final
