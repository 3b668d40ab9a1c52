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
