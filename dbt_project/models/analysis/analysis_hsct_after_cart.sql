-- Study A mart: one row per person in cohort cart_index (first CD19 CAR-T infusion after an
-- ALL diagnosis, R/R before it, never T-ALL). Arm hsct_plus = allogeneic HSCT within the
-- exposure window after the infusion and before relapse. Baseline covariates are measured
-- on or before the index date; outcomes are dates (the study runner derives times).
with cohort as (
    select subject_id as person_id
    from {{ ref('own_cohort') }}
    where cohort_definition_id = {{ cohort_id('cart_index') }}
),

course as (
    select * from {{ ref('int__cart_course') }}
),

followup as (
    select * from {{ ref('int__person_followup') }}
),

diagnoses as (
    select * from {{ ref('int__all_diagnoses') }}
),

concept as (
    select * from {{ ref('stg_cdm__concept') }}
),

bcr_abl1_lab as (
    select distinct events.person_id
    from {{ ref('int__concept_set_events') }} as events
    inner join course
        on course.person_id = events.person_id
       and events.start_date <= course.cart_date
    where events.concept_set_name = 'bcr_abl1_labs'
      and events.value_as_concept_id in ({{ var('value_positive_concepts') | join(', ') }})
),

response as (
    select
        course.person_id,
        max(case when events.concept_set_name = 'all_in_remission' then 1 else 0 end)
            as remission,
        max(
            case
                when events.concept_set_name = 'mrd'
                 and events.value_as_concept_id in ({{ var('value_negative_concepts') | join(', ') }})
                    then 1
                else 0
            end
        ) as mrd_negative
    from course
    inner join {{ ref('int__concept_set_events') }} as events
        on events.person_id = course.person_id
       and events.concept_set_name in ('all_in_remission', 'mrd')
       and events.start_date > course.cart_date
       and events.start_date <= {{ add_days('course.cart_date', var('response_window_days')) }}
    group by course.person_id
),

final as (
    select
        cast(course.person_id as {{ dbt.type_bigint() }}) as person_id,
        cast(course.cart_date as date) as index_date,
        cast(case when course.allo_hsct_date is null then 'hsct_minus' else 'hsct_plus' end
            as {{ dbt.type_string() }}) as arm,
        cast(case when course.allo_hsct_date is null then 0 else 1 end as integer) as hsct_plus,
        cast(course.allo_hsct_date as date) as hsct_date,
        cast(course.allo_hsct_any_date as date) as allo_hsct_any_date,
        cast({{ year_of('course.cart_date') }} - followup.year_of_birth as integer)
            as age_at_index,
        cast(followup.sex as {{ dbt.type_string() }}) as sex,
        cast(case when followup.sex = 'female' then 1 else 0 end as integer) as female,
        cast(followup.race as {{ dbt.type_string() }}) as race,
        cast(followup.ethnicity as {{ dbt.type_string() }}) as ethnicity,
        cast(
            case
                when diagnoses.first_ph_positive_date <= course.cart_date then 1
                when bcr_abl1_lab.person_id is not null then 1
                else 0
            end as integer
        ) as ph_positive,
        cast(course.prior_lines as integer) as prior_lines,
        cast(case when course.prior_allo_hsct_date is null then 0 else 1 end as integer)
            as prior_hsct,
        cast(case when diagnoses.first_cns_involvement_date <= course.cart_date then 1 else 0 end
            as integer) as cns_involvement,
        cast(course.first_all_date as date) as diagnosis_date,
        cast({{ dbt.datediff('course.first_all_date', 'course.cart_date', 'day') }} as integer)
            as days_diagnosis_to_cart,
        cast(coalesce(concept.concept_name, 'unknown') as {{ dbt.type_string() }})
            as cart_product,
        cast(coalesce(response.remission, 0) as integer) as cr_after_cart,
        cast(coalesce(response.mrd_negative, 0) as integer) as mrd_negative_after_cart,
        cast(course.relapse_date as date) as relapse_date,
        cast(followup.death_date as date) as death_date,
        cast(followup.end_of_followup_date as date) as end_of_followup_date
    from cohort
    inner join course on course.person_id = cohort.person_id
    inner join followup on followup.person_id = cohort.person_id
    inner join diagnoses on diagnoses.person_id = cohort.person_id
    left join bcr_abl1_lab on bcr_abl1_lab.person_id = cohort.person_id
    left join concept on concept.concept_id = course.product_concept_id
    left join response on response.person_id = cohort.person_id
)

select * from final
