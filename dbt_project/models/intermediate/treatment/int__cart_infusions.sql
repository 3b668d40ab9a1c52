-- CAR-T infusions: CD19 CAR-T drug records and CAR-T administration procedures of one
-- infusion (each record within var('cart_collapse_days') of the previous one) collapse to
-- one row. product_concept_id is the CAR-T ingredient named by the drug record (null when
-- only a procedure was recorded).
with records as (
    select
        person_id,
        start_date,
        'drug' as domain,
        event_id,
        item_concept_id as product_concept_id,
        {{ day_number('start_date') }} as start_day
    from {{ ref('int__drug_events') }}
    where concept_set_name = 'cart_cd19_products'
    union all
    select
        person_id,
        start_date,
        'procedure' as domain,
        event_id,
        cast(null as {{ dbt.type_bigint() }}) as product_concept_id,
        {{ day_number('start_date') }} as start_day
    from {{ ref('int__procedure_events') }}
    where concept_set_name = 'cart_administration'
),

ordered as (
    select
        records.*,
        lag(start_day) over (
            partition by person_id order by start_day, domain, event_id
        ) as previous_day
    from records
),

flagged as (
    select
        ordered.*,
        case
            when previous_day is null or start_day - previous_day > {{ var('cart_collapse_days') }}
                then 1
            else 0
        end as starts_infusion
    from ordered
),

numbered as (
    select
        flagged.*,
        sum(starts_infusion) over (
            partition by person_id order by start_day, domain, event_id
            rows between unbounded preceding and current row
        ) as infusion_number
    from flagged
),

final as (
    select
        person_id,
        cast(infusion_number as integer) as infusion_number,
        min(start_date) as infusion_date,
        min(product_concept_id) as product_concept_id,
        cast(count(*) as integer) as n_records,
        max(case when domain = 'drug' then 1 else 0 end) as has_drug_record,
        max(case when domain = 'procedure' then 1 else 0 end) as has_procedure_record
    from numbered
    group by person_id, infusion_number
)

select * from final
