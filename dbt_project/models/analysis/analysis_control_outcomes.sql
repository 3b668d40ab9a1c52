-- Control outcomes of the study-A mart: for every person of the mart and every condition
-- concept set, the first occurrence strictly after the index date (one row per person and
-- set that has one). The study spec names which sets are negative / positive controls;
-- the study runner turns the dates into times with the primary outcome's censoring.
with mart as (
    select person_id, index_date from {{ ref('analysis_hsct_after_cart') }}
),

events as (
    select concept_set_name, person_id, start_date from {{ ref('int__condition_events') }}
),

final as (
    select
        cast('analysis_hsct_after_cart' as {{ dbt.type_string() }}) as mart,
        events.concept_set_name,
        mart.person_id,
        min(events.start_date) as first_date
    from mart
    inner join events
        on events.person_id = mart.person_id
       and events.start_date > mart.index_date
    group by events.concept_set_name, mart.person_id
)

select * from final
