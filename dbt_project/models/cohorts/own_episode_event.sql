-- OMOP episode_event rows linking each line-of-therapy episode to its drug exposures
-- (episode_event_field_concept_id = drug_exposure.drug_exposure_id) and to the procedure
-- records of the transplants it contains (procedure_occurrence.procedure_occurrence_id).
-- Lymphodepleting chemotherapy is linked to the CAR-T line it prepares; conditioning to the
-- line of the transplant it belongs to (int__hsct_placement); every other exposure to the
-- latest line started on or before it.
with lines as (
    select * from {{ ref('own_episode') }}
    where episode_concept_id = {{ var('concept_episode_treatment_regimen') }}
),

line_modality as (
    select person_id, line_start_date, has_cart from {{ ref('int__lines_of_therapy') }}
),

exposures as (
    select person_id, event_id, start_date, absorbed_into
    from {{ ref('int__antineoplastic_exposures') }}
    union all
    select person_id, event_id, start_date, cast(null as {{ dbt.type_string() }})
    from {{ ref('int__drug_events') }}
    where concept_set_name = 'cart_cd19_products'
),

placements as (
    select * from {{ ref('int__hsct_placement') }}
    where line_number is not null
),

to_transplant_line as (
    select exposures.event_id, min(placements.line_start_date) as line_start_date, exposures.person_id
    from exposures
    inner join placements
        on placements.person_id = exposures.person_id
       and placements.hsct_date >= exposures.start_date
       and placements.hsct_date <= {{ add_days('exposures.start_date', var('conditioning_days')) }}
    where exposures.absorbed_into = 'hsct_conditioning'
    group by exposures.person_id, exposures.event_id
),

to_cart_line as (
    select exposures.event_id, min(lines.episode_start_date) as line_start_date, exposures.person_id
    from exposures
    inner join line_modality
        on line_modality.person_id = exposures.person_id
       and line_modality.has_cart = 1
       and line_modality.line_start_date >= exposures.start_date
    inner join lines
        on lines.person_id = line_modality.person_id
       and lines.episode_start_date = line_modality.line_start_date
    where exposures.absorbed_into = 'cart_lymphodepletion'
    group by exposures.person_id, exposures.event_id
),

to_latest_line as (
    select exposures.event_id, max(lines.episode_start_date) as line_start_date, exposures.person_id
    from exposures
    inner join lines
        on lines.person_id = exposures.person_id
       and lines.episode_start_date <= exposures.start_date
    where (exposures.absorbed_into is null or exposures.absorbed_into <> 'cart_lymphodepletion')
      and not exists (
          select 1 from to_transplant_line
          where to_transplant_line.event_id = exposures.event_id
      )
    group by exposures.person_id, exposures.event_id
),

linked as (
    select * from to_cart_line
    union all
    select * from to_transplant_line
    union all
    select * from to_latest_line
),

drug_events as (
    select distinct
        lines.episode_id,
        linked.event_id,
        cast({{ var('concept_field_drug_exposure_id') }} as {{ dbt.type_bigint() }})
            as episode_event_field_concept_id
    from linked
    inner join lines
        on lines.person_id = linked.person_id
       and lines.episode_start_date = linked.line_start_date
),

procedure_events as (
    select distinct
        lines.episode_id,
        records.event_id,
        cast({{ var('concept_field_procedure_occurrence_id') }} as {{ dbt.type_bigint() }})
            as episode_event_field_concept_id
    from {{ ref('int__hsct_records') }} as records
    inner join placements
        on placements.person_id = records.person_id
       and placements.hsct_type = records.hsct_type
       and placements.transplant_number = records.transplant_number
    inner join lines
        on lines.person_id = placements.person_id
       and lines.episode_number = placements.line_number
),

final as (
    select * from drug_events
    union all
    select * from procedure_events
)

select * from final
