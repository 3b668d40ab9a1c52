{#- The OMOP tables this build shares with other tools (a site's cohort table written by
    CohortGenerator / ATLAS, episodes written by an oncology ETL) are written row by row:
    each run deletes only the rows it owns and inserts its new ones, in one transaction
    (the publishing models in models/cohorts/ are incremental `append` models with
    full_refresh off, and own_rows_delete() as their pre-hook; a column this project adds
    later is added to the shared table, append_new_columns). Rows of other cohort ids or
    episodes are never touched.

    Which rows are "own":
      cohort, cohort_definition: cohort_definition_id in own_cohort_ids() (the cohort list
        plus var('cohort_id_offset'));
      episode: episodes of the kinds this build derives (Disease First Occurrence, Treatment
        Regimen, Disease Recurrence / Progression / Remission; type Standard algorithm) with
        an id of this build's scheme (episode_id_of(person_id, n) for n in 0..999);
      episode_event: links of those episodes (read from the episode table before it is
        republished: episode_event is published first). -#}

{#- The id of a person's episode number n (0 = the disease episode, 1-799 the line number,
    800 + k the k-th relapse, 900 + k the k-th remission; models/cohorts/own_episode.sql):
    var('episode_id_offset') + person_id * 1000 + n. -#}
{% macro episode_id_of(person_id, number) -%}
    ({{ var('episode_id_offset') | int }} + {{ person_id }} * 1000 + {{ number }})
{%- endmacro %}

{#- SQL condition true for the rows of `kind` (cohort, cohort_definition, episode,
    episode_event) this build owns; `episode_relation` is the episode table episode_event
    links are looked up in. -#}
{% macro own_rows_condition(kind, episode_relation=none) %}
    {%- if kind in ('cohort', 'cohort_definition') -%}
        cohort_definition_id in ({{ own_cohort_ids() | join(', ') }})
    {%- elif kind == 'episode' -%}
        episode_type_concept_id = {{ var('concept_standard_algorithm') }}
        and episode_concept_id in (
            {{ var('concept_episode_disease') }}, {{ var('concept_episode_treatment_regimen') }},
            {{ var('concept_episode_recurrence') }}, {{ var('concept_episode_progression') }},
            {{ var('concept_episode_remission') }}
        )
        and episode_id - {{ episode_id_of('person_id', 0) }} between 0 and 999
    {%- elif kind == 'episode_event' -%}
        episode_id in (select episode_id from {{ episode_relation }} where {{ own_rows_condition('episode') }})
    {%- else -%}
        {% do exceptions.raise_compiler_error("own_rows_condition: unknown kind " ~ kind) %}
    {%- endif -%}
{% endmacro %}

{#- Pre-hook of a publishing model: delete the rows it owns from its table, if the table
    exists (on the first run the incremental model creates it). -#}
{% macro own_rows_delete(kind) %}
    {%- set target = adapter.get_relation(this.database, this.schema, this.identifier) -%}
    {%- if execute and target is not none -%}
        {%- set episode = none -%}
        {%- if kind == 'episode_event' -%}
            {%- set episode = adapter.get_relation(this.database, this.schema, var('episode_table')) -%}
        {%- endif -%}
        {%- if kind != 'episode_event' or episode is not none -%}
            {{ adapter.dispatch('delete_rows')(target, own_rows_condition(kind, episode)) }}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}

{% macro default__delete_rows(relation, condition) -%}
    delete from {{ relation }} where {{ condition }}
{%- endmacro %}

{#- Spark tables (Parquet, Hive metastore) have no DELETE: keep the other rows in a side
    table and overwrite the table with them (not atomic: Spark has no transactions). The
    statements run here; the hook itself is empty. -#}
{% macro spark__delete_rows(relation, condition) -%}
    {%- set others = api.Relation.create(schema=relation.schema, identifier=relation.identifier ~ '__other_rows') -%}
    {%- do run_query('drop table if exists ' ~ others) -%}
    {%- do run_query('create table ' ~ others ~ ' as select * from ' ~ relation
        ~ ' where not coalesce((' ~ condition ~ '), false)') -%}
    {%- do run_query('insert overwrite table ' ~ relation ~ ' select * from ' ~ others) -%}
    {%- do run_query('drop table ' ~ others) -%}
{%- endmacro %}

{#- Test: the rows a publishing model owns in its table are exactly the rows of the model
    it publishes (nothing missing, nothing stale, no duplicates). -#}
{#- episode_event passes the published episode (ref: the test then runs after both). -#}
{% test publishes_own_rows(model, built, kind, episode=none) %}
{%- set columns = adapter.get_columns_in_relation(built) | map(attribute='name') | join(', ') -%}
with published as (
    select {{ columns }} from {{ model }} where {{ own_rows_condition(kind, episode) }}
),

missing as (
    select {{ columns }} from {{ built }}
    except all
    select {{ columns }} from published
),

stale as (
    select {{ columns }} from published
    except all
    select {{ columns }} from {{ built }}
)

select 'missing' as problem, missing.* from missing
union all
select 'stale or duplicate', stale.* from stale
{% endtest %}
