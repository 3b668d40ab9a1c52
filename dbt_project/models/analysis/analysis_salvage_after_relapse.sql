-- Study B mart: one row per person in cohort relapse_after_cart (relapse after their first
-- CD19 CAR-T infusion, never T-ALL); index = the relapse date. Persons without a salvage
-- line have salvage_modality 'none' and received_salvage 0 (cohort salvage_after_relapse
-- is the subset with received_salvage = 1).
with cohort as (
    select subject_id as person_id
    from {{ ref('own_cohort') }}
    where cohort_definition_id = {{ cohort_id('relapse_after_cart') }}
),

salvage as (
    select * from {{ ref('int__salvage_after_relapse') }}
),

followup as (
    select * from {{ ref('int__person_followup') }}
),

final as (
    select
        cast(salvage.person_id as {{ dbt.type_bigint() }}) as person_id,
        cast(salvage.relapse_date as date) as index_date,
        cast(salvage.cart_date as date) as cart_date,
        cast(salvage.consolidation_hsct_date as date) as consolidation_hsct_date,
        cast(salvage.salvage_modality as {{ dbt.type_string() }}) as salvage_modality,
        cast(case when salvage.salvage_modality = 'none' then 0 else 1 end as integer)
            as received_salvage,
        cast(
            case
                when salvage.salvage_modality in ('cart_reinfusion', 'monoclonal_antibody', 'chemotherapy_tki')
                    then 1
                else 0
            end as integer
        ) as salvage_targeted,
        cast(salvage.salvage_start_date as date) as salvage_start_date,
        cast(salvage.salvage_line_end_date as date) as salvage_line_end_date,
        cast(salvage.salvage_best_response as {{ dbt.type_string() }}) as salvage_best_response,
        cast(case when salvage.cr_date is null then 0 else 1 end as integer) as cr,
        cast(salvage.cr_date as date) as cr_date,
        cast(salvage.salvage_failure_date as date) as salvage_failure_date,
        cast(salvage.second_relapse_date as date) as second_relapse_date,
        cast(salvage.relapse_site as {{ dbt.type_string() }}) as relapse_site,
        cast(salvage.extramedullary_site as {{ dbt.type_string() }}) as extramedullary_site,
        cast(
            case salvage.cd19_status when 'negative' then 1 when 'positive' then 0 end
            as integer
        ) as cd19_negative,
        cast(
            {{ day_number('salvage.relapse_date') }} - {{ day_number('salvage.cart_date') }}
            as integer
        ) as days_cart_to_relapse,
        cast(salvage.cd19_status as {{ dbt.type_string() }}) as cd19_status,
        cast(salvage.bcr_abl1_positive as integer) as bcr_abl1_positive,
        cast(salvage.prior_hsct as integer) as prior_hsct,
        cast({{ year_of('salvage.relapse_date') }} - followup.year_of_birth as integer)
            as age_at_relapse,
        cast(followup.sex as {{ dbt.type_string() }}) as sex,
        cast(case when followup.sex = 'female' then 1 else 0 end as integer) as female,
        cast(followup.death_date as date) as death_date,
        cast(followup.end_of_followup_date as date) as end_of_followup_date
    from cohort
    inner join salvage on salvage.person_id = cohort.person_id
    inner join followup on followup.person_id = cohort.person_id
)

select * from final
