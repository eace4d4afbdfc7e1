-- Offending rows: a book_key listed twice or missing.
-- upstream: core.books
with books as (
    select * from core.books
),

final as (
    select book_key, count(*) as n, 'book_key not unique or null' as problem
    from books
    group by book_key
    having count(*) > 1 or book_key is null
)

select * from final
