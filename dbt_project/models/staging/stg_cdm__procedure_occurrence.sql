{{ clean_events('procedure_occurrence', 'procedure_occurrence_id', 'procedure_concept_id',
                'procedure_source_concept_id', 'procedure_date', 'procedure_end_date',
                'procedure_type_concept_id') }}
