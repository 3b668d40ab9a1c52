-- OMOP episode_event rows: the CDM records each episode of own_episode consists of, with
-- the field concept of their table (episode_event_field_concept_id):
--   * Treatment Regimen episodes: their drug exposures (drug_exposure.drug_exposure_id),
--     their CAR-T administration procedures and the procedure records of the transplants
--     they contain (procedure_occurrence.procedure_occurrence_id). Lymphodepleting
--     chemotherapy is linked to the CAR-T line it prepares; conditioning to the line of
--     the transplant it belongs to (int__hsct_placement); every other record to the
--     latest line started on or before it;
--   * Disease First Occurrence: the ALL diagnosis records of its start date
--     (condition_occurrence.condition_occurrence_id);
--   * Disease Recurrence / Progression: the relapse or refractory codes of its start date;
--     a relapse seen only through a new line links that line's records of its first day;
--   * Disease Remission: the remission codes of its start date.
with episodes as (
    select * from {{ ref('own_episode') }}
),

lines as (
    select * from episodes
    where episode_concept_id = {{ var('concept_episode_treatment_regimen') }}
),

line_modality as (
    select person_id, line_start_date, has_cart from {{ ref('int__lines_of_therapy') }}
),

-- the records lines are made of: drug exposures, and the CAR-T administration procedures
-- (an infusion recorded by a procedure only has no drug record)
records as (
    select
        person_id, event_id, start_date, absorbed_into,
        {{ var('concept_field_drug_exposure_id') }} as field_concept_id
    from {{ ref('int__antineoplastic_exposures') }}
    union all
    select
        person_id, event_id, start_date, cast(null as {{ dbt.type_string() }}),
        {{ var('concept_field_drug_exposure_id') }}
    from {{ ref('int__drug_events') }}
    where concept_set_name = 'cart_cd19_products'
    union all
    select
        person_id, event_id, start_date, cast(null as {{ dbt.type_string() }}),
        {{ var('concept_field_procedure_occurrence_id') }}
    from {{ ref('int__procedure_events') }}
    where concept_set_name = 'cart_administration'
),

placements as (
    select * from {{ ref('int__hsct_placement') }}
    where line_number is not null
),

to_transplant_line as (
    select
        records.person_id, records.event_id, records.field_concept_id, records.start_date,
        min(placements.line_start_date) as line_start_date
    from records
    inner join placements
        on placements.person_id = records.person_id
       and placements.hsct_date >= records.start_date
       and placements.hsct_date <= {{ add_days('records.start_date', var('conditioning_days')) }}
    where records.absorbed_into = 'hsct_conditioning'
    group by records.person_id, records.event_id, records.field_concept_id, records.start_date
),

to_cart_line as (
    select
        records.person_id, records.event_id, records.field_concept_id, records.start_date,
        min(lines.episode_start_date) as line_start_date
    from records
    inner join line_modality
        on line_modality.person_id = records.person_id
       and line_modality.has_cart = 1
       and line_modality.line_start_date >= records.start_date
    inner join lines
        on lines.person_id = line_modality.person_id
       and lines.episode_start_date = line_modality.line_start_date
    where records.absorbed_into = 'cart_lymphodepletion'
    group by records.person_id, records.event_id, records.field_concept_id, records.start_date
),

to_latest_line as (
    select
        records.person_id, records.event_id, records.field_concept_id, records.start_date,
        max(lines.episode_start_date) as line_start_date
    from records
    inner join lines
        on lines.person_id = records.person_id
       and lines.episode_start_date <= records.start_date
    where (records.absorbed_into is null or records.absorbed_into <> 'cart_lymphodepletion')
      and not exists (
          select 1 from to_transplant_line
          where to_transplant_line.event_id = records.event_id
            and to_transplant_line.field_concept_id = records.field_concept_id
      )
    group by records.person_id, records.event_id, records.field_concept_id, records.start_date
),

linked as (
    select * from to_cart_line
    union all
    select * from to_transplant_line
    union all
    select * from to_latest_line
),

record_events as (
    select distinct
        lines.episode_id,
        linked.event_id,
        cast(linked.field_concept_id as {{ dbt.type_bigint() }}) as episode_event_field_concept_id,
        linked.start_date
    from linked
    inner join lines
        on lines.person_id = linked.person_id
       and lines.episode_start_date = linked.line_start_date
),

transplant_events as (
    select distinct
        lines.episode_id,
        records.event_id,
        cast({{ var('concept_field_procedure_occurrence_id') }} as {{ dbt.type_bigint() }})
            as episode_event_field_concept_id,
        records.start_date
    from {{ ref('int__hsct_records') }} as records
    inner join placements
        on placements.person_id = records.person_id
       and placements.hsct_type = records.hsct_type
       and placements.transplant_number = records.transplant_number
    inner join lines
        on lines.person_id = placements.person_id
       and lines.episode_number = placements.line_number
),

line_events as (
    select * from record_events
    union all
    select * from transplant_events
),

conditions as (
    select person_id, event_id, start_date, concept_set_name
    from {{ ref('int__condition_events') }}
    where concept_set_name in ('all_leukemia', 'all_in_relapse', 'all_refractory', 'all_in_remission')
),

disease_events as (
    select distinct
        episodes.episode_id,
        conditions.event_id,
        cast({{ var('concept_field_condition_occurrence_id') }} as {{ dbt.type_bigint() }})
            as episode_event_field_concept_id
    from episodes
    inner join conditions
        on conditions.person_id = episodes.person_id
       and conditions.start_date = episodes.episode_start_date
    where (
        episodes.episode_concept_id = {{ var('concept_episode_disease') }}
        and conditions.concept_set_name = 'all_leukemia'
    ) or (
        episodes.episode_concept_id in (
            {{ var('concept_episode_recurrence') }}, {{ var('concept_episode_progression') }}
        )
        and conditions.concept_set_name in ('all_in_relapse', 'all_refractory')
    ) or (
        episodes.episode_concept_id = {{ var('concept_episode_remission') }}
        and conditions.concept_set_name = 'all_in_remission'
    )
),

-- a relapse without a code on its date is the start of a new line: that line's records
-- of its first day
relapse_line_events as (
    select distinct
        relapses.episode_id,
        line_events.event_id,
        line_events.episode_event_field_concept_id
    from episodes as relapses
    inner join lines
        on lines.person_id = relapses.person_id
       and lines.episode_start_date = relapses.episode_start_date
    inner join line_events
        on line_events.episode_id = lines.episode_id
       and line_events.start_date = lines.episode_start_date
    where relapses.episode_concept_id in (
            {{ var('concept_episode_recurrence') }}, {{ var('concept_episode_progression') }}
        )
      and not exists (
          select 1 from disease_events
          where disease_events.episode_id = relapses.episode_id
      )
),

final as (
    select episode_id, event_id, episode_event_field_concept_id from line_events
    union all
    select * from disease_events
    union all
    select * from relapse_line_events
)

select * from final
