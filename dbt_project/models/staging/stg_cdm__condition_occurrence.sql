{{ clean_events('condition_occurrence', 'condition_occurrence_id', 'condition_concept_id',
                'condition_source_concept_id', 'condition_start_date', 'condition_end_date',
                'condition_type_concept_id') }}
