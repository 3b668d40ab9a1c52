-- A CDM record (event_id of one field) is linked to at most one Treatment Regimen episode:
-- lines partition a person's treatment records. Disease episodes may share a record with
-- a line (a relapse seen only through a new line links that line's first-day records).
-- Rows returned are failures.
with line_links as (
    select links.event_id, links.episode_event_field_concept_id, links.episode_id
    from {{ ref('own_episode_event') }} as links
    inner join {{ ref('own_episode') }} as episodes
        on episodes.episode_id = links.episode_id
    where episodes.episode_concept_id = {{ var('concept_episode_treatment_regimen') }}
)

select event_id, episode_event_field_concept_id, count(*) as line_episodes
from line_links
group by event_id, episode_event_field_concept_id
having count(*) > 1
