{#- The cohorts this project builds, each an ordered list of rules (one model per rule in
    models/cohorts/rules/, returning the person_ids that pass it). cohort_flags turns the
    rules into 0/1 columns; cohort, cohort_definition and cohort_attrition loop over this
    list, so a cohort is defined in exactly one place. -#}
{% macro cohort_definitions() %}
    {% set index_rules = ['all_diagnosis', 'cart_after_all_diagnosis', 'not_t_all'] %}
    {% do return([
        {'id': 1, 'name': 'cart_index',
         'description': 'First CD19 CAR-T infusion on or after an ALL diagnosis, relapsed/refractory before it, never T-ALL (study A index)',
         'rules': index_rules + ['relapsed_refractory_before_cart'],
         'start': 'cart_date'},
        {'id': 2, 'name': 'hsct_plus',
         'description': 'cart_index persons with an allogeneic HSCT after the infusion, within the exposure window and before relapse',
         'rules': index_rules + ['relapsed_refractory_before_cart', 'allo_hsct_consolidation'],
         'start': 'cart_date'},
        {'id': 3, 'name': 'hsct_minus',
         'description': 'cart_index persons without such an allogeneic HSCT',
         'rules': index_rules + ['relapsed_refractory_before_cart', 'no_allo_hsct_consolidation'],
         'start': 'cart_date'},
        {'id': 4, 'name': 'relapse_after_cart',
         'description': 'cart_index persons relapsing (relapse or refractory code, or a new line) after the infusion (study B population)',
         'rules': index_rules + ['relapsed_refractory_before_cart', 'relapse_after_cart'],
         'start': 'relapse_date'},
        {'id': 5, 'name': 'salvage_after_relapse',
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
