-- The shared episode table of the results schema (its name is var('episode_table')). Only the
-- rows this build owns are replaced by own_episode (OMOP episode rows this build derives (disease and line-of-therapy episodes));
-- rows of other cohorts / episodes in the table survive (macros/own_rows.sql).
-- depends_on: {{ ref('episode_event') }} (published first: its pre-hook reads the previous episodes)
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=false,
    on_schema_change='append_new_columns',
    alias=var('episode_table'),
    pre_hook="{{ own_rows_delete('episode') }}"
) }}
select * from {{ ref('own_episode') }}
