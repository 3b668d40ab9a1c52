-- The shared episode_event table of the results schema (its name is var('episode_event_table')). Only the
-- rows this build owns are replaced by own_episode_event (OMOP episode_event rows linking this build's episodes to drug and procedure records);
-- rows of other cohorts / episodes in the table survive (macros/own_rows.sql).
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=false,
    on_schema_change='append_new_columns',
    alias=var('episode_event_table'),
    pre_hook="{{ own_rows_delete('episode_event') }}"
) }}
select * from {{ ref('own_episode_event') }}
