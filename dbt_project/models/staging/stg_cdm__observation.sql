{{ clean_events('observation', 'observation_id', 'observation_concept_id',
                'observation_source_concept_id', 'observation_date', 'observation_date',
                'observation_type_concept_id', ['value_as_number', 'value_as_concept_id']) }}
