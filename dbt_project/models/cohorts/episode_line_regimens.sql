-- The HemOnc regimen concept of each line of therapy, for its Treatment Regimen episode's
-- episode_object_concept_id (OMOP oncology convention). A line's ingredients are those of
-- the agents it was built from (int__treatment_segments: an exposure belongs to the latest
-- line started on or before it; CAR-T agents are the product ingredient, 0 when only a
-- procedure recorded the infusion). The regimen is the HemOnc regimen whose components
-- (stg_cdm__regimen_components) are exactly the line's ingredients, as OHDSI
-- OncologyRegimenFinder matches them; the lowest concept_id when several match; 0 when none
-- does (a combination HemOnc does not list, or a CDM without HemOnc).
with lines as (
    select
        person_id,
        line_number,
        {{ day_number('line_start_date') }} as start_day,
        lead({{ day_number('line_start_date') }}) over (
            partition by person_id order by line_number
        ) as next_start_day
    from {{ ref('int__lines_of_therapy') }}
),

segments as (
    select distinct person_id, start_day, agent_key
    from {{ ref('int__treatment_segments') }}
),

line_agents as (
    select distinct
        lines.person_id,
        lines.line_number,
        cast({{ dbt.split_part('segments.agent_key', "':'", 2) }} as {{ dbt.type_bigint() }})
            as ingredient_concept_id
    from lines
    inner join segments
        on segments.person_id = lines.person_id
       and segments.start_day >= lines.start_day
       and (lines.next_start_day is null or segments.start_day < lines.next_start_day)
),

line_sizes as (
    select person_id, line_number, count(*) as n_agents
    from line_agents
    group by person_id, line_number
),

components as (
    select * from {{ ref('stg_cdm__regimen_components') }}
),

regimen_sizes as (
    select regimen_concept_id, count(*) as n_components
    from components
    group by regimen_concept_id
),

shared as (
    select line_agents.person_id, line_agents.line_number, components.regimen_concept_id,
        count(*) as n_shared
    from line_agents
    inner join components on components.ingredient_concept_id = line_agents.ingredient_concept_id
    group by line_agents.person_id, line_agents.line_number, components.regimen_concept_id
),

matches as (
    select shared.person_id, shared.line_number, min(shared.regimen_concept_id) as regimen_concept_id
    from shared
    inner join line_sizes
        on line_sizes.person_id = shared.person_id
       and line_sizes.line_number = shared.line_number
       and line_sizes.n_agents = shared.n_shared
    inner join regimen_sizes
        on regimen_sizes.regimen_concept_id = shared.regimen_concept_id
       and regimen_sizes.n_components = shared.n_shared
    group by shared.person_id, shared.line_number
),

final as (
    select
        lines.person_id,
        lines.line_number,
        cast(coalesce(matches.regimen_concept_id, 0) as {{ dbt.type_bigint() }})
            as regimen_concept_id
    from lines
    left join matches
        on matches.person_id = lines.person_id
       and matches.line_number = lines.line_number
)

select * from final
