{{ clean_events('measurement', 'measurement_id', 'measurement_concept_id',
                'measurement_source_concept_id', 'measurement_date', 'measurement_date',
                'measurement_type_concept_id', ['value_as_number', 'value_as_concept_id']) }}
