-- Every transplant placed in a line of a person with episodes: each of its procedure
-- records is an episode_event of that line's Treatment Regimen episode (field
-- procedure_occurrence_id), and the episode does not end before the transplant. Episodes
-- exist only for persons with an ALL disease episode (models/cohorts/own_episode.sql); an
-- HSCT of anyone else (e.g. a lymphoma patient treated with CAR-T) is placed in a line
-- (int__hsct_placement covers every person) but has no episode to be in, by design.
-- Rows returned are failures; set operations and one aggregate, no joins to plan.
with episode_persons as (
    select person_id
    from {{ ref('own_episode') }}
    where episode_concept_id = {{ var('concept_episode_disease') }}
),

placed as (
    select
        records.event_id,
        {{ episode_id_of('placements.person_id', 'placements.line_number') }} as line_episode_id,
        placements.hsct_date
    from {{ ref('int__hsct_records') }} as records
    inner join {{ ref('int__hsct_placement') }} as placements
        on placements.person_id = records.person_id
       and placements.hsct_type = records.hsct_type
       and placements.transplant_number = records.transplant_number
    where placements.line_number is not null
      and placements.person_id in (select person_id from episode_persons)
),

links as (
    select episode_id, event_id
    from {{ ref('own_episode_event') }}
    where episode_event_field_concept_id = {{ var('concept_field_procedure_occurrence_id') }}
),

line_episodes as (
    select episode_id, episode_end_date
    from {{ ref('own_episode') }}
    where episode_concept_id = {{ var('concept_episode_treatment_regimen') }}
),

missing_links as (
    select line_episode_id as episode_id, event_id from placed
    except
    select episode_id, event_id from links
),

dates as (
    select line_episode_id as episode_id, hsct_date as day, 1 as is_hsct from placed
    union all
    select episode_id, episode_end_date, 0 from line_episodes
),

bad_episodes as (
    select episode_id
    from dates
    group by episode_id
    having max(is_hsct) = 1
       and (
           min(is_hsct) = 1
           or max(case when is_hsct = 1 then day end) > max(case when is_hsct = 0 then day end)
       )
)

select episode_id, event_id, 'procedure record not linked to its line' as failure
from missing_links
union all
select episode_id, cast(null as {{ dbt.type_bigint() }}), 'line episode missing or ends before the HSCT'
from bad_episodes
