-- The shared cohort table of the results schema (its name is var('cohort_table')). Only the
-- rows this build owns are replaced by own_cohort (OMOP cohort rows of the cohorts in macros/cohort_definitions.sql);
-- rows of other cohorts / episodes in the table survive (macros/own_rows.sql).
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=false,
    on_schema_change='append_new_columns',
    alias=var('cohort_table'),
    pre_hook="{{ own_rows_delete('cohort') }}"
) }}
select * from {{ ref('own_cohort') }}
