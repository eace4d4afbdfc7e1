-- Offending rows: book indices that are not exactly 0..n-1, or book keys listed twice.
-- upstream: matrix.books
with books as (
    select * from matrix.books
),

final as (
    select book_idx, book_key, 'idx out of 0..n-1 or repeated' as problem
    from books
    qualify book_idx <> row_number() over (order by book_idx) - 1
        or count(*) over (partition by book_key) > 1
        or book_idx is null
)

select * from final
