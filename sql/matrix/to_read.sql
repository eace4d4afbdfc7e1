-- Books a matrix user shelved to read (goodbooks only): a held-out implicit signal for evaluation.
-- grain: one row per (user_idx, book_idx); key: (user_idx, book_idx)
-- upstream: staging.stg_goodbooks__to_read, staging.stg_goodbooks__books, matrix.users, matrix.books
-- parameters: $source
with to_read as (
    select * from staging.stg_goodbooks__to_read
),

books as (
    select goodbooks_book_id, book_key from staging.stg_goodbooks__books
),

final as (
    select distinct u.user_idx, mb.book_idx
    from to_read as t
    inner join books as b on b.goodbooks_book_id = t.goodbooks_book_id
    inner join matrix.users as u on u.user_key = t.user_key
    inner join matrix.books as mb on mb.book_key = b.book_key
    where $source = 'goodbooks'
)

select * from final
