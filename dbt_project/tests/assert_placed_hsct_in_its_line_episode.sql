-- Every transplant placed in a line: each of its procedure records is an episode_event of
-- that line's Treatment Regimen episode (field procedure_occurrence_id), and the episode
-- does not end before the transplant. Rows returned are failures.
with placed as (
    select records.event_id, placements.person_id, placements.line_number, placements.hsct_date
    from {{ ref('int__hsct_records') }} as records
    inner join {{ ref('int__hsct_placement') }} as placements
        on placements.person_id = records.person_id
       and placements.hsct_type = records.hsct_type
       and placements.transplant_number = records.transplant_number
    where placements.line_number is not null
),

line_episodes as (
    select episode_id, person_id, episode_number, episode_end_date
    from {{ ref('episode') }}
    where episode_concept_id = {{ var('concept_episode_treatment_regimen') }}
)

select placed.*
from placed
left join line_episodes
    on line_episodes.person_id = placed.person_id
   and line_episodes.episode_number = placed.line_number
left join {{ ref('episode_event') }} as links
    on links.episode_id = line_episodes.episode_id
   and links.event_id = placed.event_id
   and links.episode_event_field_concept_id = {{ var('concept_field_procedure_occurrence_id') }}
where links.episode_id is null
   or line_episodes.episode_end_date < placed.hsct_date
