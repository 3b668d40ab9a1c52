-- Haematopoietic stem cell transplants: the procedure records of one transplant
-- (int__hsct_records, collapsed within var('hsct_collapse_days')) as one row dated by the
-- first record.
with records as (
    select * from {{ ref('int__hsct_records') }}
),

final as (
    select
        person_id,
        hsct_type,
        transplant_number,
        min(start_date) as hsct_date
    from records
    group by person_id, hsct_type, transplant_number
)

select * from final
