{{ clean_events('drug_exposure', 'drug_exposure_id', 'drug_concept_id',
                'drug_source_concept_id', 'drug_exposure_start_date', 'drug_exposure_end_date',
                'drug_type_concept_id') }}
