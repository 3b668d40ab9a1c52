{#- Spark (dbt-spark) implementations of dbt's own cross-database macros, found through the
    `dispatch` search order in dbt_project.yml (this project before dbt). The models call
    dbt.listagg() etc. unchanged on every adapter. -#}

{#- dbt-spark's listagg builds collect_list + array_join and ignores the ORDER BY, so a
    regimen could read 'tki:3+chemotherapy:1' on one run and the reverse on another.
    Spark 4 has the SQL-standard LISTAGG ... WITHIN GROUP (ORDER BY ...). -#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if limit_num -%}
        {{ exceptions.raise_compiler_error("listagg with a limit is not supported on Spark") }}
    {%- endif -%}
    listagg({{ measure }}, {{ delimiter_text }})
    {%- if order_by_clause %} within group ({{ order_by_clause }}){% endif %}
{%- endmacro %}

{#- Seeds on Spark: dbt-spark's session connection formats every binding as a quoted string,
    so an empty CSV cell (None) would load as the string 'None'. Same statements as
    dbt-spark's spark__load_csv_rows, with an empty cell written as null and only the other
    cells bound. -#}
{% macro spark__load_csv_rows(model, agate_table) %}
  {% set batch_size = get_batch_size() %}
  {% set column_override = model['config'].get('column_types', {}) %}
  {% set statements = [] %}
  {% for chunk in agate_table.rows | batch(batch_size) %}
      {% set bindings = [] %}
      {% for row in chunk %}
          {% for value in row %}
              {% if value is not none %}{% do bindings.append(value) %}{% endif %}
          {% endfor %}
      {% endfor %}
      {% set sql %}
          insert into {{ this.render() }} values
          {% for row in chunk -%}
              ({%- for col_name in agate_table.column_names -%}
                  {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
                  {%- set type = column_override.get(col_name, inferred_type) -%}
                  {%- if row[loop.index0] is none -%}
                    cast(null as {{ type }})
                  {%- else -%}
                    cast({{ get_binding_char() }} as {{ type }})
                  {%- endif -%}
                  {%- if not loop.last %},{% endif -%}
              {%- endfor -%})
              {%- if not loop.last %},{% endif %}
          {%- endfor %}
      {% endset %}
      {% do adapter.add_query(sql, bindings=bindings, abridge_sql_log=True) %}
      {% if loop.index0 == 0 %}{% do statements.append(sql) %}{% endif %}
  {% endfor %}
  {{ return(statements[0]) }}
{% endmacro %}
