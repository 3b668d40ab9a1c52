-- Antineoplastic drug exposures (chemotherapy, TKIs, blinatumomab, inotuzumab), one row per
-- drug record, with the agent (the ingredient item of the concept set) and its class.
-- Lymphodepleting chemotherapy starting within var('lymphodepletion_days') before (or on the
-- day of) a CAR-T infusion belongs to the infusion, and conditioning chemotherapy within
-- var('conditioning_days') before an HSCT belongs to the transplant: both are marked
-- absorbed and are neither a new line nor evidence of relapse.
with events as (
    select * from {{ ref('int__drug_events') }}
),

infusions as (
    select * from {{ ref('int__cart_infusions') }}
),

transplants as (
    select * from {{ ref('int__hsct') }}
),

classified as (
    select
        person_id,
        event_id,
        start_date,
        end_date,
        min(case concept_set_name
            when 'blinatumomab' then 1
            when 'inotuzumab' then 2
            when 'tki' then 3
            when 'conventional_chemotherapy' then 4
        end) as class_rank,
        min(case when concept_set_name in (
            'blinatumomab', 'inotuzumab', 'tki', 'conventional_chemotherapy'
        ) then item_concept_id end) as agent_concept_id,
        max(case when concept_set_name = 'lymphodepletion_agents' then 1 else 0 end)
            as is_lymphodepletion_agent,
        max(case when concept_set_name = 'hsct_conditioning_agents' then 1 else 0 end)
            as is_conditioning_agent
    from events
    group by person_id, event_id, start_date, end_date
),

antineoplastic as (
    select
        classified.*,
        case class_rank
            when 1 then 'blinatumomab'
            when 2 then 'inotuzumab'
            when 3 then 'tki'
            else 'chemotherapy'
        end as agent_class
    from classified
    where class_rank is not null
),

final as (
    select
        antineoplastic.person_id,
        antineoplastic.event_id,
        antineoplastic.agent_concept_id,
        antineoplastic.agent_class,
        antineoplastic.start_date,
        antineoplastic.end_date,
        case
            when antineoplastic.is_lymphodepletion_agent = 1 and exists (
                select 1 from infusions
                where infusions.person_id = antineoplastic.person_id
                  and antineoplastic.start_date <= infusions.infusion_date
                  and antineoplastic.start_date
                      >= {{ add_days('infusions.infusion_date', -var('lymphodepletion_days')) }}
            ) then 'cart_lymphodepletion'
            when antineoplastic.is_conditioning_agent = 1 and exists (
                select 1 from transplants
                where transplants.person_id = antineoplastic.person_id
                  and antineoplastic.start_date <= transplants.hsct_date
                  and antineoplastic.start_date
                      >= {{ add_days('transplants.hsct_date', -var('conditioning_days')) }}
            ) then 'hsct_conditioning'
        end as absorbed_into
    from antineoplastic
)

select * from final
