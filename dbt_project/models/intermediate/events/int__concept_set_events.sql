-- Every cleaned CDM event in a concept set, one row per (set, domain, event): the union of
-- the per-domain models (macros/concept_set_events.sql), for models that read several
-- domains at once. A view: it adds no scan and no copy.
{{ config(materialized='view') }}
{%- set domains = ['condition', 'drug', 'procedure', 'measurement', 'observation'] %}
{% for domain in domains %}
select
    concept_set_name, domain, event_id, person_id, concept_id, source_concept_id,
    start_date, end_date, value_as_number, value_as_concept_id, item_concept_id
from {{ ref('int__' ~ domain ~ '_events') }}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
