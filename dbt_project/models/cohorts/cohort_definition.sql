-- The shared cohort_definition table of the results schema (its name is var('cohort_definition_table')). Only the
-- rows this build owns are replaced by own_cohort_definition (OMOP cohort_definition rows of the cohorts in macros/cohort_definitions.sql);
-- rows of other cohorts / episodes in the table survive (macros/own_rows.sql).
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=false,
    on_schema_change='append_new_columns',
    alias=var('cohort_definition_table'),
    pre_hook="{{ own_rows_delete('cohort_definition') }}"
) }}
select * from {{ ref('own_cohort_definition') }}
