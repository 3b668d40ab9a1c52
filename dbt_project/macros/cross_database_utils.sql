{#- Portable date helpers. Dates become integer day numbers (days since 1970-01-01) where
    the time logic needs arithmetic: integer comparisons are identical on every warehouse.
    Dialect-specific pieces go through adapter.dispatch (default__ + per-adapter). -#}

{% macro day_number(date_expr) -%}
    {{ return(adapter.dispatch('day_number', 'cohort_etl')(date_expr)) }}
{%- endmacro %}

{% macro default__day_number(date_expr) -%}
    {{ dbt.datediff("cast('1970-01-01' as date)", date_expr, 'day') }}
{%- endmacro %}

{% macro day_to_date(day_expr) -%}
    {{ return(adapter.dispatch('day_to_date', 'cohort_etl')(day_expr)) }}
{%- endmacro %}

{% macro default__day_to_date(day_expr) -%}
    cast({{ dbt.dateadd('day', day_expr, "cast('1970-01-01' as date)") }} as date)
{%- endmacro %}

{% macro add_days(date_expr, days) -%}
    cast({{ dbt.dateadd('day', days, date_expr) }} as date)
{%- endmacro %}

{% macro year_of(date_expr) -%}
    {{ return(adapter.dispatch('year_of', 'cohort_etl')(date_expr)) }}
{%- endmacro %}

{% macro default__year_of(date_expr) -%}
    cast(extract(year from {{ date_expr }}) as integer)
{%- endmacro %}

{#- The earlier of two dates, ignoring nulls (least() treats nulls differently across
    warehouses, so spell it out). -#}
{% macro earliest(a, b) -%}
    case
        when {{ a }} is null then {{ b }}
        when {{ b }} is null then {{ a }}
        when {{ a }} <= {{ b }} then {{ a }}
        else {{ b }}
    end
{%- endmacro %}

{#- Pre-hook of the models where PostgreSQL's plan was measured to go wrong
    (the int__<domain>_events models, episode_event; see dbt_project.yml). PostgreSQL underestimates
    the rows of the inlined staging CTEs (cleaning filters, dedupe window) and joins them to
    the concept sets / lines by nested loops without an index: at test size (seed 1, 2,000
    persons) the events model took 2.7 s instead of 0.7 s and episode_event 1.3 s instead of
    0.2 s. `set local` confines the setting to the model's own transaction. Other warehouses:
    nothing (an empty hook is skipped). -#}
{% macro planner_settings() -%}
    {{ return(adapter.dispatch('planner_settings', 'cohort_etl')()) }}
{%- endmacro %}

{% macro default__planner_settings() -%}
{%- endmacro %}

{% macro postgres__planner_settings() -%}
    set local enable_nestloop = off
{%- endmacro %}

{#- Pre-hooks of the model with a recursive CTE (int__lines_of_therapy): Spark 4 caps a
    recursive CTE at 100 levels and 1M rows by default; the depth here is the number of lines
    in a treatment segment and the rows are every line start, which grow with the CDM.
    -1 = no limit. Other warehouses: nothing. -#}
{% macro recursion_limit(which) -%}
    {{ return(adapter.dispatch('recursion_limit', 'cohort_etl')(which)) }}
{%- endmacro %}

{% macro default__recursion_limit(which) -%}
{%- endmacro %}

{% macro spark__recursion_limit(which) -%}
    set spark.sql.cteRecursion{{ 'Level' if which == 'level' else 'Row' }}Limit = -1
{%- endmacro %}
