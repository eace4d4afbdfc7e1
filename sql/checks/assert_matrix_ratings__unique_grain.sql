-- Offending rows: a (user_idx, book_idx) cell twice, a null index, or a split other than train/test.
-- upstream: matrix.ratings
with ratings as (
    select * from matrix.ratings
),

duplicates as (
    select user_idx, book_idx, 'duplicate cell' as problem
    from ratings
    group by user_idx, book_idx
    having count(*) > 1
),

invalid as (
    select user_idx, book_idx, 'null index, rating or bad split' as problem
    from ratings
    where user_idx is null or book_idx is null or rating is null or split not in ('train', 'test')
),

final as (
    select * from duplicates
    union all
    select * from invalid
)

select * from final
