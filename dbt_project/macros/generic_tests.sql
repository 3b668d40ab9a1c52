{#- Small generic data tests (no package dependency: the project must build offline). -#}

{% test unique_combination_of_columns(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{% test row_count_is_zero(model) %}
select * from {{ model }}
{% endtest %}

{% test expression_is_true(model, expression) %}
select * from {{ model }} where not ({{ expression }})
{% endtest %}

{% test row_count_equals_model(model, compare_model) %}
select 1 as mismatch
from (select count(*) as n from {{ model }}) as here
cross join (select count(*) as n from {{ compare_model }}) as there
where here.n <> there.n
{% endtest %}

{#- Lines of one person never overlap in start order: each line starts after the
    previous line started (line numbers follow time). -#}
{% test non_overlapping_line_starts(model) %}
with ordered as (
    select
        person_id,
        line_number,
        line_start_date,
        lag(line_start_date) over (partition by person_id order by line_number) as previous_start
    from {{ model }}
)
select * from ordered where previous_start is not null and previous_start >= line_start_date
{% endtest %}

{#- The last attrition step of each cohort equals the cohort's size. -#}
{% test attrition_matches_cohort(model) %}
with last_step as (
    select cohort_definition_id, max(rule_number) as rule_number
    from {{ model }}
    group by cohort_definition_id
),
final_counts as (
    select {{ model }}.cohort_definition_id, {{ model }}.persons_remaining
    from {{ model }}
    inner join last_step
        on last_step.cohort_definition_id = {{ model }}.cohort_definition_id
       and last_step.rule_number = {{ model }}.rule_number
),
cohort_sizes as (
    select cohort_definition_id, count(*) as n
    from {{ ref('own_cohort') }}
    group by cohort_definition_id
)
select final_counts.*
from final_counts
left join cohort_sizes on cohort_sizes.cohort_definition_id = final_counts.cohort_definition_id
where final_counts.persons_remaining <> coalesce(cohort_sizes.n, 0)
{% endtest %}
