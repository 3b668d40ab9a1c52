{#- Everything this project builds goes to the profile's results schema, unprefixed: the CDM
    schema is a read-only source, and a `schema:` config on a model is ignored. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ target.schema }}
{%- endmacro %}
