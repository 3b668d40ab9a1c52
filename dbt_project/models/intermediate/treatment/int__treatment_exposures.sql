-- The treatment timeline lines of therapy are built from: antineoplastic exposures not
-- absorbed by a CAR-T infusion or an HSCT, plus the CAR-T infusions themselves (agent class
-- 'cart'). Dates are integer day numbers so the window logic is plain integer arithmetic.
with exposures as (
    select * from {{ ref('int__antineoplastic_exposures') }}
    where absorbed_into is null
),

infusions as (
    select * from {{ ref('int__cart_infusions') }}
),

drugs as (
    select
        person_id,
        agent_class,
        agent_class || ':' || cast(agent_concept_id as {{ dbt.type_string() }}) as agent_key,
        {{ day_number('start_date') }} as start_day,
        {{ day_number('end_date') }} as end_day
    from exposures
),

cart as (
    select
        person_id,
        'cart' as agent_class,
        'cart:' || cast(coalesce(product_concept_id, 0) as {{ dbt.type_string() }}) as agent_key,
        {{ day_number('infusion_date') }} as start_day,
        {{ day_number('infusion_date') }} as end_day
    from infusions
),

final as (
    select person_id, agent_class, agent_key, start_day,
        case when end_day < start_day then start_day else end_day end as end_day
    from drugs
    union all
    select person_id, agent_class, agent_key, start_day, end_day from cart
)

select * from final
