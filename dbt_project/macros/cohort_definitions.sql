{#- The cohorts this project builds, each an ordered list of rules (one model per rule in
    models/cohorts/rules/, returning the person_ids that pass it). cohort_flags turns the
    rules into 0/1 columns; own_cohort, own_cohort_definition and cohort_attrition loop
    over this list, so a cohort is defined in exactly one place. 'number' is the cohort's
    number in this list; its cohort_definition_id ('id') is var('cohort_id_offset') +
    number (CohortGenerator-style offset, so the ids can be moved clear of a site's own
    cohorts in the same table). Models name cohorts, never ids: cohort_id('cart_index'). -#}
{% macro cohort_definitions() %}
    {% set offset = var('cohort_id_offset') | int %}
    {% set cohorts = [] %}
    {% for cohort in cohort_list() %}
        {% set with_id = {'id': offset + cohort['number']} %}
        {% do with_id.update(cohort) %}
        {% do cohorts.append(with_id) %}
    {% endfor %}
    {% do return(cohorts) %}
{% endmacro %}

{#- The cohort list itself (numbers, names, rules); read it through cohort_definitions(). -#}
{% macro cohort_list() %}
    {% set index_rules = ['all_diagnosis', 'cart_after_all_diagnosis', 'not_t_all'] %}
    {% do return([
        {'number': 1, 'name': 'cart_index',
         'description': 'First CD19 CAR-T infusion on or after an ALL diagnosis, relapsed/refractory before it, never T-ALL (study A index)',
         'rules': index_rules + ['relapsed_refractory_before_cart'],
         'start': 'cart_date'},
        {'number': 2, 'name': 'hsct_plus',
         'description': 'cart_index persons with an allogeneic HSCT after the infusion, within the exposure window and before relapse',
         'rules': index_rules + ['relapsed_refractory_before_cart', 'allo_hsct_consolidation'],
         'start': 'cart_date'},
        {'number': 3, 'name': 'hsct_minus',
         'description': 'cart_index persons without such an allogeneic HSCT',
         'rules': index_rules + ['relapsed_refractory_before_cart', 'no_allo_hsct_consolidation'],
         'start': 'cart_date'},
        {'number': 4, 'name': 'relapse_after_cart',
         'description': 'cart_index persons relapsing (relapse or refractory code, or a new line) after the infusion (study B population)',
         'rules': index_rules + ['relapsed_refractory_before_cart', 'relapse_after_cart'],
         'start': 'relapse_date'},
        {'number': 5, 'name': 'salvage_after_relapse',
         'description': 'relapse_after_cart persons who started a salvage line after the relapse (study B analysis set)',
         'rules': index_rules + ['relapsed_refractory_before_cart', 'relapse_after_cart', 'salvage_after_relapse'],
         'start': 'salvage_start_date'},
    ]) %}
{% endmacro %}

{#- All distinct rule names, in first-use order. -#}
{% macro cohort_rule_names() %}
    {% set names = [] %}
    {% for cohort in cohort_definitions() %}
        {% for rule in cohort['rules'] %}
            {% if rule not in names %}{% do names.append(rule) %}{% endif %}
        {% endfor %}
    {% endfor %}
    {% do return(names) %}
{% endmacro %}

{#- The cohort_definition_id of the cohort called `name` (offset applied); a compile error
    naming the known cohorts when there is no such cohort. -#}
{% macro cohort_id(name) %}
    {% for cohort in cohort_definitions() %}
        {% if cohort['name'] == name %}{% do return(cohort['id']) %}{% endif %}
    {% endfor %}
    {% do exceptions.raise_compiler_error(
        "unknown cohort " ~ name ~ " (macros/cohort_definitions.sql defines: "
        ~ (cohort_definitions() | map(attribute='name') | join(', ')) ~ ")") %}
{% endmacro %}

{#- The cohort_definition_ids this build owns (offset applied). -#}
{% macro own_cohort_ids() %}
    {% do return(cohort_definitions() | map(attribute='id') | list) %}
{% endmacro %}
